"""What a register may hold, checked: the key an entity may hold, and the value that key may.

One set of rules for every register that comes from outside this process: an export or a
peer's delta (rollout._core.codec.decode), and a store's rows, which another process or program
may have written (codec.check_flag, stored_values.decode_stored). A problem raises
:class:`~rollout.errors.FormatError` prefixed by ``where``, which names the register.
"""

from __future__ import annotations

import math

from ..errors import FormatError
from . import targeting as _engine  # its checker loads with the first rule decoded
from .history import check_event_value
from .keys import (
    DATA,
    DEFAULT_VARIANT,
    DISABLED,
    EXISTS,
    PERCENTAGE,
    PLAIN_KEYS,
    RULE,
    RULES_ENTITY,
    SEPARATOR,
    TARGETING_PREFIXES,
    TARGETING_RULE,
    TIME,
    VARIANT,
    is_history,
    split_key,
    valid_history_key,
)
from .targeting import MAX_RULE_DEPTH, RuleError
from .validate import json_problem, name_problem

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["belongs", "check_value", "known_key"]


def known_key(key: str) -> bool:
    """Whether ``key`` is a register key: a plain one, a history event's, or a prefix and a
    member."""
    if key in PLAIN_KEYS:
        return True
    if is_history(key):
        return valid_history_key(key)
    split = split_key(key)
    return split is not None and split[1] != ""  # a member key names its member


def belongs(name: str, key: str) -> bool:
    """Whether an entity may hold ``key``: the rules entity holds rules and their history only
    (so it can never exist as a flag), and only it holds rules."""
    if name == RULES_ENTITY:
        return key.startswith(RULE) or is_history(key)
    return not key.startswith(RULE)


def check_value(where: str, key: str, value: Any) -> None:
    """Raise :class:`FormatError` when ``value`` is not one the register ``key`` may hold."""
    if is_history(key):
        problem = check_event_value(value)
        if problem is not None:
            raise FormatError(f"{where}: a history event {problem}")
    elif key == EXISTS or key.startswith(TARGETING_PREFIXES):  # user:, exclude:, group:
        if not isinstance(value, bool):
            raise FormatError(f"{where}: value must be true or false, got {value!r}")
    elif key.startswith(DATA):
        problem = json_problem(value)
        if problem is not None:
            raise FormatError(f"{where}: value {problem}")
    elif key.startswith((VARIANT, RULE)):
        _check_name(where, key.partition(SEPARATOR)[2])
        if key.startswith(VARIANT):
            _check_variant_value(where, value)
        else:
            _check_rule_value(where, value)
    elif key == DEFAULT_VARIANT and value is not None:
        if not isinstance(value, str):
            raise FormatError(f"{where}: value must be a variant name or null, got {value!r}")
        _check_name(where, value)
    elif key == TARGETING_RULE:
        _check_rule_value(where, value)
    elif key == DISABLED and not isinstance(value, bool):
        raise FormatError(f"{where}: value must be true or false, got {value!r}")
    elif key in (PERCENTAGE, TIME) and (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= 100
    ):
        raise FormatError(f"{where}: value must be a number from 0 to 100, got {value!r}")


def _check_name(where: str, name: str) -> None:
    problem = name_problem(name)
    if problem is not None:
        raise FormatError(f"{where}: the name {problem}")


def _check_variant_value(where: str, value: Any) -> None:
    """A variant's value is one of flagd's kinds (boolean, string, number, object), or null for
    a removed variant."""
    if value is None:
        return
    if not isinstance(value, bool | str | int | float | dict) or (
        isinstance(value, float) and not math.isfinite(value)
    ):
        raise FormatError(
            f"{where}: value must be a boolean, string, number or object, got {value!r:.80}"
        )
    problem = json_problem(value)
    if problem is not None:
        raise FormatError(f"{where}: value {problem}")


def _check_rule_value(where: str, value: Any) -> None:
    """A JsonLogic rule the engine accepts (measured first: the check recurses), or null."""
    if value is None:
        return
    problem = json_problem(value, MAX_RULE_DEPTH)
    if problem is not None:
        raise FormatError(f"{where}: value {problem}")
    try:
        _engine.check_rule(value)
    except RuleError as exc:
        raise FormatError(f"{where}: not a rule the engine accepts: {exc}") from None
