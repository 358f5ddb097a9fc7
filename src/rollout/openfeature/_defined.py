"""A flag with a definition (variants, a default variant, targeting) as OpenFeature answers it.

Such a flag is flagd's model: its answer is ``flags.evaluate(name, context)`` (the targeting
engine, rollout._core.targeting), whose value, variant and reason the provider passes on as
they are. What the provider adds is OpenFeature's side of it:

* the context as the engine reads it: ``targetingKey`` and the attributes, one flat mapping;
* the caller's default where the resolution has no value (flagd's DISABLED, DEFAULT with no
  default variant, and every error), with no variant;
* TYPE_MISMATCH when the variant's value is not of the type asked for (the engine answers
  values; which type the caller wants only the caller knows);
* the engine's error codes (PARSE_ERROR, GENERAL, FLAG_NOT_FOUND) as OpenFeature's errors;
* the flag metadata: the flag's data (flagd's ``metadata``), every scalar entry of it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import (
    ErrorCode,
    FlagNotFoundError,
    GeneralError,
    OpenFeatureError,
    ParseError,
)
from openfeature.flag_evaluation import FlagMetadata, FlagResolutionDetails, Reason

from .._core.defined import DefinedCheck
from ._context import targeting_key
from ._flag import FlagView, copy_json

if TYPE_CHECKING:
    from .._client.rollout import Rollout
    from .._core.targeting import Resolution

__all__ = ["engine_context", "resolve_defined", "resolve_defined_value"]

T = TypeVar("T")

# The engine's error codes as the exceptions OpenFeature's SDK expects (FLAG_NOT_FOUND: a flag
# deleted between the provider reading it and the evaluation).
_ERRORS: Mapping[str, Callable[[str], OpenFeatureError]] = {
    ErrorCode.PARSE_ERROR.value: ParseError,
    ErrorCode.FLAG_NOT_FOUND.value: FlagNotFoundError,
    ErrorCode.GENERAL.value: GeneralError,
}


def engine_context(context: EvaluationContext | None) -> dict[str, Any]:
    """The evaluation context as the engine reads it: the attributes, and ``targetingKey``
    when the context has one (as flagd's providers build it). A datetime attribute (OpenFeature
    allows them) is its RFC 3339 text, as flagd reads one after its JSON encoding and as an
    OFREP client sends one: a rule then answers the same in process and over HTTP."""
    if context is None:
        return {}
    flat: dict[str, Any] = {name: _as_json(item) for name, item in context.attributes.items()}
    key = targeting_key(context)  # InvalidContextError for a key that is not a str or int
    if key is not None:
        flat["targetingKey"] = key
    return flat


#: Attribute types passed as they are (most attributes: checked first, by exact type).
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _as_json(item: object) -> object:
    """``item`` with its datetimes as RFC 3339 text, lists and mappings copied.

    Iterative: a context nested as deep as a JSON parser takes (hundreds of levels, from an
    OFREP client) must not exhaust Python's recursion, which raised out of the evaluation.
    """
    if type(item) in _SCALARS:
        return item
    root = _container(item)
    if root is None:
        return _scalar(item)
    pending: list[tuple[object, dict[Any, object] | list[object]]] = [(item, root)]
    while pending:
        source, target = pending.pop()
        pairs = source.items() if isinstance(source, Mapping) else enumerate(source)  # type: ignore[arg-type]
        for key, inner in pairs:
            copy = None if type(inner) in _SCALARS else _container(inner)
            if copy is not None:
                pending.append((inner, copy))
            value = _scalar(inner) if copy is None else copy
            if isinstance(target, dict):
                target[key] = value
            else:
                target.append(value)
    return root


def _container(item: object) -> dict[Any, object] | list[object] | None:
    """An empty copy of a mapping or a list, or None for anything else."""
    if isinstance(item, Mapping):
        return {}
    if isinstance(item, list | tuple):
        return []
    return None


def _scalar(item: object) -> object:
    if isinstance(item, datetime):
        text = item.isoformat()
        return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text
    return item


def resolve_defined(
    flags: Rollout,
    view: FlagView,
    default_value: T,
    context: EvaluationContext | None,
    convert: Callable[[str, str, object], T],
) -> FlagResolutionDetails[T]:
    """A typed resolution (``convert`` checks the type asked for) of a defined flag."""
    flag_key, metadata = view.feature.name, view.metadata
    try:
        resolution = _evaluate(flags, view, context)
        reason = _reason(resolution.reason)
        if resolution.value is None:  # the caller's default, with no variant
            return FlagResolutionDetails(default_value, None, None, reason, None, metadata)
        value = convert(flag_key, f"variant {resolution.variant!r}", resolution.value)
    except OpenFeatureError as error:
        return _failure(default_value, error, metadata)
    if isinstance(value, dict | list):
        value = copy_json(value)  # the caller may change it; the engine's value must not
    return FlagResolutionDetails(value, None, None, reason, resolution.variant, metadata)


def resolve_defined_value(
    flags: Rollout, view: FlagView, context: EvaluationContext | None
) -> FlagResolutionDetails[object]:
    """The value whatever its type (OFREP's question): None when the caller's default
    applies, which OFREP answers by leaving the value out."""
    try:
        resolution = _evaluate(flags, view, context)
    except OpenFeatureError as error:
        return _failure(None, error, view.metadata)
    value = copy_json(resolution.value)
    reason = _reason(resolution.reason)
    return FlagResolutionDetails(value, None, None, reason, resolution.variant, view.metadata)


def _evaluate(flags: Rollout, view: FlagView, context: EvaluationContext | None) -> Resolution:
    """``flags.evaluate`` of the version of the flag ``view`` is of (its check's compiled
    definition: the flag's metadata is the view's), its error (if any) raised as
    OpenFeature's."""
    check = view.check
    if isinstance(check, DefinedCheck):
        name = view.feature.name
        resolution = flags._evaluate_version(name, check.compiled, engine_context(context))
    else:  # a view read without its check
        resolution = flags.evaluate(view.feature.name, engine_context(context))
    if resolution.error_code is not None:
        error = _ERRORS.get(resolution.error_code, GeneralError)
        raise error(resolution.error_message or resolution.error_code)
    return resolution


_REASONS: Mapping[str, Reason] = {reason.value: reason for reason in Reason}


def _reason(reason: str) -> Reason:
    # A reason OpenFeature does not name is UNKNOWN: say so rather than guess.
    return _REASONS.get(reason, Reason.UNKNOWN)


def _failure(
    default_value: T, error: OpenFeatureError, metadata: FlagMetadata
) -> FlagResolutionDetails[T]:
    # The flag exists: its metadata still describes it, as flagd answers (not so for a flag
    # deleted since the provider read it).
    if error.error_code is ErrorCode.FLAG_NOT_FOUND:
        metadata = MappingProxyType({})
    return FlagResolutionDetails(
        default_value, error.error_code, error.error_message, Reason.ERROR, None, metadata
    )
