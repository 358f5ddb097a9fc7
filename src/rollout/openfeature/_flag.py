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


class FlagView:
    """What a resolution needs to know about one snapshot of a flag, computed once."""

    __slots__ = (
        "anyone",
        "chance",
        "disabled",
        "everybody",
        "excluded",
        "feature",
        "groups",
        "metadata",
        "needs_key",
        "of_time",
        "off_value",
        "static",
        "users",
        "value",
    )

    def __init__(self, feature: Feature) -> None:
        self.feature = feature
        percentage, of_time = feature.percentage, feature.percentage_of_time
        self.users = feature.users
        self.excluded = feature.excluded_users
        #: Groups with a predicate to run (``all`` needs none): the user object is built only
        #: for flags that have some, since only their predicates can see it.
        self.groups = tuple(sorted(feature.groups - {"all"}))
        #: On without a user: 100% of users or of the time.
        self.anyone = percentage >= 100.0 or of_time >= 100.0
        #: On for every user who is not excluded: that, or the group `all`.
        self.everybody = self.anyone or "all" in feature.groups
        self.of_time = of_time > 0.0
        #: Nothing can turn it on for anybody (exclusions alone turn nothing on).
        self.disabled = not (percentage or of_time or feature.users or feature.groups)
        #: The same answer, on, for every context, with or without a targeting key. (`all` is
        #: not enough: a check without a user is on only at 100%.)
        self.static = self.anyone and not feature.excluded_users
        #: A pseudorandom rule may decide: a percentage of users or of the time.
        self.chance = percentage > 0.0 or of_time > 0.0
        #: The answer is a split of users that cannot be computed without a targeting key.
        self.needs_key = 0.0 < percentage < 100.0 and of_time < 100.0
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
        """Why ``Rollout.active`` answered ``answer`` for the targeting key ``key``.

        Follows the check's own order (README, "Checks"): exclusions, then listed users,
        groups, and chance. ``in_group(group, user)`` (``Rollout.active_in_group``) runs a
        group's predicate again; only when the answer was yes, the user is not listed, and
        both a group and a percentage could have let the user in. None means the answer cannot
        come from this snapshot: the flag changed between the two reads; the caller reads again.
        """
        if self.disabled:
            return None if answer else Reason.DISABLED
        if self.static:
            return Reason.STATIC if answer else None
        if key is None:  # a check without a user: only 100% or a draw of the time can say yes
            if self.anyone:  # on for everybody, but the flag also excludes some users
                return Reason.TARGETING_MATCH if answer else None
            if self.of_time:
                return Reason.SPLIT
            return None if answer else Reason.DEFAULT
        if key in self.excluded:
            return None if answer else Reason.TARGETING_MATCH
        if not answer:
            if key in self.users or self.everybody:
                return None
            return Reason.SPLIT if self.chance else Reason.DEFAULT
        if key in self.users or self.everybody:
            return Reason.TARGETING_MATCH
        if not self.groups:
            return Reason.SPLIT if self.chance else None
        if not self.chance:
            return Reason.TARGETING_MATCH
        if any(in_group(group, user) for group in self.groups):
            return Reason.TARGETING_MATCH
        return Reason.SPLIT


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
