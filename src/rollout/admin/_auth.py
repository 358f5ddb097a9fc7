"""Who is asking and may they: tokens, sessions, CSRF tokens (:class:`Auth`) and the middleware.

:class:`AuthMiddleware` sits in front of everything the app serves. It names the actor
(``request.state.actor``: the token's name, or None with auth off), sends the unauthenticated
away (401, or to the login page), holds back clients that guess tokens (429, see
``_throttle.py``), and refuses changes a browser was tricked into sending.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Iterable, Mapping
from typing import Final
from urllib.parse import quote

from starlette.requests import HTTPConnection
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ._asked import Asked, client_of
from ._errors import error_response
from ._grants import ADMIN, FULL, Grant, is_ofrep_path, raw_app_path
from ._hosts import check_hosts, is_loopback, same_origin, split_host
from ._scope import is_api_path, remember_app_path
from ._sessions import SESSION_IDLE, SESSION_MAX_AGE, Sessions
from ._throttle import Throttle, retry_after

__all__ = [
    "COOKIE_NAME",
    "SESSION_MAX_AGE",
    "Auth",
    "AuthMiddleware",
    "client_address",
    "is_public",
]

logger = logging.getLogger("rollout")

COOKIE_NAME: Final = "rollout_session"
_DEFAULT_NAME = "admin"


class Auth:
    """The tokens an app accepts and the keys its sessions and CSRF tokens are signed with.

    ``token="s3cret"`` is one token named ``admin``; ``tokens={"alice": "s3cret", "ci": "x"}``
    names each (the name is the actor in history). Neither: auth is off (``enabled`` False),
    and only loopback Host names (and ``allowed_hosts``) are served.

    Sessions are kept by this Auth (``sessions``, see ``_sessions.py``): the cookie is a random
    id, and signing out ends the session for every copy of the cookie. CSRF tokens are HMACs of
    the session id under ``session_secret``, or, without one, under a key drawn for this Auth.
    ``throttle`` counts wrong tokens per client and in total (see ``_throttle.py``).
    """

    COOKIE_NAME: Final = COOKIE_NAME
    SESSION_MAX_AGE: Final = SESSION_MAX_AGE
    SESSION_IDLE: Final = SESSION_IDLE

    def __init__(
        self,
        token: str | None = None,
        tokens: Mapping[str, str] | None = None,
        *,
        session_secret: str | bytes | None = None,
        allowed_hosts: Iterable[str] | None = None,
    ) -> None:
        self._tokens: dict[str, bytes] = _check_tokens(token, tokens)
        self.grants: dict[str, Grant] = {}  # name -> scope and flags (grants_of); none: admin
        self.enabled: bool = bool(self._tokens)
        if session_secret is None:
            key = secrets.token_bytes(32)
        elif isinstance(session_secret, str | bytes) and session_secret:
            raw = session_secret.encode() if isinstance(session_secret, str) else session_secret
            key = hashlib.sha256(b"rollout-admin-session\0" + raw).digest()
        else:
            raise ValueError(
                f"session_secret must be a non-empty str or bytes, got {session_secret!r}"
            )
        self._key = key
        self.allowed_hosts: tuple[str, ...] = check_hosts(allowed_hosts)
        self.sessions = Sessions()
        self.throttle = Throttle()

    @property
    def names(self) -> list[str]:
        """The token names (never the secrets)."""
        return sorted(self._tokens)

    # Tokens ---------------------------------------------------------------------------------

    def check_token(self, presented: str) -> str | None:
        """The name of the token ``presented`` is, or None. Constant time for each token."""
        given = presented.encode("utf-8", "surrogateescape")
        found = None
        for name, secret in self._tokens.items():
            # Every token is compared, so the time taken does not say which one nearly matched.
            if hmac.compare_digest(given, secret):
                found = name
        return found

    def grant(self, name: str | None) -> Grant:
        """What token ``name`` may do (``_grants.py``); everything with auth off."""
        return FULL if name is None else self.grants.get(name, FULL)

    # Sessions -------------------------------------------------------------------------------

    def session_cookie(self, name: str) -> str:
        """A new session for token ``name``: the value of the ``COOKIE_NAME`` cookie."""
        if name not in self._tokens:
            raise ValueError(f"name must be one of the token names {self.names}, got {name!r}")
        return self.sessions.start(name)

    def check_session(self, value: str) -> str | None:
        """The token name of the open session a cookie value names, or None (never raises)."""
        return self.sessions.name(value)

    def session_name(self, conn: HTTPConnection) -> str | None:
        """The token name of the request's session cookie, if it names an open session."""
        value = conn.cookies.get(COOKIE_NAME)
        return self.check_session(value) if value else None

    def session_open(self, value: str) -> bool:
        """Whether the session a cookie value names is still open (not counted as a use)."""
        return self.sessions.name(value, touch=False) is not None

    def end_session(self, conn: HTTPConnection) -> None:
        """End the session of the request's cookie (sign-out): no copy of it opens anything."""
        value = conn.cookies.get(COOKIE_NAME)
        if value:
            self.sessions.end(value)

    # CSRF -----------------------------------------------------------------------------------

    def csrf_token(self, request: HTTPConnection) -> str:
        """The value a page must send back in ``X-CSRF-Token`` with each change it makes.

        Bound to the request's session (so it changes at each login), or, with auth off, to
        this Auth's key. A page puts it in ``<meta name="csrf-token">``.
        """
        session = ""
        if self.enabled:
            value = request.cookies.get(COOKIE_NAME, "")
            session = value if self.session_open(value) else ""
        message = b"csrf\0" + session.encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def check_csrf(self, request: HTTPConnection) -> bool:
        presented = request.headers.get("x-csrf-token", "")
        return hmac.compare_digest(presented.encode(), self.csrf_token(request).encode())

    # Hosts ----------------------------------------------------------------------------------

    def host_allowed(self, host: str) -> bool:
        """Whether a Host name (without port) may be served.

        With auth off, a loopback name or address, or one of ``allowed_hosts``: a page on
        another site that resolves its own name to 127.0.0.1 (DNS rebinding) is refused. With
        auth on, any host unless ``allowed_hosts`` narrows it.
        """
        host = host.lower().rstrip(".")
        if is_loopback(host):
            return True
        if not self.allowed_hosts:
            return self.enabled
        for pattern in self.allowed_hosts:
            if pattern in ("*", host):
                return True
            if pattern.startswith("*.") and host.endswith(pattern[1:]):
                return True
        return False


