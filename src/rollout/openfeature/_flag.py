"""One flag as the OpenFeature provider sees it: its shape, typed values and data metadata.

Built once per :class:`~rollout.Feature` snapshot (the provider caches it until the flag
changes), so a resolution reads precomputed fields instead of walking the snapshot. Which rule
decided an answer is ``flags.explain``'s to say (openfeature._explained); this module picks the
typed value and the variant for the answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from openfeature.exception import ParseError, TypeMismatchError
from openfeature.flag_evaluation import FlagMetadata, FlagResolutionDetails, Reason

from .._core.explain import Decision
from .._core.feature import Check, Feature
from .._core.rules import Rules
from ._details import SettledDetails, TargetedDetails
from ._explained import EXPLANATION_KEYS, explained_metadata

if TYPE_CHECKING:
    from .._client.rollout import Rollout

__all__ = [
    "OFF_VALUE_KEY",
    "OFF_VARIANT_KEY",
    "VALUE_KEY",
    "VARIANT_KEY",
    "DefinedSinceError",
    "Evaluated",
    "FlagView",
    "Resolver",
    "any_value",
    "as_bool",
    "as_float",
    "as_int",
    "as_object",
    "as_str",
    "copy_json",
    "definition_metadata",
    "json_kind",
    "typed_value",
    "version_view",
]

#: The data key holding a typed flag's value when the flag is on for the context.
VALUE_KEY = "value"
#: The data key holding its value when the flag is off (else the caller's default is returned).
OFF_VALUE_KEY = "off_value"

#: The data key naming the variant of ``value`` (default ``"on"``).
VARIANT_KEY = "variant"
#: The data key naming the variant of ``off_value`` (default ``"off"``).
OFF_VARIANT_KEY = "off_variant"

T = TypeVar("T")

_MISSING = object()
#: Data keys that are the flag's values and variants, never its metadata.
_VALUE_KEYS = frozenset({VALUE_KEY, OFF_VALUE_KEY, VARIANT_KEY, OFF_VARIANT_KEY})


class FlagView(Rules):
    """What a resolution needs to know about one snapshot of a flag, computed once: the facts
    that settle a reason without a check (rollout._core.rules), typed values and metadata."""

    __slots__ = (
        "_bucket_metadata",
        "_shared_metadata",
        "check",
        "defined",
        "has_off_value",
        "has_value",
        "metadata",
        "off_value",
        "off_variant",
        "resolver",
        "settled",
        "targeted_boolean",
        "value",
        "variant",
    )

    def __init__(self, feature: Feature, check: Check | None = None) -> None:
        super().__init__(feature)
        #: The flag's compiled check of the same version as the feature (version_view; None:
        #: not read): while it is still the flag's, this view is the flag's version now, but for
        #: users listed or excluded in place, which the replica allows only when neither set
        #: becomes empty or non-empty: no fact of this view (static, disabled) changes then,
        #: though its feature's users may be stale (rollout._client.replica._shares_sets).
        self.check = check
        data = feature.data
        self.value: object = data.get(VALUE_KEY, _MISSING)
        self.off_value: object = data.get(OFF_VALUE_KEY, _MISSING)
        # Plain attributes, not properties: read on every resolution.
        self.has_value = self.value is not _MISSING
        self.has_off_value = self.off_value is not _MISSING
        variant, off_variant = data.get(VARIANT_KEY), data.get(OFF_VARIANT_KEY)
        self.variant = variant if isinstance(variant, str) and variant else "on"
        self.off_variant = off_variant if isinstance(off_variant, str) and off_variant else "off"
        # One type per key, always: the explanation's keys (bucket, group...) are never taken
        # from the data, whose entry of the same name could be of another type.
        scalars: dict[str, bool | int | float | str] = {
            key: item
            for key, item in data.items()
            if key not in _VALUE_KEYS
            and key not in EXPLANATION_KEYS
            and isinstance(item, bool | int | float | str)
        }
        #: Flag metadata (OpenFeature 2.2.9): the data's scalar entries, read-only and shared.
        self.metadata: FlagMetadata = MappingProxyType(scalars)
        #: The flag has a definition (variants): ``flags.evaluate`` answers it
        #: (openfeature._defined), and its data is flagd's metadata, every scalar entry of it.
        self.defined = bool(feature.variants)
        if self.defined:
            self.metadata = definition_metadata(data)
        #: A boolean flag whose answer depends on the context (no definition, no value, not
        #: the same for everybody): the provider's fast path, straight to a decision.
        self.targeted_boolean = not (self.defined or self.has_value or self.static or self.disabled)
        # Metadata of decisions, by their numbers (metadata_for): few per snapshot.
        self._shared_metadata: dict[tuple[object, ...], FlagMetadata] = {}
        self._bucket_metadata: dict[tuple[object, ...], dict[str, bool | int | float | str]] = {}
        #: A targeted boolean's resolution function and the compiled check it was built from
        #: (the provider's, built on its first resolution of this view: openfeature._provider).
        self.resolver: Resolver | None = None
        #: A boolean flag's resolution when it is the same for every context (STATIC or
        #: DISABLED), built once and shared; None for any other flag.
        self.settled: SettledDetails | None = None
        if not self.defined and not self.has_value and (self.static or self.disabled):
            self.settled = SettledDetails(
                self.static,
                reason=Reason.STATIC if self.static else Reason.DISABLED,
                variant=self.variant if self.static else self.off_variant,
                flag_metadata=self.metadata,
            )

    def metadata_for(self, decision: Decision) -> FlagMetadata:
        """The flag metadata of a decision (``explained_metadata``, read-only), built from what
        this snapshot already built: the same for every user whom the same rule decided
        without a bucket or a draw (shared), and for a bucket, a copy of the metadata of an
        earlier bucket decision with this user's bucket written in (about half the cost of
        building it)."""
        # Indexes, not unpacking: this is on every targeted evaluation.
        if decision[8] is not None:  # a draw: one of its own (a percentage of the time is rare)
            return MappingProxyType(explained_metadata(self.metadata, decision))
        bucket = decision[5]
        if bucket is None:
            shared_key = decision[1:5]  # reason, percentage, percentage of time, group
            shared = self._shared_metadata.get(shared_key)
            if shared is None:
                shared = MappingProxyType(explained_metadata(self.metadata, decision))
                self._shared_metadata[shared_key] = shared
            return shared
        # A bucket decision's metadata, in or out ("rule" is "bucket" both ways), differs only
        # by the bucket for the same percentages: the threshold is the percentage's, and the
        # bucketing the Rollout's (fixed when it is built).
        numbers = decision[2:4]
        template = self._bucket_metadata.get(numbers)
        if template is None:
            template = self._bucket_metadata[numbers] = explained_metadata(self.metadata, decision)
        metadata = template.copy()
        metadata["bucket"] = bucket
        return MappingProxyType(metadata)


class DefinedSinceError(Exception):
    """The flag got a definition after the provider read its view (another thread's change, a
    replicated one, or one made by a predicate or user_from_context mid-resolution): its answer
    is now ``flags.evaluate``'s, which the provider asks with ``view``, the flag's new view.
    (Its explanation's reason, "definition", is none of an on/off flag's REASONS.)"""

    def __init__(self, view: FlagView) -> None:
        super().__init__(view.feature.name)
        self.view = view


def version_view(flags: Rollout, checks: Mapping[str, Check], name: str) -> FlagView:
    """The view of the flag ``name`` now, its check the compiled check of the same version
    (None for a flag that does not exist).

    The replica installs a change's check before its snapshot can be read (the snapshot cache
    is emptied, then rebuilt under the lock the change holds until its check is in), so a
    snapshot read after a check is of that check's version or a later one; the check read
    again after the snapshot tells which: the same object, the same version. A change that
    landed between the reads is read again (a few microseconds apart: a retry is rare).
    """
    check = checks.get(name)
    while True:
        feature = flags.get(name)
        again = checks.get(name)
        if again is check:
            return FlagView(feature, check)
        check = again


#: A targeted boolean's resolution function (``rollout._core.decide.specialize_resolution``) and
#: the compiled check it decides by.
Resolver = tuple[Check, Callable[[str, Any], TargetedDetails]]

#: A resolution's view of the flag, the answer, why, and the flag metadata.
Evaluated = tuple[FlagView, bool, Reason, FlagMetadata]


def typed_value(
    evaluated: Evaluated, default_value: T, convert: Callable[[str, str, object], T]
) -> FlagResolutionDetails[T]:
    """A typed flag's value for the answer: ``value`` when on, ``off_value`` (or the caller's
    default) when off. Raises TypeMismatchError for a value of another type."""
    view, answer, reason, metadata = evaluated
    name = view.feature.name
    # Both values are checked whatever the answer, so a wrong type shows on every call.
    value = convert(name, f"data {VALUE_KEY!r}", view.value)
    variant: str | None = view.variant
    if view.has_off_value:
        off = convert(name, f"data {OFF_VALUE_KEY!r}", view.off_value)
        if not answer:
            value, variant = off, view.off_variant
    elif not answer:
        value, variant = default_value, None
    if variant is not None and isinstance(value, dict | list):
        value = copy_json(value)  # the caller may change it; the cached view must not
    return FlagResolutionDetails(value, None, None, reason, variant, metadata)


def any_value(evaluated: Evaluated) -> FlagResolutionDetails[object]:
    """An on/off flag's value whatever its type (the provider's ``resolve_value_details``): a
    boolean flag's answer, a typed flag's ``value`` or ``off_value`` (or None with no
    variant, off without one). ParseError for a ``value`` and ``off_value`` of two types."""
    view, answer, reason, metadata = evaluated
    if not view.has_value:
        named = view.variant if answer else view.off_variant
        return FlagResolutionDetails(answer, None, None, reason, named, metadata)
    kind = json_kind(view.value)
    if kind is None or (view.has_off_value and json_kind(view.off_value) != kind):
        raise ParseError(
            f"flag {view.feature.name!r} data {VALUE_KEY!r} is {view.value!r} and "
            f"{OFF_VALUE_KEY!r} is {view.off_value if view.has_off_value else None!r}: "
            "they must be one type (boolean, string, number or object)"
        )
    value: object = view.value
    variant: str | None = view.variant
    if not answer and view.has_off_value:
        value, variant = view.off_value, view.off_variant
    elif not answer:
        value, variant = None, None
    return FlagResolutionDetails(copy_json(value), None, None, reason, variant, metadata)


def json_kind(value: object) -> str | None:
    """The JSON type a client would read a flag value as (int and float are one: a number)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dict | list):
        return "object"
    return None


