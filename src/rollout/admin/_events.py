"""``GET /events``: server-sent events telling open dashboards which flags changed.

Each change (a write through the API, the CLI on the same store, a merge from another node) sends

    event: flags
    data: {"changed": ["chat", "signup"]}

and, on the dashboard's stream, each change of named rules (those flags whose answers it changed
are in a ``flags`` event too) sends the rules' names in an event of their own, so that a rule
name is never read as a flag's:

    event: rules
    data: {"changed": ["pro"]}

and a comment line every ``KEEPALIVE`` seconds keeps proxies from closing an idle stream. The
page then fetches what it shows of those flags; the stream never carries flag state itself, so
it cannot leak anything the API would not show.

A stream opened with a dashboard session ends, without another byte, at the first event or
keepalive after that session has ended (signed out): a copy of the cookie cannot keep listening.

A raw ASGI app rather than a ``StreamingResponse``: it must notice a client that goes away while
nothing is being sent (to unsubscribe at once, not at the next keepalive), which means reading
``receive()`` for ``http.disconnect`` while waiting for changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from ._limits import Throttled

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

    from .._client.rollout import Rollout

__all__ = ["KEEPALIVE", "MAX_STREAMS", "ChangeCount", "EventStream", "StreamSlots"]

logger = logging.getLogger(__name__)

#: Seconds between keepalive comments on an idle stream (read at every wait, so tests may lower
#: it). Most proxies close a connection idle for 30-60 s.
KEEPALIVE = 15.0

#: Event streams (open dashboards) served at once by default.
MAX_STREAMS = 1000

#: Milliseconds the browser waits before reconnecting after the stream drops.
RETRY_MS = 2000

_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    # nginx buffers responses by default, which would hold events back until the buffer fills.
    (b"x-accel-buffering", b"no"),
]

_BUSY = [(b"content-type", b"application/json"), (b"retry-after", b"5")]
_BUSY_BODY = json.dumps(
    {"error": {"code": "unavailable", "field": None, "message": "too many open event streams"}}
).encode()


class ChangeCount:
    """How many changes this process has seen of one :class:`Rollout`, counted as they happen.

    A page is drawn with the count read before its data; its event stream, once subscribed,
    says the count again (``event: hello``). Equal, nothing changed in between and the page
    need not fetch again what it was drawn with (for the flag list, every flag's summary);
    else it fetches. Counted by a subscriber made (at the app's start) before any stream's, so a
    change is counted before a stream hears of it. ``value`` is None while not counting (an app
    served without its lifespan): pages then always fetch when their stream opens.
    """

    def __init__(self, flags: Rollout) -> None:
        self._flags = flags
        self.value: int | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        if not self._unsubscribe:
            self.value = 0
            # Rules too: the rules page is drawn from them, and may be behind when only a rule
            # changed since.
            self._unsubscribe = [
                self._flags.subscribe(self._count),
                self._flags.subscribe_rules(self._count),
            ]

    def stop(self) -> None:
        if self._unsubscribe:
            for unsubscribe in self._unsubscribe:
                unsubscribe()
            self._unsubscribe = []
            self.value = None

    def _count(self, _changed: set[str]) -> None:
        # Changes are announced from several threads (writes, merges): unlocked, a stale
        # increment could set the count back to the value a page was drawn at.
        with self._lock:
            if self.value is not None:
                self.value += 1


class StreamSlots:
    """A bound on open streams that several :class:`EventStream` apps share (the dashboard's
    and OFREP's): together they hold at most ``limit`` connections.

    The last ``reserved`` of them only a stream made with ``reserved_ok`` may take: OFREP's
    streams open with a ticket any holder of a browser key gets (a key every visitor has), and
    such a stranger filling every slot locked the operators' dashboards out of their live
    updates.
    """

    def __init__(self, limit: int, reserved: int = 0) -> None:
        self.limit = limit
        self.reserved = reserved
        self.open = 0
        #: A refusal is logged once per 10 s with a count: anyone holding a browser key can
        #: ask for streams past the cap, and a line each would let them flood the log.
        self.refusals = Throttled(logger, 10.0)


class EventStream:
    """The ASGI app behind ``GET /events`` for one :class:`Rollout`.

    ``session_open(value)`` says whether the session a stream was opened with (the auth
    middleware's ``scope["state"]["session"]``, None with a bearer token) is still open.

    At most ``max_streams`` are open at once; beyond, ``503`` with ``Retry-After`` (the page
    retries): each holds a connection for as long as a dashboard is open, and ``rollout serve``
    never closes one to make room for another connection, so their number is bounded here.
    """

    def __init__(
        self,
        flags: Rollout,
        session_open: Callable[[str], bool] = lambda _value: True,
        max_streams: int | StreamSlots = MAX_STREAMS,
        render: Callable[[list[str]], str | None] | None = None,
        *,
        reserved_ok: bool = True,
        count: ChangeCount | None = None,
        rules: bool = False,
    ) -> None:
        self._flags = flags
        #: Also send ``event: rules`` for changes of named rules (the dashboard's stream).
        self._rules = rules
        #: With a count, a stream starts with ``event: hello`` carrying it (the dashboard's).
        self._count = count
        #: The event text for a batch of changed names (OFREP's stream has its own format);
        #: None: nothing to send for them (a key limited to other flags).
        self._render = render or _flags_event
        self._session_open = session_open
        self._reserved_ok = reserved_ok
        self._slots = (
            max_streams if isinstance(max_streams, StreamSlots) else StreamSlots(max_streams)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("method") == "HEAD":  # the headers of a stream, and no stream
            await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
            await send({"type": "http.response.body", "body": b""})
            return
        slots = self._slots
        if slots.open >= slots.limit - (0 if self._reserved_ok else slots.reserved):
            slots.refusals.warning("refused an event stream: %d are open (the limit)", slots.open)
            await send({"type": "http.response.start", "status": 503, "headers": _BUSY})
            await send({"type": "http.response.body", "body": _BUSY_BODY})
            return
        slots.open += 1
        try:
            await self._stream(scope, receive, send)
        finally:
            slots.open -= 1

    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        pending = _Pending()
        wake = asyncio.Event()
        unsubscribe = self._subscribe(pending, wake)
        disconnected = asyncio.ensure_future(_wait_for_disconnect(receive))
        woken: asyncio.Task[Literal[True]] | None = None
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
            await _send(send, f"retry: {RETRY_MS}\n: connected\n\n")
            if self._count is not None:  # read after subscribing: later changes are events
                hello = json.dumps({"generation": self._count.value})  # null: not counting
                await _send(send, f"event: hello\ndata: {hello}\n\n")
            while True:
                if woken is None:
                    woken = asyncio.ensure_future(wake.wait())
                waiting: set[asyncio.Task[Any]] = {woken, disconnected}
                done, _ = await asyncio.wait(
                    waiting, timeout=KEEPALIVE, return_when="FIRST_COMPLETED"
                )
                if disconnected in done:
                    break
                session = scope.get("state", {}).get("session")
                if session is not None and not self._session_open(session):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    break
                if woken in done:
                    woken = None
                    wake.clear()
                    event = pending.take(self._render)
                    if event is not None:
                        await _send(send, event)
                else:
                    await _send(send, ": keepalive\n\n")
        except OSError:  # the client went away mid-send (uvicorn's ClientDisconnected is one)
            pass
        except asyncio.CancelledError:
            # The server is stopping (uvicorn cancels what is still open after its grace time).
            # End the response properly rather than leave a traceback in the log for each
            # dashboard that was open; under a cancel scope that cancels again, this await
            # raises and the cancellation goes on up.
            with contextlib.suppress(OSError):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            unsubscribe()
            for task in (woken, disconnected):
                if task is not None:
                    task.cancel()

    def _subscribe(self, pending: _Pending, wake: asyncio.Event) -> Callable[[], None]:
        """Subscribe to the changes this stream sends: each is added to ``pending``, and
        ``wake`` set, on the running loop. Returns the function that unsubscribes."""
        loop = asyncio.get_running_loop()

        def deliver(into: set[str], changed: set[str]) -> None:  # on the event loop
            into.update(changed)  # changes that arrive faster than they are sent coalesce
            wake.set()

        def listener(into: set[str]) -> Callable[[set[str]], None]:
            def on_change(changed: set[str]) -> None:  # on whichever thread made the change
                # A loop that has closed under a late write: this stream is gone with it.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(deliver, into, changed)

            return on_change

        unsubscribes = [self._flags.subscribe(listener(pending.flags))]
        if self._rules:
            unsubscribes.append(self._flags.subscribe_rules(listener(pending.rules)))

        def unsubscribe() -> None:
            for each in unsubscribes:
                each()

        return unsubscribe


class _Pending:
    """The names changed since the stream last sent an event (changes coalesce): flags, and
    named rules (only on a stream made with ``rules``)."""

    def __init__(self) -> None:
        self.flags: set[str] = set()
        self.rules: set[str] = set()

    def take(self, render: Callable[[list[str]], str | None]) -> str | None:
        """The text to send for them (None: nothing), and forget them. Rules come first: a
        page that redraws on both then reads its flags after the rules they use."""
        events = [_rules_event(sorted(self.rules))] if self.rules else []
        flags = render(sorted(self.flags)) if self.flags else None
        if flags is not None:
            events.append(flags)
        self.flags.clear()
        self.rules.clear()
        return "".join(events) or None


def _flags_event(changed: list[str]) -> str:
    return f"event: flags\ndata: {json.dumps({'changed': changed})}\n\n"


def _rules_event(changed: list[str]) -> str:
    return f"event: rules\ndata: {json.dumps({'changed': changed})}\n\n"


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send(send: Send, text: str) -> None:
    await send({"type": "http.response.body", "body": text.encode(), "more_body": True})