def _check_tokens(token: str | None, tokens: Mapping[str, str] | None) -> dict[str, bytes]:
    named: dict[str, str] = {}
    if token is not None:
        named[_DEFAULT_NAME] = token
    if tokens is not None:
        if not isinstance(tokens, Mapping):
            raise TypeError(f"tokens must be a mapping of name to secret, got {tokens!r}")
        for name, secret in tokens.items():
            if not isinstance(name, str) or not name or not name.isprintable():
                raise ValueError(f"tokens: a name must be a non-empty printable str, got {name!r}")
            if name in named:
                raise ValueError(f"tokens: the name {name!r} is given twice")
            named[name] = secret
    for name, secret in named.items():
        if not isinstance(secret, str) or not secret:
            raise ValueError(f"token {name!r} must be a non-empty str, got {secret!r}")
        if any(c.isspace() or not c.isprintable() for c in secret):
            # It has to travel in an Authorization header and on a command line.
            raise ValueError(f"token {name!r} must not contain spaces or control characters")
    secrets_seen = list(named.values())
    if len(set(secrets_seen)) != len(secrets_seen):
        raise ValueError("tokens: two names share one secret, so the actor would be ambiguous")
    return {name: secret.encode() for name, secret in named.items()}


# The middleware -------------------------------------------------------------------------------

