"""The connections ``rollout serve`` holds: deadlines for unfinished requests and a cap on them.

uvicorn closes a keep-alive connection idle between requests, but nothing else: a client that
opens a socket and sends nothing, half a request head, or a head and then half its body holds
the socket (and a file descriptor) for as long as it likes. A few hundred such sockets
(slowloris) used to exhaust the descriptor limit and lock every real client out.

Every connection is in one phase, which :class:`GuardedH11Protocol` follows from h11's view of
the client after each read and each response:

- *head*: waiting for, or reading, a request head. It must be complete within
  :data:`HEAD_TIMEOUT` seconds of the connection being made (or, between requests on a keep-alive
  connection, of its first byte): sending a byte at a time does not extend it.
- *body*: the head is in, the body is not. Each :data:`BODY_IDLE` seconds must bring data,
  and the body as a whole must come at :data:`BODY_MIN_RATE` bytes a second or faster (after a
  first :data:`BODY_IDLE` seconds): else a byte every few seconds held the socket for hours.
- *busy*: the request is in; the app is answering (or streaming events to a dashboard).
- *idle*: between two requests of a keep-alive connection. One timer of the guard closes the
  connections idle for longer than uvicorn's ``timeout_keep_alive`` (``ConnectionGuard.
  _close_idle``); uvicorn's own way, a timer made and cancelled for each request, was a heap
  push and a cancelled handle on the event loop every request.

Whatever the phase, a client must also take what it is sent: once the server's write buffer is
full (the kernel's too) the client has :data:`WRITE_IDLE` seconds to read some of it, and each
further :data:`WRITE_IDLE` seconds must see some more go, else the connection is aborted. A client
that sends requests (pipelined: any answer is then big enough) and never reads them is otherwise
*busy* for good, and a closing transport waits for its buffer to drain: a few such sockets held
every place under the cap, and the descriptors of evicted ones.

A connection past its deadline gets ``408 Request Timeout`` (when it sent part of a request) and
is closed. At most ``cap`` connections are open (below the descriptor limit, see ``_limits``);
a new one beyond it evicts the oldest connection still sending its request (head or body), else
the oldest idle one, else the one that has waited longest for its client to read, so stalled
sockets can never keep a real client out: a real request is sent in milliseconds and so is never
the oldest for long. Other busy connections are never evicted; when all are busy the newcomer
gets ``503`` and is closed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar, Final

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ._head_with_body import HeadWithBody
from ._limits import Throttled
from ._whole_response import WholeSend, releasing_held_start, write_whole

__all__ = [
    "BODY_IDLE",
    "BODY_MIN_RATE",
    "HEAD_TIMEOUT",
    "WRITE_IDLE",
    "ConnectionGuard",
    "GuardedH11Protocol",
    "guarded",
]

#: Seconds a request head has to arrive in full.
HEAD_TIMEOUT = 10.0
#: Seconds a request body may stall (no byte arriving) before the connection is closed.
BODY_IDLE = 10.0
#: Bytes a second a request body must average, past its first BODY_IDLE seconds (Apache's
#: mod_reqtimeout asks the same): a 1 MB body may take half an hour.
BODY_MIN_RATE = 500.0
#: Seconds a full write buffer may wait for the client to take a byte before it is aborted.
WRITE_IDLE = 10.0

logger = logging.getLogger("rollout")

_408 = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
_503 = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\n"
    b"Connection: close\r\n\r\n"
)


class Phase:
    """A connection's phases (see the module's docstring). Plain strings, not an Enum: the
    guard reads a phase a dozen times a request, and reading an Enum's member (a descriptor
    call in Python 3.11) costs ten times a class attribute: 2% of a served check's work."""

    HEAD: Final = "head"
    BODY: Final = "body"
    BUSY: Final = "busy"
    IDLE: Final = "idle"