def definition_metadata(data: Mapping[str, Any]) -> FlagMetadata:
    """A defined flag's metadata: its data's scalar entries, all of them (flagd's ``metadata``
    holds nothing else, and no explanation is added: a flag without data has none)."""
    scalars = {
        key: item for key, item in data.items() if isinstance(item, bool | int | float | str)
    }
    return MappingProxyType(scalars)


def copy_json(value: Any) -> Any:
    """A deep copy of JSON data, so a caller changing a returned object changes no cache."""
    if isinstance(value, Mapping):
        return {key: copy_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [copy_json(item) for item in value]
    return value


def _mismatch(flag_key: str, where: str, value: object, wanted: str) -> TypeMismatchError:
    return TypeMismatchError(f"flag {flag_key!r} {where} is {value!r}, not {wanted}")


def as_bool(flag_key: str, where: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    raise _mismatch(flag_key, where, value, "a boolean")


def as_str(flag_key: str, where: str, value: object) -> str:
    if isinstance(value, str):
        return value
    raise _mismatch(flag_key, where, value, "a string")


def as_int(flag_key: str, where: str, value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _mismatch(flag_key, where, value, "an integer")


def as_float(flag_key: str, where: str, value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise _mismatch(flag_key, where, value, "a number")


def as_object(flag_key: str, where: str, value: object) -> Any:
    if isinstance(value, dict | list):
        return value
    raise _mismatch(flag_key, where, value, "an object or a list")
