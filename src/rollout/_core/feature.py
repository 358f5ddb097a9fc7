"""What a flag looks like from outside (:class:`Feature`) and how it is checked (:class:`Check`)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from .bucketing import Randomize, bucket_seed, threshold
from .state import FlagState

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["Check", "Feature"]


class Feature:
    """An immutable snapshot of one flag's visible state, as returned by ``Rollout.get()``."""

    __slots__ = (
        "_data",
        "_targeting",
        "_variants",
        "default_variant",
        "enabled",
        "excluded_users",
        "groups",
        "name",
        "percentage",
        "percentage_of_time",
        "users",
    )

    name: str
    percentage: float
    percentage_of_time: float
    users: frozenset[str]
    excluded_users: frozenset[str]
    groups: frozenset[str]
    _data: dict[str, Any]
    #: The variant answered when no rule decides (None: none, or an on/off flag).
    default_variant: str | None
    #: flagd's state: False when the flag's definition is DISABLED (always True for on/off flags).
    enabled: bool
    _variants: dict[str, Any]
    _targeting: Any

    def __init__(
        self,
        name: str,
        *,
        percentage: float = 0.0,
        percentage_of_time: float = 0.0,
        users: frozenset[str] = frozenset(),
        excluded_users: frozenset[str] = frozenset(),
        groups: frozenset[str] = frozenset(),
        data: Mapping[str, Any] | None = None,
        variants: Mapping[str, Any] | None = None,
        default_variant: str | None = None,
        targeting: Any = None,
        enabled: bool = True,
    ) -> None:
        set_ = object.__setattr__
        set_(self, "name", name)
        set_(self, "percentage", float(percentage))
        set_(self, "percentage_of_time", float(percentage_of_time))
        set_(self, "users", frozenset(users))
        set_(self, "excluded_users", frozenset(excluded_users))
        set_(self, "groups", frozenset(groups))
        set_(self, "_data", _copy_json(dict(data or {})))
        set_(self, "_variants", _copy_json(dict(variants or {})))
        set_(self, "default_variant", default_variant)
        set_(self, "_targeting", _copy_json(targeting))
        set_(self, "enabled", bool(enabled))

    @classmethod
    def from_state(cls, name: str, state: FlagState) -> Feature:
        return cls(
            name,
            percentage=state.percentage,
            percentage_of_time=state.time_percentage,
            users=frozenset(state.users),
            excluded_users=frozenset(state.excluded),
            groups=frozenset(state.groups),
            data=state.data,
            variants=state.variants,
            default_variant=state.default_variant,
            targeting=state.targeting,
            enabled=not state.disabled,
        )

    @property
    def data(self) -> Mapping[str, Any]:
        """The flag's data: read-only, and a fresh copy, so changing nested values is harmless."""
        return MappingProxyType(_copy_json(self._data))

    @property
    def variants(self) -> Mapping[str, Any]:
        """The flag's variants, name -> JSON value (empty for an on/off flag): a read-only copy."""
        return MappingProxyType(_copy_json(self._variants))

    @property
    def targeting(self) -> Any:
        """The flag's JsonLogic targeting rule (a copy), or None."""
        return _copy_json(self._targeting)

    @property
    def has_definition(self) -> bool:
        """Whether the flag has a definition (variants): flagd's model rather than on/off."""
        return bool(self._variants)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Feature is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Feature is immutable; cannot delete {name!r}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: lists are sorted so equal features give equal output. A flag with a
        definition adds ``variants``, ``default_variant``, ``targeting`` and ``enabled``."""
        return {
            "name": self.name,
            "percentage": self.percentage,
            "percentage_of_time": self.percentage_of_time,
            "users": sorted(self.users),
            "excluded_users": sorted(self.excluded_users),
            "groups": sorted(self.groups),
            "data": _copy_json(self._data),
            # A flag with a definition only: an on/off flag's shape stays what it was.
            **(
                {
                    "variants": _copy_json(self._variants),
                    "default_variant": self.default_variant,
                    "targeting": _copy_json(self._targeting),
                    "enabled": self.enabled,
                }
                if self._variants
                else {}
            ),
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Feature):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.name, self.percentage, self.percentage_of_time, self.users))

    def __repr__(self) -> str:
        return (
            f"Feature(name={self.name!r}, percentage={self.percentage:g}, "
            f"percentage_of_time={self.percentage_of_time:g}, users={len(self.users)}, "
            f"excluded_users={len(self.excluded_users)}, groups={sorted(self.groups)!r})"
        )


def _copy_json(value: Any) -> Any:
    """A deep copy of JSON data (dicts, lists, scalars)."""
    if isinstance(value, Mapping):
        return {key: _copy_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_copy_json(item) for item in value]
    return value


def _unset(_user: Any) -> bool:
    raise RuntimeError("Check.for_user is set by the replica when it compiles the flag")


class Check:
    """A flag compiled for evaluation: the few fields ``Rollout.active()`` reads, precomputed.

    ``users`` and ``excluded`` are the flag state's own sets (shared, not copied), so a write
    that adds one user does not copy a list of 100,000.
    """

    __slots__ = (
        "anonymous",
        "bound",
        "decide",
        "excluded",
        "for_user",
        "groups",
        "has_all",
        "name",
        "percentage",
        "predicate_groups",
        "predicates",
        "randomize",
        "seed",
        "settled",
        "time_percentage",
        "users",
    )

    def __init__(
        self,
        name: str,
        state: FlagState,
        randomize: Randomize,
        groups: Mapping[str, Callable[[Any], object]],
    ) -> None:
        self.name = name
        self.bound = threshold(state.percentage) if state.percentage > 0 else 0
        self.percentage = state.percentage  # for explain(): the bound alone loses it
        self.time_percentage = state.time_percentage
        self.users = state.users
        self.excluded = state.excluded
        self.has_all = "all" in state.groups
        self.groups = tuple(sorted(g for g in state.groups if g != "all"))
        # The defined groups' predicates, looked up once here rather than on every check.
        # Rollout recompiles every flag when a group is defined.
        self.predicates = tuple(groups[g] for g in self.groups if g in groups)
        #: The group of each predicate, in the same order (a group without one is left out).
        self.predicate_groups = tuple(g for g in self.groups if g in groups)
        self.randomize: Randomize = randomize
        self.seed = bucket_seed(name) if randomize is True else 0
        #: The check for a user, specialised to this flag's rules (set by the replica).
        self.for_user: Callable[[Any], bool] = _unset
        #: explain's decision for a user with an id, specialised to this flag's rules
        #: (rollout._core.decide.Decide; typed loosely here: explain imports this module):
        #: built on first use, by whoever asks for decisions.
        self.decide: Callable[[str, Any], Any] | None = None
        # The answer for a check without a user when it does not depend on chance, else None.
        on_without_a_user = state.percentage >= 100.0 or state.time_percentage >= 100.0
        #: The answer when it is the same for every user and context, else None: True on for
        #: everybody (on without a user, nobody excluded), False when no rule can turn it on
        #: (exclusions alone turn nothing on): rollout._core.rules's on_for_everybody and
        #: on_for_anybody of this version, read by ``evaluate`` (STATIC, DISABLED). Exact for
        #: the check's lifetime: the replica keeps a check across a change of listed or excluded
        #: users only when neither set becomes empty or non-empty (replica._shares_sets).
        self.settled: bool | None = None
        if on_without_a_user and not state.excluded:
            self.settled = True
        elif not (state.percentage or state.time_percentage or state.users or state.groups):
            self.settled = False
        if on_without_a_user:
            self.anonymous: bool | None = True
        elif state.time_percentage > 0.0:
            self.anonymous = None
        else:
            self.anonymous = state.percentage >= 100.0
