"""The provider's boolean resolution in C, where the Rollout checks in C (docs/accelerator.md).

``rollout._core._speedups.ResolveBoolean`` stands as ``RolloutProvider.resolve_boolean_details``
when the accelerator is there: a method descriptor (as ``flags.active`` in C is) that answers the
method's two usual cases itself, taking the Python method's steps (a targeted flag's resolution of
a context with a str targeting key, through the flag's ``Resolution``; a settled flag's shared
resolution without a context), and calls the Python method, its ``__wrapped__``, for everything
else, and for a provider whose Rollout checks in Python (its :func:`provider_state` is None).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

from openfeature.exception import OpenFeatureError

from .._core import native
from .._core.decide import specialize_resolution
from ._context import ContextUser
from ._details import TargetedDetails, failure
from ._explained import REASONS
from ._flag import FlagView, Resolver

if TYPE_CHECKING:
    from .._client.rollout import Rollout
    from .._core.feature import Check

__all__ = ["accelerated", "provider_state", "resolver_of"]

F = TypeVar("F", bound=Callable[..., object])


def accelerated(method: F) -> F:
    """``method`` (resolve_boolean_details) with its usual cases in C, if the accelerator is
    there (read when the provider's module is imported)."""
    if native.speedups is None:
        return method
    resolve: F = native.speedups.ResolveBoolean(method)
    return resolve


def provider_state(flags: Rollout, views: Mapping[str, object], context_users: bool) -> object:
    """What the C method reads of a provider (its ``_fast``); None where ``flags`` checks in
    Python: the Python method answers then."""
    speedups = flags._speedups
    if speedups is None:
        return None
    state: object = speedups.ProviderState(
        views=views,
        forced=flags.overrides,
        checks=flags._checks,
        slot=flags._check_slot,
        context_users=context_users,
        context_user=ContextUser,
        error=OpenFeatureError,
        failure=failure,
    )
    return state


def resolver_of(
    flags: Rollout, flag_key: str, view: FlagView, check: Check | None
) -> Resolver | None:
    """The view's resolution function, of ``check`` (the flag's now), kept on the view: the
    accelerator's ``Resolution`` where ``flags`` checks in C, else decide.py's Python function.
    None for a view of another version than ``check``'s (its variants and reasons with the new
    check's decisions would be details of neither), or a flag overridden."""
    if check is None or check is not view.check:
        return None
    if flags._overrides.forced(flag_key) is not None:
        return None
    resolve = specialize_resolution(
        check,
        flags._group_failed,
        result=TargetedDetails,
        view=view,
        reasons=REASONS,
        on_variant=view.variant,
        off_variant=view.off_variant,
        speedups=flags._speedups,
    )
    view.resolver = resolver = (check, resolve)  # two threads may both build it: the same
    return resolver
