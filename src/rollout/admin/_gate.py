"""The app's one middleware, in front of everything it serves: CORS for OFREP, the Host check,
authentication, the guessing throttle, cross-site refusals and each token's grant, in that
order; then the request goes to its route.

It used to be two ASGI middlewares (CORS, then auth), and behind them Starlette's exception
middleware, router and request wrappers: each layer a coroutine, most a wrapper of ``send``,
per request. Served, those layers cost as much as the check itself. One gate does every check
in one place, and hands a request resolved to a route that answers directly (the check, OFREP's
single evaluation: ``RawRoute(direct=...)``, see ``_routing.py``) straight to it.
"""

from __future__ import annotations

import logging
from typing import Final
from urllib.parse import quote

from starlette.requests import HTTPConnection
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ._asked import Asked
from ._auth import COOKIE_NAME, Auth, client_address
from ._cors import cors_preflight, cors_send
from ._errors import error_response
from ._grants import ADMIN, FULL, OFREP_PREFIX, raw_app_path
from ._hosts import is_loopback, same_origin, split_host
from ._routing import ResolvedRouter
from ._scope import APP_PATH, is_api_path, remember_app_path
from ._throttle import retry_after

__all__ = ["HOSTS_REMEMBERED", "PUBLIC_PATHS", "Gate", "is_public"]

logger = logging.getLogger("rollout")

#: Served to anybody (probes, login, assets); OFREP's event stream checks its own ticket.
PUBLIC_PATHS: Final = frozenset({"/healthz", "/livez", "/readyz", "/login", "/ofrep/v1/events"})
PUBLIC_PREFIXES: Final = ("/static/",)
#: Machine-facing paths: refused with a 401 JSON body rather than sent to the login page.
_JSON_PATHS: Final = frozenset({"/metrics", "/events"})
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
#: Distinct Host headers whose verdict the gate keeps (emptied when full).
HOSTS_REMEMBERED: Final = 256


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


