"""Who is asking and may they: tokens, sessions, CSRF tokens (:class:`Auth`).

The app's gate (``_gate.py``) asks an :class:`Auth` about every request: it names the actor
(``request.state.actor``: the token's name, or None with auth off), sends the unauthenticated
away (401, or to the login page), holds back clients that guess tokens (429, see
``_throttle.py``), and refuses changes a browser was tricked into sending.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from typing import Final

from starlette.requests import HTTPConnection

from ._grants import FULL, Grant
from ._hosts import check_hosts, is_loopback
from ._sessions import SESSION_IDLE, SESSION_MAX_AGE, Sessions
from ._throttle import Throttle

__all__ = [
    "COOKIE_NAME",
    "SESSION_MAX_AGE",
    "Auth",
    "client_address",
]

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


def client_address(conn: HTTPConnection) -> str:
    """The client's address as the server saw it (behind a proxy that uvicorn trusts, the
    address the proxy forwarded), or "" when the server does not say."""
    return conn.client.host if conn.client is not None else ""
