"""One request as the app's gate (``_gate.py``) reads it, on every request the app serves.

Starlette's ``HTTPConnection`` looks a header up by walking the request's list of headers and
makes a new tuple each time the client address is asked for: the middleware asked for five
headers and the address three times a request, which was a fifth of a check's time in the app.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection
from starlette.types import Scope

__all__ = ["Asked", "client_of"]


class Asked:
    """A request's headers read once into a dict (each name's first value, which is what
    Starlette's ``Headers.get`` answers); its ``HTTPConnection`` made only when cookies or the
    URL are wanted."""

    __slots__ = ("_conn", "headers", "scope")

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            if name not in headers:
                headers[name] = value
        self.headers = headers
        self._conn: HTTPConnection | None = None

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return None if value is None else value.decode("latin-1")

    @property
    def conn(self) -> HTTPConnection:
        if self._conn is None:
            self._conn = HTTPConnection(self.scope)
        return self._conn


def client_of(scope: Scope) -> str:
    """The client's address as the server saw it, or "" (``_auth.client_address``, read
    from the scope without a connection object)."""
    client = scope.get("client")
    return str(client[0]) if client is not None else ""
