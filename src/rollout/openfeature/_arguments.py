"""The provider's constructor arguments, checked before anything is set up."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from openfeature.evaluation_context import EvaluationContext
from openfeature.hook import Hook

from .._client.rollout import Rollout

__all__ = ["checked_arguments"]


def checked_arguments(
    flags: object,
    user_from_context: Callable[[EvaluationContext], object] | None,
    hooks: Iterable[Hook],
    status_interval: float | None,
) -> list[Hook]:
    """Refuse a bad argument by name (TypeError, ValueError); the hooks as a list."""
    if not isinstance(flags, Rollout):
        raise TypeError(f"flags must be a rollout.Rollout, got {flags!r}")
    if user_from_context is not None and not callable(user_from_context):
        raise TypeError(f"user_from_context must be callable or None, got {user_from_context!r}")
    if status_interval is not None and (
        isinstance(status_interval, bool)
        or not isinstance(status_interval, int | float)
        or not 0 < status_interval < float("inf")
    ):
        raise ValueError(
            f"status_interval must be a number of seconds above 0 or None, got {status_interval!r}"
        )
    hook_list = list(hooks)
    for hook in hook_list:
        if not isinstance(hook, Hook):
            raise TypeError(f"hooks must be openfeature Hook objects, got {hook!r}")
    return hook_list
