"""``create_app``: the JSON API, the dashboard and ``/metrics`` as one Starlette app."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Iterable, Mapping

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute

from .._client.rollout import Rollout
from ..errors import RolloutError
from ._api import Api
from ._auth import Auth
from ._code_threads import CODE_TIMEOUT, CodeDeadline
from ._cors import check_origins
from ._errors import client_gone_handler, http_exception_handler, rollout_error_handler
from ._events import MAX_STREAMS, ChangeCount, StreamSlots
from ._gate import Gate
from ._grants import grants_of
from ._health import health_routes
from ._metrics import metrics_routes
from ._ofrep_routes import ofrep_service
from ._openapi import openapi_document
from ._pages import page_routes
from ._routing import ResolvedRouter

__all__ = ["create_app"]


def create_app(
    flags: Rollout,
    *,
    token: str | None = None,
    tokens: Mapping[str, str] | None = None,
    session_secret: str | bytes | None = None,
    allowed_hosts: Iterable[str] | None = None,
    max_body: int = 1_048_576,
    max_event_streams: int = MAX_STREAMS,
    require_reason: bool = False,
    scopes: Mapping[str, str] | None = None,
    token_flags: Mapping[str, Iterable[str]] | None = None,
    cors_origins: Iterable[str] | None = None,
    code_timeout: float = CODE_TIMEOUT,
) -> Starlette:
    """The admin app for ``flags``: ``/api/v1`` (JSON), the dashboard, ``/metrics``, the probes
    (``/healthz`` and ``/livez``: alive; ``/readyz``: store, transport and clock checked).

    ``token`` (named ``admin``) or ``tokens`` (``{name: secret}``) turn authentication on; the
    name is recorded as the actor of every change. Without either, auth is off and only
    loopback Host names (plus ``allowed_hosts``) are served. Dashboard sessions are kept by the
    app (they end at sign-out, and with the process); ``session_secret`` keys their CSRF tokens
    (a random key per app without it). ``max_body`` bounds a request body, in bytes;
    ``max_event_streams`` the open event streams, dashboards' and OFREP's (more get 503).
    ``require_reason``: every change must give a ``reason`` (a 422 without one, nothing written).
    Without auth, changes are recorded as made by ``anonymous@<client address>``.
    ``code_timeout`` (seconds) bounds a read that runs the application's code (a group's
    predicate, a rule: check, explain, evaluate, OFREP): past it, a 503 naming the flag.
    The app does not own ``flags``: closing it is the caller's job.

    OFREP (``/ofrep/v1``, docs/ofrep.md) needs the ``openfeature`` extra. ``scopes`` gives
    tokens by name the scope ``evaluate`` (OFREP and the check only; the rest are ``admin``),
    ``token_flags`` limits such a token to named flags, and ``cors_origins`` are the origins
    whose pages may call OFREP (``*``: any).
    """
    if not isinstance(flags, Rollout):
        raise TypeError(f"flags must be a rollout.Rollout, got {flags!r}")
    if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 1:
        raise ValueError(f"max_body must be a positive int (bytes), got {max_body!r}")
    if (
        isinstance(max_event_streams, bool)
        or not isinstance(max_event_streams, int)
        or max_event_streams < 1
    ):
        raise ValueError(f"max_event_streams must be a positive int, got {max_event_streams!r}")
    code = CodeDeadline(code_timeout)
    auth = Auth(token, tokens, session_secret=session_secret, allowed_hosts=allowed_hosts)
    auth.grants = grants_of(auth.names, scopes, token_flags)
    origins = check_origins(cors_origins)
    document = functools.partial(openapi_document, secured=auth.enabled)
    api = Api(
        flags,
        max_body=max_body,
        document=document,
        require_reason=bool(require_reason),
        code=code,
    )

    # The dashboards' and OFREP's event streams share one bound: `serve` leaves room for them.
    # A tenth (at least one, when there are two) is the dashboards' alone: see StreamSlots.
    streams = StreamSlots(
        max_event_streams, reserved=min(max_event_streams - 1, max(1, max_event_streams // 10))
    )
    ofrep = ofrep_service(flags, auth, max_body, streams, code)
    changes = ChangeCount(flags)  # what a page was drawn at, against what its stream opens at

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        ofrep.start()  # its subscriptions end with the app, not with the Rollout
        changes.start()
        try:
            yield
        finally:
            changes.stop()
            ofrep.stop()

    routes: list[BaseRoute] = [
        *health_routes(flags),
        *api.routes(),
        *ofrep.routes,
        *metrics_routes(flags, code=code),
        *page_routes(flags, auth, streams, require_reason=bool(require_reason), count=changes),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        # One middleware for every check (see _gate.py): each layer costs every request.
        middleware=[Middleware(Gate, auth=auth, origins=origins)],
        exception_handlers={
            HTTPException: http_exception_handler,
            RolloutError: rollout_error_handler,
            ClientDisconnect: client_gone_handler,
        },
    )
    # Routes resolved once per path (see ResolvedRouter). No redirects: a path that matches no
    # route is a 404. Starlette's default sends /flags/victim/ to /flags/victim, another flag
    # (a browser's fetch follows it, DELETE too), with a Location built from the Host header.
    app.router = ResolvedRouter(routes, redirect_slashes=False, lifespan=lifespan)
    app.state.flags = flags
    app.state.auth = auth
    return app