#: Served to anybody (probes, login, assets); OFREP's event stream checks its own ticket.
PUBLIC_PATHS: Final = frozenset({"/healthz", "/livez", "/readyz", "/login", "/ofrep/v1/events"})
PUBLIC_PREFIXES: Final = ("/static/",)
#: Machine-facing paths: refused with a 401 JSON body rather than sent to the login page.
_JSON_PATHS: Final = frozenset({"/metrics", "/events"})
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
#: Distinct Host headers whose verdict the middleware keeps (emptied when full).
HOSTS_REMEMBERED: Final = 256


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


class AuthMiddleware:
    """Authenticates every request to the app and refuses cross-site changes.

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
    """

    def __init__(self, app: ASGIApp, auth: Auth) -> None:
        self.app = app
        self.auth = auth
        self._forwarded_seen = False
        self._hosts: dict[bytes, bool] = {}  # Host header -> served here (see _host_refusal)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        asked = Asked(scope)
        if not self._forwarded_seen and b"x-forwarded-for" in asked.headers:
            self._forwarded_seen = True
            _warn_if_proxy_unlisted(asked.conn)
        path = remember_app_path(scope)
        actor, refusal = None, self._host_refusal(asked)
        bearer = b"authorization" in asked.headers
        if refusal is None and self.auth.enabled and bearer:
            # Its turn to have the token checked (a wait while many guess), or a 429.
            wait = await self.auth.throttle.turn(client_of(scope))
            if wait > 0:
                refusal = _too_many(wait)
        if refusal is None:
            actor, refusal = self._check(asked, path, scope.get("method", "GET"))
        if refusal is not None:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            else:
                await refusal(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["actor"] = actor
        # The session a request came with, for a stream that outlives it (``/events``).
        by_cookie = self.auth.enabled and actor is not None and not bearer
        state["session"] = asked.conn.cookies.get(COOKIE_NAME) if by_cookie else None
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

    def _check(self, asked: Asked, path: str, method: str) -> tuple[str | None, Response | None]:
        auth = self.auth
        public = is_public(path)
        client = client_of(asked.scope)
        actor, via = self._identify(asked)
        if via == "bearer":
            auth.throttle.succeeded(client, trust=auth.grant(actor).scope == ADMIN)
        elif via == "bad-token":
            auth.throttle.failed(client)
        if via == "bad-token" and not public:
            return None, _unauthorized("the bearer token is not valid")
        if via is None and not public:
            if is_api_path(path) or path in _JSON_PATHS or method not in ("GET", "HEAD"):
                return None, _unauthorized("a bearer token or a dashboard session is required")
            return None, _to_login(asked.conn)
        if method not in _SAFE_METHODS and via != "bearer" and not is_ofrep_path(path):
            problem = self._cross_site(asked.conn, checks_token=not public)
            if problem is not None:
                return None, error_response("forbidden", problem)
        grant = auth.grant(actor)  # the one place a token's scope is enforced
        refused = None if public else grant.refusal(method, path, raw_app_path(asked.scope))
        if refused is not None:
            return None, error_response("forbidden", refused)
        return actor, None

    def _identify(self, asked: Asked) -> tuple[str | None, str | None]:
        """``(actor, how)``: how is ``open`` (auth off), ``bearer``, ``cookie``, ``bad-token``
        or None (no credentials)."""
        if not self.auth.enabled:
            return None, "open"
        authorization = asked.header(b"authorization")
        if authorization is not None:
            scheme, _, credentials = authorization.partition(" ")
            name = None
            if scheme.lower() == "bearer":
                name = self.auth.check_token(credentials.strip())
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


def client_address(conn: HTTPConnection) -> str:
    """The client's address as the server saw it (behind a proxy that uvicorn trusts, the
    address the proxy forwarded), or "" when the server does not say."""
    return conn.client.host if conn.client is not None else ""


def _to_login(conn: HTTPConnection) -> Response:
    root = conn.scope.get("root_path", "")
    here = conn.scope["path"] + (f"?{conn.url.query}" if conn.url.query else "")
    return RedirectResponse(f"{root}/login?next={quote(here, safe='')}", status_code=303)
