"""Dashboard sessions, kept by the server: a random id in the cookie, its token name here.

A signed cookie that carries its own expiry cannot be ended before it expires: a copy of it
keeps working after sign-out. So the cookie is only a random id (32 bytes, URL-safe base64),
and the server keeps what it means; signing out deletes it here, and a copy of the cookie then
opens nothing. A session ends at sign-out, :data:`SESSION_MAX_AGE` after sign-in whatever is
done with it, or :data:`SESSION_IDLE` after its last request. The table lives in the process:
a restart ends every session (as does a changed token, which takes a restart), and a session
made by one ``serve`` process is unknown to another.

Ids are looked up by their SHA-256, so the time a lookup takes says nothing about how much of a
guessed id matched. Anything that is not the shape of an id (too long, not ASCII, empty) is
refused before it is hashed: a crafted cookie is a 401, never an exception.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = ["SESSION_IDLE", "SESSION_MAX_AGE", "Sessions"]

#: Seconds a session lasts from sign-in, at most; the cookie gets the same Max-Age.
SESSION_MAX_AGE: Final = 12 * 3600
#: Seconds a session lasts without a request.
SESSION_IDLE: Final = 2 * 3600
_ID: Final = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass
class _Session:
    name: str
    started: float
    used: float


class Sessions:
    """The open sessions of one app, the least recently used first (event loop thread only).

    At most ``limit`` are kept; signing in past it ends the least recently used one (only a
    holder of a token can sign in, so this bounds memory, not an attacker).
    """

    def __init__(
        self,
        *,
        max_age: float = SESSION_MAX_AGE,
        idle: float = SESSION_IDLE,
        limit: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._open: OrderedDict[bytes, _Session] = OrderedDict()
        self._max_age = max_age
        self._idle = idle
        self._limit = limit
        self._clock = clock

    def start(self, name: str) -> str:
        """A new session for token ``name``: the cookie value."""
        value = secrets.token_urlsafe(32)
        now = self._clock()
        self._open[_key(value)] = _Session(name, now, now)
        while len(self._open) > self._limit:
            self._open.popitem(last=False)
        return value

    def name(self, value: str, *, touch: bool = True) -> str | None:
        """The token name of the open session ``value`` is the id of, or None.

        ``touch`` counts it as a use (it restarts the idle time).
        """
        if not _ID.fullmatch(value):
            return None
        key = _key(value)
        session = self._open.get(key)
        if session is None:
            return None
        now = self._clock()
        if now - session.started > self._max_age or now - session.used > self._idle:
            del self._open[key]
            return None
        if touch:
            session.used = now
            self._open.move_to_end(key)
        return session.name

    def end(self, value: str) -> None:
        """End the session ``value`` is the id of (nothing if there is none)."""
        if _ID.fullmatch(value):
            self._open.pop(_key(value), None)

    def end_all(self, name: str | None = None) -> int:
        """End every session (of token ``name``, if given); how many ended."""
        ended = [k for k, s in self._open.items() if name is None or s.name == name]
        for key in ended:
            del self._open[key]
        return len(ended)

    def __len__(self) -> int:
        return len(self._open)


def _key(value: str) -> bytes:
    return hashlib.sha256(value.encode("ascii")).digest()
