"""Starlette and FastAPI: one Rollout opened by the app's lifespan, flags for the request's user.

::

    rollout = ASGIRollout("sqlite:///flags.db", defaults={"new_checkout": False})
    app = FastAPI(lifespan=rollout.lifespan)
    templates = Jinja2Templates("templates", context_processors=[rollout.template_context])

    @app.get("/")
    async def home(request: Request, flags: UserFlags = Depends(rollout.user_flags)):
        if flags.active("new_checkout"): ...
        return templates.TemplateResponse(request, "home.html")  # {% if flags["..."] %}

``user`` resolves the request's user (sync or async; ``None`` is anonymous). The default reads
``request.user`` as Starlette's ``AuthenticationMiddleware`` sets it, when authenticated.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio.to_thread
from starlette.requests import Request

from .._client.rollout import Rollout
from ..stores import Store
from . import UserFlags
from ._lazy import LazyRollout, check_options

__all__ = ["ASGIRollout", "request_user"]

UserResolver = Callable[[Request], object | Awaitable[object]]

#: Where a request's UserFlags are kept, so the user is resolved once per request.
_SCOPE_KEY = "rollout.user_flags"


def request_user(request: Request) -> object:
    """The default resolver: ``request.user`` if authenticated (``AuthenticationMiddleware``)."""
    user = request.scope.get("user")
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return user


class ASGIRollout:
    """One process-wide ``Rollout(store, **options)`` for an ASGI app, and its request glue.

    The Rollout is opened by :meth:`lifespan` at start-up (or by the first request, without
    one) and closed at shutdown (or when the process exits).
    """

    def __init__(
        self, store: Store | str | None, *, user: UserResolver | None = None, **options: Any
    ) -> None:
        if user is not None and not callable(user):
            raise TypeError(f"user must be a callable taking the request, got {user!r}")
        self._holder = LazyRollout(store, check_options(store, options, "ASGIRollout"))
        self.resolve_user: UserResolver = user or request_user

    @property
    def flags(self) -> Rollout:
        """The process-wide Rollout."""
        return self._holder.get()

    async def user_flags(self, request: Request) -> UserFlags:
        """The request user's flags: a FastAPI dependency, ``Depends(rollout.user_flags)``."""
        cached = request.scope.get(_SCOPE_KEY)
        if isinstance(cached, UserFlags):
            return cached
        user = self.resolve_user(request)
        if inspect.isawaitable(user):
            user = await user
        flags = request.scope[_SCOPE_KEY] = UserFlags(self.flags, user)
        return flags

    def template_context(self, request: Request) -> dict[str, Any]:
        """``{"flags": ...}`` for ``Jinja2Templates(context_processors=[...])``.

        Starlette calls context processors synchronously: with an async ``user`` resolver,
        depend on :meth:`user_flags` in the endpoint first (its result is reused here).
        """
        flags = request.scope.get(_SCOPE_KEY)
        if flags is None:
            user = self.resolve_user(request)
            if inspect.isawaitable(user):
                if inspect.iscoroutine(user):
                    user.close()  # never awaited: close it rather than leak a warning
                raise TypeError(
                    "the user resolver is async, so template_context cannot call it: "
                    "add `Depends(rollout.user_flags)` to the endpoint"
                )
            flags = request.scope[_SCOPE_KEY] = UserFlags(self.flags, user)
        return {"flags": flags}

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: object) -> AsyncIterator[None]:
        """Open the Rollout at start-up, close it at shutdown: ``FastAPI(lifespan=...)``.

        Inside your own lifespan: ``async with rollout.lifespan(app): yield``.
        """
        # Opening reads the store and closing leaves the cluster: off the event loop.
        await anyio.to_thread.run_sync(self._holder.get)
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(self._holder.close)

    def close(self) -> None:
        """Close the Rollout now; the next use opens a new one."""
        self._holder.close()