class Gate:
    """Checks every request to the app, then routes it.

    - CORS (OFREP paths, when ``origins`` are given): a preflight is answered here, before
      authentication (it carries no credentials); OFREP answers, a 401 or 429 included, are
      marked readable by an allowed origin (the web provider reacts to them).
    - Host: with auth off, only loopback names (and ``allowed_hosts``): 403 otherwise.
    - Who: ``Authorization: Bearer <secret>``, else the session cookie. A wrong bearer token is
      401 everywhere but the public paths; no credentials on a private path is 401 (API,
      ``/metrics``, ``/events``, unsafe methods) or a 303 to ``/login?next=...`` (pages).
    - Guessing: a request with a bearer token from a client that has guessed wrong too often
      (``auth.throttle``) is 429 with ``Retry-After``, its token unchecked (right or wrong);
      while too many guess from everywhere, it waits for its turn (or is 429 if the line is
      too long).
    - Cross-site: an unsafe method not made with a bearer token is refused (403) when
      ``Sec-Fetch-Site`` says cross-site or ``Origin`` is another origin, and, on a private
      path, unless ``X-CSRF-Token`` carries ``auth.csrf_token(request)``.
    - Scope: what the token's grant does not reach is 403 (``_grants.py``).

    The actor goes to ``scope["state"]["actor"]`` (``request.state.actor``), and the session
    cookie a request came with to ``state["session"]`` (for a stream that outlives it).
    """

    def __init__(self, app: ASGIApp, auth: Auth, origins: frozenset[str]) -> None:
        self.app = app
        self.auth = auth
        self.origins = origins
        self._forwarded_seen = False
        self._hosts: dict[bytes, bool] = {}  # Host header -> served here (see _host_refusal)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        asked = Asked(scope)
        if scope.get("root_path"):
            path = remember_app_path(scope)
        else:  # what remember_app_path records for an app that is not mounted, without a call
            path = scope[APP_PATH] = scope["path"]
        if self.origins and kind == "http" and path.startswith(OFREP_PREFIX):
            preflight = cors_preflight(self.origins, asked)
            if preflight is not None:
                await preflight(scope, receive, send)
                return
            send = cors_send(self.origins, asked, send)
        if not self._forwarded_seen and b"x-forwarded-for" in asked.headers:
            self._forwarded_seen = True
            _warn_if_proxy_unlisted(asked.conn)
        auth = self.auth
        # A Host header seen before is let through on its verdict (see _host_refusal).
        host = asked.headers.get(b"host")
        refusal = None if host and self._hosts.get(host) else self._host_refusal(asked)
        actor = None
        bearer = b"authorization" in asked.headers
        peer = scope.get("client")
        client = str(peer[0]) if peer is not None else ""  # client_of(scope)
        if refusal is None and bearer and auth.enabled:
            # Its turn to have the token checked (a wait while many guess), or a 429. Decided
            # at once nearly always: the coroutine of a wait in line only when there is one.
            wait = auth.throttle.turn_now(client)
            if wait is None:
                wait = await auth.throttle.turn(client)
            if wait > 0:
                refusal = _too_many(wait)
        if refusal is None:
            actor, refusal = self._check(asked, path, scope.get("method", "GET"), bearer, client)
        if refusal is not None:
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            else:
                await refusal(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["actor"] = actor
        # The session a request came with, for a stream that outlives it (``/events``).
        by_cookie = actor is not None and not bearer and auth.enabled
        state["session"] = asked.conn.cookies.get(COOKIE_NAME) if by_cookie else None
        if kind == "http":
            # The app's router, as the app has it now (it may be replaced after create_app).
            router = getattr(scope.get("app"), "router", None)
            if isinstance(router, ResolvedRouter):
                found = router.resolve(scope)
                direct = getattr(found[0], "direct", None) if found is not None else None
                if direct is not None and found is not None:
                    router.enter(scope, found)
                    await direct(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    def _host_refusal(self, asked: Asked) -> Response | None:
        raw = asked.headers.get(b"host")
        # Clients send the same few Host headers again and again: each one's verdict is kept
        # (the rules are fixed when the app is made), which saves parsing it (a microsecond)
        # on every request. Bounded: a client sending random names empties it, no more.
        allowed = self._hosts.get(raw) if raw else None
        if allowed is None:
            allowed = self.auth.host_allowed(self._host_of(asked))
            if raw:
                if len(self._hosts) >= HOSTS_REMEMBERED:
                    self._hosts.clear()
                self._hosts[raw] = allowed
        if allowed:
            return None
        host = self._host_of(asked)
        allow = "start it with a token" if not self.auth.enabled else "add it to allowed_hosts"
        return error_response("forbidden", f"host {host!r} is not served here ({allow})")

    @staticmethod
    def _host_of(asked: Asked) -> str:
        """The Host header's name (without its port), or the server's address without one."""
        server = asked.scope.get("server") or ("", None)
        return split_host(asked.header(b"host") or str(server[0]))[0]

    def _check(
        self, asked: Asked, path: str, method: str, bearer: bool, client: str
    ) -> tuple[str | None, Response | None]:
        auth = self.auth
        public = path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)  # is_public(path)
        actor, via = self._identify(asked, bearer)
        # The one place a token's scope is enforced (auth.grant(actor)).
        grant = FULL if actor is None else auth.grants.get(actor, FULL)
        if via == "bearer":
            auth.throttle.succeeded(client, trust=grant.scope == ADMIN)
        elif via == "bad-token":
            auth.throttle.failed(client)
            if not public:
                return None, _unauthorized("the bearer token is not valid")
        elif via is None and not public:
            if is_api_path(path) or path in _JSON_PATHS or method not in ("GET", "HEAD"):
                return None, _unauthorized("a bearer token or a dashboard session is required")
            return None, _to_login(asked.conn)
        if method not in _SAFE_METHODS and via != "bearer" and not path.startswith(OFREP_PREFIX):
            problem = self._cross_site(asked.conn, checks_token=not public)
            if problem is not None:
                return None, error_response("forbidden", problem)
        if grant.scope != ADMIN and not public:  # an admin grant refuses nothing
            refused = grant.refusal(method, path, raw_app_path(asked.scope))
            if refused is not None:
                return None, error_response("forbidden", refused)
        return actor, None

    def _identify(self, asked: Asked, bearer: bool) -> tuple[str | None, str | None]:
        """``(actor, how)``: how is ``open`` (auth off), ``bearer``, ``cookie``, ``bad-token``
        or None (no credentials)."""
        if not self.auth.enabled:
            return None, "open"
        if bearer:
            scheme, _, credentials = asked.headers[b"authorization"].partition(b" ")
            name = None
            if scheme.lower() == b"bearer":
                name = self.auth.check_token(credentials.decode("latin-1").strip())
            return (name, "bearer") if name is not None else (None, "bad-token")
        name = self.auth.session_name(asked.conn)
        return (name, "cookie") if name is not None else (None, None)

    def _cross_site(self, conn: HTTPConnection, *, checks_token: bool) -> str | None:
        if conn.headers.get("sec-fetch-site", "").lower() == "cross-site":
            return "cross-site request refused (Sec-Fetch-Site: cross-site)"
        origin = conn.headers.get("origin")
        if origin is not None and not same_origin(origin, conn.headers.get("host", "")):
            return f"cross-site request refused: Origin {origin!r} is not this server"
        if checks_token and not self.auth.check_csrf(conn):
            if not self.auth.enabled:
                # The README's curl sent a bearer token to a server started without one: saying
                # "use a bearer token" there sent users in a circle. Say that auth is off.
                bearer = conn.headers.get("authorization") is not None
                sent = "the bearer token sent is not checked and " if bearer else ""
                return (
                    "this server was started without a token (authentication is off), so "
                    f"{sent}a change needs the X-CSRF-Token header of a dashboard page; for "
                    "scripts, start serve with a token: rollout serve --token NAME=SECRET"
                )
            return (
                "a change from a browser session needs the X-CSRF-Token header (the page's "
                "csrf-token meta tag); scripts use a bearer token"
            )
        return None


def _unauthorized(message: str) -> Response:
    return error_response(
        "unauthorized", message, headers={"WWW-Authenticate": 'Bearer realm="rollout"'}
    )


def _too_many(wait: float) -> Response:
    return error_response(
        "too_many_requests",
        "too many wrong tokens (from this address, or from everywhere); this one was not "
        "checked: try again after Retry-After seconds",
        headers={"Retry-After": retry_after(wait)},
    )


def _warn_if_proxy_unlisted(conn: HTTPConnection) -> None:
    """Say once that a loopback client sends X-Forwarded-For that nobody believes.

    ``serve`` believes the header only from the proxies ``FORWARDED_ALLOW_IPS`` lists (a
    listed proxy's requests arrive here with the forwarded address as their client). A
    reverse proxy on this machine that is not listed puts every client behind it in one
    guessing allowance, which one guesser can then spend for all: the log says how to fix it.
    """
    host = client_address(conn)
    if host and is_loopback(host):
        logger.warning(
            "requests from %s carry X-Forwarded-For, which is ignored: if that is a reverse "
            "proxy, set FORWARDED_ALLOW_IPS=%s, or every client behind it shares one "
            "allowance of wrong tokens",
            host,
            host,
        )


def _to_login(conn: HTTPConnection) -> Response:
    root = conn.scope.get("root_path", "")
    here = conn.scope["path"] + (f"?{conn.url.query}" if conn.url.query else "")
    return RedirectResponse(f"{root}/login?next={quote(here, safe='')}", status_code=303)
