"""One flag as the OpenFeature provider sees it: its shape, typed values, metadata and reasons.

Built once per :class:`~rollout.Feature` snapshot (the provider caches it until the flag
changes), so a resolution reads precomputed fields instead of walking the snapshot. The answer
itself always comes from ``Rollout.active``; this module only *explains* it (which OpenFeature
reason) and picks the typed value for string, number and object flags.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from openfeature.exception import TypeMismatchError
from openfeature.flag_evaluation import FlagMetadata, Reason

from .._core.feature import Feature
from .._core.rules import Decision, Rules

__all__ = [
    "OFF_VALUE_KEY",
    "VALUE_KEY",
    "FlagView",
    "as_float",
    "as_int",
    "as_object",
    "as_str",
    "copy_json",
]

#: The data key holding a typed flag's value when the flag is on for the context.
VALUE_KEY = "value"
#: The data key holding its value when the flag is off (else the caller's default is returned).
OFF_VALUE_KEY = "off_value"

_MISSING = object()


# How each kind of deciding rule is named in OpenFeature's vocabulary.
_REASONS: Mapping[Decision, Reason] = {
    Decision.DISABLED: Reason.DISABLED,
    Decision.STATIC: Reason.STATIC,
    Decision.TARGETING: Reason.TARGETING_MATCH,
    Decision.SPLIT: Reason.SPLIT,
    Decision.DEFAULT: Reason.DEFAULT,
}


class FlagView(Rules):
    """What a resolution needs to know about one snapshot of a flag, computed once: the rules
    (rollout._core.rules), typed values and metadata."""

    __slots__ = ("metadata", "off_value", "value")

    def __init__(self, feature: Feature) -> None:
        super().__init__(feature)
        data = feature.data
        self.value: object = data.get(VALUE_KEY, _MISSING)
        self.off_value: object = data.get(OFF_VALUE_KEY, _MISSING)
        scalars: dict[str, bool | int | float | str] = {
            key: item
            for key, item in data.items()
            if key not in (VALUE_KEY, OFF_VALUE_KEY) and isinstance(item, bool | int | float | str)
        }
        #: Flag metadata (OpenFeature 2.2.9): the data's scalar entries, read-only and shared.
        self.metadata: FlagMetadata = MappingProxyType(scalars)

    @property
    def has_value(self) -> bool:
        return self.value is not _MISSING

    @property
    def has_off_value(self) -> bool:
        return self.off_value is not _MISSING

    def reason(
        self,
        key: str | None,
        answer: bool,
        user: object,
        in_group: Callable[[str, object], bool],
    ) -> Reason | None:
        """Why ``Rollout.active`` answered ``answer`` for the targeting key ``key``, as an
        OpenFeature reason (see :meth:`Rules.decided_by`; None: the flag changed meanwhile)."""
        decision = self.decided_by(key, answer, user, in_group)
        return None if decision is None else _REASONS[decision]


def copy_json(value: Any) -> Any:
    """A deep copy of JSON data, so a caller changing a returned object changes no cache."""
    if isinstance(value, Mapping):
        return {key: copy_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [copy_json(item) for item in value]
    return value


def _mismatch(flag_key: str, data_key: str, value: object, wanted: str) -> TypeMismatchError:
    return TypeMismatchError(f"flag {flag_key!r} data {data_key!r} is {value!r}, not {wanted}")


def as_str(flag_key: str, data_key: str, value: object) -> str:
    if isinstance(value, str):
        return value
    raise _mismatch(flag_key, data_key, value, "a string")


def as_int(flag_key: str, data_key: str, value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _mismatch(flag_key, data_key, value, "an integer")


def as_float(flag_key: str, data_key: str, value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise _mismatch(flag_key, data_key, value, "a number")


def as_object(flag_key: str, data_key: str, value: object) -> Any:
    if isinstance(value, dict | list):
        return value
    raise _mismatch(flag_key, data_key, value, "an object or a list")
