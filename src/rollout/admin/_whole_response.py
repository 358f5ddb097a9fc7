"""A whole response written in one go: the way ``rollout serve``'s connections send an answer
whose body the app gives in one message (see ``_connections.GuardedH11Protocol``).

uvicorn hands every response to h11 as three events (the head, the body, its end), and h11
validates the head's headers, frames the body and steps its state machine for each: about 15 us
of a served check's 110 us of CPU, more than the check, the gate and the route together. Most
answers are one head and one body of known length to a keep-alive HTTP/1.1 request already read
in full, where none of that has anything to decide. For those the head's bytes are made here,
the headers checked against the same grammar h11 checks them with (a header that fails it, or
anything unusual, goes to h11, which refuses it as it always did), head and body go out in one
write, and the connection starts its next request on a fresh h11 connection, given whatever
bytes of it had already come. The bytes on the wire are h11's to the byte (a test holds them
equal), and an app's middleware sees the same ASGI messages as before.

What goes to h11 as before: a response in several body messages (a stream), a status without a
body (1xx, 204, 304), a head whose Content-Length is absent or not the body's length, a
``Connection``, ``Transfer-Encoding`` or ``Host`` header, headers not given as a list or tuple
of ``(bytes, bytes)`` tuples (ASGI allows lists; a generator could not be read twice), a
request not read in full (a body still coming), an HTTP/1.0 client or one that asked to close,
and a connection whose client is not reading (its writes wait, as uvicorn's do).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any, Final

import h11
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

__all__ = [
    "NO_BODY_STATUSES",
    "REASONS",
    "WholeSend",
    "keeps_alive",
    "log_access",
    "releasing_held_start",
    "whole_response",
    "write_whole",
]

#: Statuses whose responses never have a body (their framing is h11's to decide).
NO_BODY_STATUSES: Final = frozenset({204, 304})
#: The reason phrase of each status, as uvicorn gives it to h11.
REASONS: Final = {status.value: status.phrase.encode() for status in HTTPStatus}

# RFC 9110's field-name (a token) and h11's field-value (RFC 7230's field-content, fixed up as
# h11 does: visible characters and obs-text, single spaces or tabs between them, none at the
# ends). The same grammar h11 validates a head with, so nothing passes here that h11 refuses.
_FIELD_NAME = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_FIELD_VALUE = re.compile(rb"(?:[\x21-\x7e\x80-\xff]+(?:[ \t]+[\x21-\x7e\x80-\xff]+)*)?")
#: Header (name, value) pairs seen valid; emptied when full (a date header changes each second).
_VALID: dict[tuple[bytes, bytes], None] = {}
_VALID_KEPT: Final = 512
#: Response headers that change how h11 frames the message or keeps the connection, and Host,
#: which h11 writes first (a response has no use for it, but its bytes would not be h11's).
_H11_ORDERS_OR_FRAMES: Final = frozenset({b"connection", b"transfer-encoding", b"host"})


def whole_response(
    status: object, headers: Iterable[tuple[bytes, bytes]], body: bytes, *, head_only: bool
) -> bytes | None:
    """The bytes h11 sends for this response to a keep-alive HTTP/1.1 request, head and body;
    None when h11 must decide (see the module's docstring), or when a header is not valid.

    ``head_only``: the answer to a HEAD request (the head alone, its Content-Length as given).
    """
    if type(status) is not int or status < 200 or status in NO_BODY_STATUSES:
        return None
    reason = REASONS.get(status)
    if reason is None:
        return None
    parts = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
    length = None
    for pair in headers:
        if type(pair) is not tuple:  # a list (ASGI allows it) is not a key of _VALID: h11's
            return None
        try:
            known = pair in _VALID
        except TypeError:  # unhashable (a bytearray): h11's
            return None
        if not known:
            if not _valid(pair):
                return None
            if len(_VALID) >= _VALID_KEPT:
                _VALID.clear()
            _VALID[pair] = None
        name, value = pair
        lowered = name.lower()
        if lowered == b"content-length":
            if length is not None:
                return None
            length = value
        elif lowered in _H11_ORDERS_OR_FRAMES:
            return None
        parts.append(b"%s: %s\r\n" % pair)
    if length is None or length != b"%d" % len(body):
        return None
    parts.append(b"\r\n")
    if not head_only:
        parts.append(body)
    return b"".join(parts)


def _valid(pair: tuple[object, ...]) -> bool:
    if len(pair) != 2:
        return False
    name, value = pair
    return (
        type(name) is bytes
        and type(value) is bytes
        and _FIELD_NAME.fullmatch(name) is not None
        and _FIELD_VALUE.fullmatch(value) is not None
    )


def keeps_alive(scope: dict[str, Any]) -> bool:
    """Whether an HTTP/1.1 request lets the connection stay open (no ``Connection: close``),
    read as h11 reads it: a comma-separated list, in any case."""
    if scope["http_version"] != "1.1":
        return False
    for name, value in scope["headers"]:
        if name == b"connection" and b"close" in (
            token.strip() for token in value.lower().split(b",")
        ):
            return False
    return True


Message = dict[str, Any]


def _states_length(headers: object) -> bool:
    """Whether a start message's headers give a Content-Length: only such a response can be
    whole. A stream's head (no length) goes out at once, before its first part, however late
    that comes (an event stream's may come minutes later)."""
    if type(headers) is not list and type(headers) is not tuple:
        return False
    for pair in headers:
        name = pair[0] if type(pair) is tuple and pair else None
        if type(name) is bytes and name.lower() == b"content-length":
            return True
    return False


class WholeSend:
    """The ASGI ``send`` of one request: it holds the response's start message, when it gives a
    Content-Length, until its body comes. A body in one message goes with its head to
    ``write(start, body)`` (the connection's, which says False when h11 must send it instead);
    anything else goes on to uvicorn's ``cycle.send``, the start message first, as uvicorn
    would have seen them.

    While the start is held, the cycle counts the response as started: an app that fails or
    returns then has its connection closed, as when uvicorn had sent the head. Before that,
    :func:`releasing_held_start` sends the held start (:meth:`release`), so the client gets
    the head and the access log its line, as from uvicorn.
    """

    __slots__ = ("_cycle", "_held", "_state", "_write")

    _FIRST, _HOLDING, _PASSING, _DROPPING = 0, 1, 2, 3

    def __init__(self, cycle: Any, write: Callable[[Message, bytes], bool]) -> None:
        self._cycle = cycle
        self._write = write
        self._held: Message | None = None
        self._state = self._FIRST

    async def __call__(self, message: Message) -> None:
        state = self._state
        if state == self._FIRST and message["type"] == "http.response.start":
            cycle = self._cycle
            if (
                not cycle.response_started
                and not cycle.disconnected
                and _states_length(message.get("headers", ()))
            ):
                self._state = self._HOLDING
                self._held = message
                cycle.response_started = True
                # As uvicorn's send does with the start: no 100 Continue after this (a later
                # receive() would write one through h11, into the next answer's bytes).
                cycle.waiting_for_100_continue = False
                return
        if state == self._DROPPING:
            return
        cycle = self._cycle
        send = type(cycle).send
        self._state = self._PASSING
        if state == self._HOLDING:
            held, self._held = self._held, None
            if (
                message["type"] == "http.response.body"
                and not message.get("more_body", False)
                and self._write(held, message.get("body", b""))  # type: ignore[arg-type]
            ):
                return
            cycle.response_started = False  # uvicorn's send starts the response itself
            await send(cycle, held)
        await send(cycle, message)

    @property
    def holding(self) -> bool:
        """Whether a start message is held, its head not yet written."""
        return self._state == self._HOLDING

    async def release(self) -> None:
        """Send a held start message on, as uvicorn's send would have sent it when it came (the
        access log's line, the head written); nothing when none is held. It never waits: to a
        client gone, or one not reading what it was sent, only the line is logged (uvicorn's
        send would wait for such a client to read, and hold up the server's shutdown)."""
        if self._state != self._HOLDING:
            return
        held, self._held = self._held, None
        self._state = self._PASSING
        cycle = self._cycle
        if cycle.disconnected or cycle.flow.write_paused:
            log_access(cycle, held["status"])  # type: ignore[index]  # held: a start
            return  # the response stays started: uvicorn closes the connection
        cycle.response_started = False  # uvicorn's send starts the response itself
        await type(cycle).send(cycle, held)

    def drop_the_rest(self) -> None:
        """The connection has been answered for the app (a 408) and is closing: what the app
        sends from now on goes nowhere, as uvicorn's send drops it once the client is gone
        (written, it would follow that answer in the closing connection's buffer)."""
        self._state = self._DROPPING
        self._held = None


def log_access(cycle: Any, status: object) -> None:
    """The access log's line for a response, as uvicorn's send logs it with the start."""
    if cycle.access_log:
        scope = cycle.scope
        cycle.access_logger.info(
            '%s - "%s %s HTTP/%s" %d',
            get_client_addr(scope),
            scope["method"],
            get_path_with_query_string(scope),
            scope["http_version"],
            status,
        )


def releasing_held_start(app: Any) -> Any:
    """``app`` (an ASGI app), with a start message its :class:`WholeSend` still holds when it
    ends sent on before uvicorn closes the connection: an app that fails or returns between
    its start and its body then shows the client the head, then the close, and the access log
    its line, as under uvicorn's own protocol (which writes a start at once)."""

    async def app_releasing_held_start(scope: Any, receive: Any, send: Any) -> Any:
        try:
            return await app(scope, receive, send)
        finally:
            # A start h11 refuses (a Content-Length that is not a number, a 1xx) raises here,
            # the app's own exception its context: uvicorn logs it as it would the app's.
            if type(send) is WholeSend and send.holding:
                await send.release()

    return app_releasing_held_start


def write_whole(self: Any, start: Message, body: bytes) -> bool:
    """Send a response given whole (its start message, its body) in one write, h11's work done
    here; False when h11 must send it, and nothing is sent. A method of ``GuardedH11Protocol``
    (``self``), which is uvicorn's ``H11Protocol``."""
    cycle, conn = self.cycle, self.conn
    if (
        cycle is None
        or cycle.conn is not conn
        or conn.our_state is not h11.SEND_RESPONSE
        or conn.their_state is not h11.DONE  # the request is read in full
        or not cycle.keep_alive  # the server is shutting down
        or cycle.disconnected
        or self.flow.write_paused  # uvicorn's send waits for the client to read
        or self.transport.is_closing()
    ):
        return False
    scope = cycle.scope
    # Not after the client's end of stream (uvicorn never gives h11 one: it has no branch for
    # h11's ConnectionClosed event).
    pending, ended = conn.trailing_data
    if ended or not keeps_alive(scope):
        return False
    status = start["status"]
    # (WholeSend holds only a start whose headers are a list or tuple: read twice, if h11
    # must send them after all.)
    data = whole_response(
        status,
        (*cycle.default_headers, *start["headers"]),
        body,
        head_only=scope["method"] == "HEAD",
    )
    if data is None:
        return False
    log_access(cycle, status)
    self.transport.write_whole(data)
    cycle.response_complete = True
    cycle.message_event.set()
    # This request is answered: the next starts on a fresh h11 connection, given the bytes
    # of it already read (a pipelined request).
    # (with the bound uvicorn gave the first: its h11_max_incomplete_event_size, or h11's)
    size = getattr(self.config, "h11_max_incomplete_event_size", None)
    fresh = h11.Connection(h11.SERVER) if size is None else h11.Connection(h11.SERVER, size)
    if pending:
        fresh.receive_data(pending)
    self.conn = fresh
    cycle.on_response()
    return True
