"""The provider's own FlagResolutionDetails: a shared one, and one whose metadata is built late.

A ``FlagResolutionDetails`` is a plain dataclass; building one per resolution costs as much as a
``flags.active()``, and its flag metadata (the explanation's numbers, with the user's bucket)
as much again. These subclasses read like the dataclass (the same six fields, equal to a
``FlagResolutionDetails`` of the same values, printed as one) and cost less:

* :class:`SettledDetails`: a flag the same for every context answers one shared, read-only
  resolution, built once;
* :class:`TargetedDetails`: a targeted boolean's resolution keeps its decision, and builds the
  flag metadata from it when ``flag_metadata`` is first read: a caller that never reads it (most
  read ``value`` alone) never pays for it. The OpenFeature client reads it (it copies the
  reference into its evaluation details), and then gets what it always got.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from openfeature.exception import ErrorCode, OpenFeatureError
from openfeature.flag_evaluation import FlagMetadata, FlagResolutionDetails, Reason

if TYPE_CHECKING:
    from .._core.explain import Decision

__all__ = ["MetadataSource", "SettledDetails", "TargetedDetails", "failure"]

T = TypeVar("T")

_FIELDS = ("value", "error_code", "error_message", "reason", "variant", "flag_metadata")


class _Details(FlagResolutionDetails[bool]):
    """Equal to any FlagResolutionDetails of the same field values, and printed as one (the
    dataclass's own equality wants the same class; its repr would name the subclass)."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FlagResolutionDetails):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in _FIELDS)

    __hash__ = None  # type: ignore[assignment]  # as the dataclass's: equal, not hashable

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in _FIELDS)
        return f"FlagResolutionDetails({fields})"


class SettledDetails(_Details):
    """A resolution shared by every call that gets it (a flag's STATIC or DISABLED answer):
    read-only, so a caller changing its copy cannot change another's. A flag that answers the
    same for every context is resolved without building a FlagResolutionDetails."""

    def __init__(  # noqa: PLR0917 - FlagResolutionDetails's own fields
        self,
        value: bool,
        error_code: ErrorCode | None = None,
        error_message: str | None = None,
        reason: str | Reason | None = None,
        variant: str | None = None,
        flag_metadata: FlagMetadata | None = None,
    ) -> None:
        fields = {
            "value": value,
            "error_code": error_code,
            "error_message": error_message,
            "reason": reason,
            "variant": variant,
            "flag_metadata": MappingProxyType({}) if flag_metadata is None else flag_metadata,
        }
        self.__dict__.update(fields)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a shared resolution is read-only: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"a shared resolution is read-only: cannot delete {name!r}")


class MetadataSource(Protocol):
    """What builds a decision's flag metadata: the flag's view (openfeature._flag.FlagView)."""

    def metadata_for(self, decision: Decision, /) -> FlagMetadata: ...


class _MetadataOnRead:
    """``TargetedDetails.flag_metadata`` until it is first read: the view's metadata of the
    decision (``FlagView.metadata_for``), then kept as the instance's own attribute, which a
    non-data descriptor gives way to: later reads, and a value the caller sets, are plain
    attribute reads. Two threads reading it at once each build an equal, read-only mapping,
    and one is kept: no thread sees one half built."""

    def __get__(self, details: TargetedDetails | None, owner: type | None = None) -> Any:
        if details is None:  # read on the class
            return self
        decision = details._decision
        bucket = getattr(details, "_bucket", None)  # set where the decision is a template
        if bucket is not None:  # the user's bucket written into the flag's decision
            decision = (*decision[:5], bucket, *decision[6:])
        metadata = details._view.metadata_for(decision)
        # Set as an attribute, not through __dict__: the object's values stay inline (reading
        # its __dict__ would build a dict of them, a third of the metadata's own cost).
        resolved: FlagResolutionDetails[bool] = details
        resolved.flag_metadata = metadata
        return metadata


class TargetedDetails(_Details):
    """A targeted boolean flag's resolution, built by the flag's resolution function
    (rollout._core.decide.specialize_resolution) with ``object.__new__`` and its fields set
    (the dataclass's ``__init__`` costs a third more); ``error_code`` and ``error_message`` are
    the dataclass's defaults (None), not set per resolution. ``flag_metadata`` is built from the
    decision when first read (_MetadataOnRead): ``_decision``, with ``_bucket`` written in when
    set (a decision that differs between users by the bucket alone is the flag's template, not
    a tuple per resolution). Otherwise a FlagResolutionDetails: its fields can be set,
    ``dataclasses.replace`` and ``copy`` work."""

    # The fields a resolution sets are slots too (value, reason, variant): set and read in
    # place, and the object needs no attribute dict until flag_metadata is read.
    __slots__ = ("_bucket", "_decision", "_view", "reason", "value", "variant")

    _view: MetadataSource
    _decision: Decision
    _bucket: int

    flag_metadata = _MetadataOnRead()


def failure(default_value: T, error: OpenFeatureError) -> FlagResolutionDetails[T]:
    """The resolution of an error: the caller's default, the error's code and message."""
    return FlagResolutionDetails(
        default_value, error.error_code, error.error_message, Reason.ERROR, None
    )
