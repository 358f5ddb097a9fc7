"""``request.flags``: the flags bound to the request's user, resolved on first use."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.utils.functional import SimpleLazyObject  # type: ignore[import-untyped]

from . import flags_for

__all__ = ["RolloutMiddleware"]


class RolloutMiddleware:
    """Sets ``request.flags`` (a :class:`~rollout.integrations.UserFlags`) on every request.

    Lazy like ``request.user``: the user is looked up only when a view or template checks a
    flag, so the middleware can sit anywhere in ``MIDDLEWARE`` (it reads ``request.user``
    then, after ``AuthenticationMiddleware`` has run). Works in sync and async stacks.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)  # Django then awaits what __call__ returns

    def __call__(self, request: Any) -> Any:
        request.flags = SimpleLazyObject(partial(flags_for, request))
        return self.get_response(request)