class ConnectionGuard:
    """The open connections of one server, the cap on them and who is evicted first."""

    def __init__(
        self,
        cap: int,
        *,
        head_timeout: float = HEAD_TIMEOUT,
        body_idle: float = BODY_IDLE,
        body_min_rate: float = BODY_MIN_RATE,
        write_idle: float = WRITE_IDLE,
    ) -> None:
        if cap < 1:
            raise ValueError(f"cap must be at least 1 connection, got {cap!r}")
        self.cap = cap
        self.head_timeout = head_timeout
        self.body_idle = body_idle
        self.body_min_rate = body_min_rate
        self.write_idle = write_idle
        self.open = 0
        self.evicted = 0  #: connections closed to make room for a new one
        self.timed_out = 0  #: connections closed at their head, body or write deadline
        self.refused = 0  #: new connections refused because every open one was busy
        # Dicts as ordered sets, oldest first: still sending a request; idle keep-alive.
        self._sending: dict[GuardedH11Protocol, None] = {}
        self._idle: dict[GuardedH11Protocol, None] = {}
        # Connections whose client does not take what it is sent, the longest waiting first.
        self._unread: dict[GuardedH11Protocol, None] = {}
        self._keep_alive_due: asyncio.TimerHandle | None = None  # for the oldest idle one
        self._log = Throttled(logger, 10.0)

    def admit(self) -> bool:
        """Count a new connection in; False when it must be refused (the rest are all busy)."""
        if self.open >= self.cap:
            victim = (
                next(iter(self._sending), None)
                or next(iter(self._idle), None)
                or next(iter(self._unread), None)
            )
            if victim is None:
                self.refused += 1
                self._log.warning(
                    "refused a connection: all %d connections are busy answering requests",
                    self.cap,
                )
                return False
            self.evicted += 1
            self._log.warning(
                "%d connections open (the cap): closed the oldest one not done sending its "
                "request (a slow or stalled client)",
                self.cap,
            )
            victim.expire()
        self.open += 1
        return True

    def moved(self, connection: GuardedH11Protocol, phase: str | None) -> None:
        """``connection`` entered ``phase`` (None: it is gone)."""
        was = connection.phase
        if was is None and phase is None:
            return
        # Out of the one set its phase put it in (every request moves a connection twice).
        if was is Phase.HEAD or was is Phase.BODY:
            self._sending.pop(connection, None)
        elif was is Phase.IDLE:
            self._idle.pop(connection, None)
        if phase is Phase.HEAD or phase is Phase.BODY:
            self._sending[connection] = None
        elif phase is Phase.IDLE:
            self._idle[connection] = None
            if self._keep_alive_due is None:
                self._close_idle_at(connection)
        if phase is None:
            self._unread.pop(connection, None)
            self.open -= 1
        connection.phase = phase

    def _close_idle_at(self, oldest: GuardedH11Protocol) -> None:
        """Wake when ``oldest``, the longest idle connection, has been idle too long."""
        due = oldest._since + oldest.timeout_keep_alive
        self._keep_alive_due = oldest.loop.call_at(due, self._close_idle, oldest.loop)

    def _close_idle(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close every connection idle for longer than its keep-alive time-out.

        The idle set is in the order connections went idle, and each entry's time was read
        then: the first not yet due says when to look again.
        """
        self._keep_alive_due = None
        now = loop.time()
        while self._idle:
            oldest = next(iter(self._idle))
            if oldest._since + oldest.timeout_keep_alive > now:
                self._close_idle_at(oldest)
                return
            self.moved(oldest, None)  # counted out now, not when its close completes
            oldest.timeout_keep_alive_handler()

    def unread(self, connection: GuardedH11Protocol, waiting: bool) -> None:
        """``connection``'s client has (``waiting``) or no longer has a full buffer unread."""
        if waiting and connection.phase is not None:
            self._unread.setdefault(connection, None)
        else:
            self._unread.pop(connection, None)

    def expired(self, connection: GuardedH11Protocol, *, reading: bool = False) -> None:
        self.timed_out += 1
        if reading:
            self._log.info(
                "closed a connection whose client read nothing of its answer for %g s",
                self.write_idle,
            )
            return
        self._log.info(
            "closed a connection that did not finish its request in time (%s phase)",
            connection.phase or "?",
        )


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the deadlines and the cap of a :class:`ConnectionGuard`,
    which writes an answer given whole itself (``_whole_response``: h11's bytes, without h11's
    send) and any other response's head with its body (``HeadWithBody``)."""

    guard: ClassVar[ConnectionGuard]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app = releasing_held_start(self.app)
        self.phase: str | None = None
        self._since = 0.0  # when the phase began
        self._last_read = 0.0
        self._body_bytes = 0  # bytes received since the body phase began
        self._timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        self._unsent = 0  # bytes in the write buffer when last looked at

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(HeadWithBody(transport))  # type: ignore[arg-type]
        if not self.guard.admit():
            transport.write(_503)
            transport.close()
            return
        self._last_read = self.loop.time()
        self._enter(Phase.HEAD)

    def data_received(self, data: bytes) -> None:
        # Only a body's deadline counts from the last read (a head's from its start): no clock
        # read for a read while idle or in a head (every request's), which entering BODY then
        # reads itself; a read while busy is a pipelined request's, whose body may come next.
        phase = self.phase
        if phase is Phase.BODY or phase is Phase.BUSY:
            self._last_read = self.loop.time()
        if phase is Phase.BODY:
            self._body_bytes += len(data)
        super().data_received(data)
        self._follow()

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle and self.cycle is not None:  # a request's, to be answered
            new = self.cycle
            new.send = WholeSend(new, self._write_whole)  # type: ignore[method-assign,assignment]

    #: A response given whole, sent in one write when h11 has nothing to decide about it.
    _write_whole = write_whole

    def on_response_complete(self) -> None:
        # uvicorn's H11Protocol.on_response_complete but for its keep-alive timer, which the
        # guard's idle phase replaces (see ConnectionGuard._close_idle).
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        conn = self.conn
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:  # pipelined requests
            conn.start_next_cycle()
            self.handle_events()
        elif conn.our_state is h11.IDLE and conn.trailing_data[0]:  # after _write_whole
            self.handle_events()
        self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        self._cancel_write_timer()
        self.guard.moved(self, None)
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_timer is None and self.phase is not None:
            self._unsent = self.transport.get_write_buffer_size()
            self.guard.unread(self, True)
            self._write_timer = self.loop.call_later(self.guard.write_idle, self._write_due)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._cancel_write_timer()
        self.guard.unread(self, False)

    def _write_due(self) -> None:
        self._write_timer = None
        unsent = self.transport.get_write_buffer_size()
        if unsent < self._unsent:  # the client reads, slowly: look again later
            self._unsent = unsent
            self._write_timer = self.loop.call_later(self.guard.write_idle, self._write_due)
            return
        self.guard.expired(self, reading=True)
        self.guard.moved(self, None)
        self.transport.abort()  # close() would wait for the client to read the buffer

    def expire(self) -> None:
        """Close this connection, with a 408 when the client sent part of a request.

        It is counted out at once (its ``connection_lost`` comes a loop iteration later), so it
        is neither evicted again nor counted against the cap meanwhile.
        """
        self._cancel()
        self._cancel_write_timer()
        phase = self.phase
        self.guard.moved(self, None)
        if self.flow.write_paused or self.transport.is_closing():
            # Its client is not reading (a closing transport waits for it to): a 408 would
            # never reach it, and close() would keep the descriptor until it did.
            self.transport.abort()
            return
        if phase is Phase.HEAD:
            started = bool(self.conn.trailing_data[0])  # not a silent or idle connection
        elif phase is Phase.BODY:  # unless the app answered early (e.g. 401) and it stalls
            cycle = self.cycle
            started = cycle is None or not cycle.response_started or _holding(cycle)
            if started and cycle is not None and type(cycle.send) is WholeSend:
                # The 408 answers this request: nothing the app sends later may follow it
                # into the closing connection's buffer (its start, if one was held, included).
                cycle.send.drop_the_rest()
        else:
            started = False
        if started:
            self.transport.write(_408)
        self.transport.close()

    def _follow(self) -> None:
        """Move to the phase h11 now sees the client in."""
        was = self.phase
        if was is None:
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            # Bytes h11 holds without a complete head: a head is on its way.
            phase = Phase.HEAD if self.conn.trailing_data[0] else Phase.IDLE
        elif state is h11.SEND_BODY:
            phase = Phase.BODY
        else:  # DONE, MUST_CLOSE: the request is in; ERROR: uvicorn is closing it
            phase = Phase.BUSY
        if phase is was or self.transport.is_closing():
            return
        if self._timer is None and (phase is Phase.BUSY or phase is Phase.IDLE):
            # The two moves of every request, with no deadline of their own: straight to the
            # guard (idle's since: when the guard's keep-alive timer counts from).
            if phase is Phase.IDLE:
                self._since = self.loop.time()
            self.guard.moved(self, phase)
        else:
            self._enter(phase)

    def _enter(self, phase: str) -> None:
        if self._timer is not None:
            self._cancel()
        was = self.phase
        if phase is Phase.IDLE:  # before the guard, whose keep-alive timer counts from it
            self._since = self.loop.time()
        self.guard.moved(self, phase)
        # Busy has no deadline; idle's is the guard's keep-alive timer (one for all).
        if phase is Phase.HEAD:
            self._since = self.loop.time()
            self._timer = self.loop.call_at(self._since + self.guard.head_timeout, self._due)
        elif phase is Phase.BODY:
            self._since = self.loop.time()
            if was is not Phase.BUSY:  # its head's last read was now (see data_received)
                self._last_read = self._since
            self._body_bytes = 0
            self._timer = self.loop.call_at(self._last_read + self.guard.body_idle, self._due)

    def _due(self) -> None:
        self._timer = None
        if self.phase is Phase.BODY:
            # Not stalled if data came since and the body so far came fast enough, or if it is
            # uvicorn that stopped reading (the app has not taken the body so far yet): look
            # again when the gap could be over, or the body too slow.
            guard = self.guard
            slowest = self._since + guard.body_idle + self._body_bytes / guard.body_min_rate
            due = min(self._last_read + guard.body_idle, slowest)
            if due > self.loop.time() or self.flow.read_paused:
                self._timer = self.loop.call_at(
                    max(due, self.loop.time() + guard.body_idle / 10), self._due
                )
                return
        if self.phase in (Phase.HEAD, Phase.BODY):
            self.guard.expired(self)
            self.expire()

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _cancel_write_timer(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None


def _holding(cycle: Any) -> bool:
    """Whether a request's response is started only in its WholeSend, which holds the start:
    none of it written, so a 408 may still answer it."""
    send = cycle.send
    return type(send) is WholeSend and send.holding


def guarded(guard: ConnectionGuard) -> type[GuardedH11Protocol]:
    """The protocol class to give uvicorn (``http=``) for connections counted by ``guard``."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"guard": guard})
