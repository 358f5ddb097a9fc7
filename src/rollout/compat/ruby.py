"""Moved to :mod:`rollout.redis.ruby`: works until rollout 0.3, with a DeprecationWarning."""

from .._moved import moved

moved(__name__, "rollout.redis.ruby")

from ..redis.ruby import (  # noqa: E402
    FEATURES_KEY,
    FEATURES_NAME,
    RubyRecord,
    Write,
    check_ruby_safe,
    diff_records,
    feature_key,
    features_after_delete,
    features_after_save,
    features_key,
    features_list,
    flag_from_key,
    format_record,
    parse_features_list,
    parse_record,
    percentage_text,
    record_from_state,
    ruby_float_text,
    ruby_json,
)

__all__ = [
    "FEATURES_KEY",
    "FEATURES_NAME",
    "RubyRecord",
    "Write",
    "check_ruby_safe",
    "diff_records",
    "feature_key",
    "features_after_delete",
    "features_after_save",
    "features_key",
    "features_list",
    "flag_from_key",
    "format_record",
    "parse_features_list",
    "parse_record",
    "percentage_text",
    "record_from_state",
    "ruby_float_text",
    "ruby_json",
]
