"""OFREP's change stream (ADR-0008): ``GET /ofrep/v1/events``, server-sent events telling web
providers to fetch their bulk evaluation again, instead of polling.

Each change to any flag sends ``data: {"type": "refetchEvaluation"}`` (no flag names, no
values: the provider fetches again with its own context and token, and the ETag answers 304 if
nothing changed for it); a key limited to some flags hears only of changes to those. The
stream is the dashboard's (``_events.py``: keepalives, a client that leaves is noticed at once,
a cap on open streams) with OFREP's event text.

A browser's ``EventSource`` sends no ``Authorization`` header, so the bulk answer hands out the
stream's URL with a *ticket*: the token's name and an HMAC of it under a key drawn by this
process. It opens this stream and nothing else, names the token without holding its secret (so
a URL in a proxy's log gives away no token), and dies with the process. With auth off, no
ticket is needed (only loopback Host names are served then, as everywhere).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Final
from urllib.parse import parse_qs, quote

from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from .._client.rollout import Rollout
from ._auth import Auth
from ._events import EventStream, StreamSlots

__all__ = ["EVENTS_PATH", "INACTIVITY", "OfrepStream"]

EVENTS_PATH: Final = "/ofrep/v1/events"
#: Seconds a hidden page keeps its stream before closing it (the protocol's default).
INACTIVITY: Final = 120
_EVENT: Final = f"data: {json.dumps({'type': 'refetchEvaluation'})}\n\n"


class OfrepStream:
    """The ASGI app behind ``GET /ofrep/v1/events``, and the tickets that open it."""

    def __init__(self, flags: Rollout, auth: Auth, max_streams: StreamSlots) -> None:
        self._auth = auth
        self._key = secrets.token_bytes(32)
        self._flags, self._slots = flags, max_streams
        self._events = self._stream_of(None)
        #: The streams of keys limited to some flags, by their flags (made as first asked).
        self._limited: dict[frozenset[str], EventStream] = {}

    def _stream_of(self, limit: frozenset[str] | None) -> EventStream:
        def render(names: list[str]) -> str | None:
            # A key limited to some flags hears of changes to those only: a refetch after a
            # change to another flag would tell it when flags it may not see change.
            return _EVENT if limit is None or not limit.isdisjoint(names) else None

        return EventStream(self._flags, max_streams=self._slots, render=render, reserved_ok=False)

    def ticket(self, name: str | None) -> str:
        """The ticket for token ``name`` ("" with auth off)."""
        if name is None:
            return ""
        encoded = base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")
        return f"{encoded}.{self._mac(name)}"

    def entry(self, root_path: str, name: str | None) -> dict[str, object]:
        """The bulk answer's ``eventStreams`` item for a client holding token ``name``."""
        ticket = self.ticket(name)
        query = f"?ticket={quote(ticket)}" if ticket else ""
        return {
            "type": "sse",
            "endpoint": {"requestUri": f"{root_path}{EVENTS_PATH}{query}"},
            "inactivityDelaySec": INACTIVITY,
        }

    def _mac(self, name: str) -> str:
        return hmac.new(self._key, name.encode(), hashlib.sha256).hexdigest()[:32]

    def _name(self, ticket: str) -> str | None:
        encoded, _, mac = ticket.partition(".")
        try:
            name = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except ValueError:
            return None
        if not hmac.compare_digest(mac.encode(), self._mac(name).encode()):
            return None
        return name if name in self._auth.names else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._auth.enabled:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            tickets = query.get("ticket", [])
            name = self._name(tickets[0]) if len(tickets) == 1 else None
            if name is None:
                refusal = JSONResponse(
                    {"errorDetails": "this stream needs the ticket of a bulk evaluation's answer"},
                    status_code=401,
                )
                await refusal(scope, receive, send)
                return
            limit = self._auth.grant(name).flags
            if limit is not None:
                if limit not in self._limited:
                    self._limited[limit] = self._stream_of(limit)
                await self._limited[limit](scope, receive, send)
                return
        await self._events(scope, receive, send)
