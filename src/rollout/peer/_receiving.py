"""A connection's bytes after the handshake, handled in its transport's ``data_received``.

The handshake reads through the connection's :class:`asyncio.StreamReader`. After it, reading
through the stream reader would cost a second pass of the event loop for every message: the
transport gives the bytes to the reader, whose ``read()`` returns to the connection's task only
in the loop's next iteration. On this project's 2-CPU machine that pass was a fifth of a
message's way from one process's socket to the other's handler (a frame timed from the
sender's ``send`` to its handler, processes 2 ms apart: p50 110-127 µs through a stream reader,
84-100 µs in ``data_received``). So :func:`receive` puts a protocol of its own in front of the
stream's: it hands the bytes to the connection at once, and passes everything else (the end of
the stream, the connection lost, the pauses of writing) to the stream's protocol, so that the
connection's writer works and closes as it did.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

__all__ = ["receive"]


async def receive(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    handle: Callable[[bytes], bool],
) -> None:
    """Give ``handle`` the connection's bytes as they arrive, until it returns False (it closed
    the connection) or the peer ends it (an end of file returns; a lost connection raises its
    error). Whatever ``handle`` raises ends it too, raised here, and nothing more is handled.

    The bytes the stream reader took in before (frames the peer sent right behind its hello)
    are handled first; an end it saw already, or a transport already closing, ends this at
    once (it returns).
    """
    transport = cast(asyncio.Transport, writer.transport)  # a stream's, which reads too
    ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    try:
        stream: asyncio.BaseProtocol | None = transport.get_protocol()
        receiver = _Receiver(stream, handle, ended)
        # Over TLS, CPython 3.11 tells the stream's protocol of a lost connection one loop turn
        # after the TLS layer let go of it: that protocol, not this one, hears of it then, and
        # the TLS layer has no protocol left to replace (None). The transport says it is closing,
        # and the end comes at once below.
        if stream is not None:
            transport.set_protocol(receiver)
        # The one private attribute: a stream reader has no public way to hand over its buffer
        # without waiting for more when it is empty. Nothing can arrive between these lines
        # (the loop runs them in one go), so no byte is handled twice or out of order.
        buffered: bytearray = reader._buffer  # type: ignore[attr-defined]
        if buffered:
            data = bytes(buffered)
            buffered.clear()
            receiver.data_received(data)
        if reader.exception() is not None:
            receiver.end(reader.exception())
        elif reader.at_eof() or stream is None or transport.is_closing():
            receiver.end(None)  # an end seen already, or the connection going: nothing follows
        elif not transport.is_reading():
            transport.resume_reading()  # a reader whose buffer filled up paused it
        await ended
    finally:
        ended.cancel()  # cancelled or failed before it ended: nothing is left to set it


class _Receiver(asyncio.Protocol):
    """The connection's protocol after the handshake (see the module's docstring)."""

    def __init__(
        self,
        stream: asyncio.BaseProtocol | None,
        handle: Callable[[bytes], bool],
        ended: asyncio.Future[None],
    ) -> None:
        self._stream = cast(asyncio.Protocol, stream)  # installed only when there is one
        self._handle = handle
        self._ended = ended

    def end(self, error: BaseException | None) -> None:
        if not self._ended.done():
            if error is None:
                self._ended.set_result(None)
            else:
                self._ended.set_exception(error)

    def data_received(self, data: bytes) -> None:
        if self._ended.done():
            return  # ended (bad bytes, or closed): the rest is not read
        try:
            more = self._handle(data)
        except Exception as exc:  # bad bytes (FrameError), or a bug: the connection's task sees it
            self.end(exc)
            return
        if not more:
            self.end(None)

    def eof_received(self) -> bool | None:
        self.end(None)
        # The stream's answer: whether the transport stays half open (it does, but over TLS).
        return self._stream.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.end(exc)
        self._stream.connection_lost(exc)  # the writer's wait_closed() returns

    def pause_writing(self) -> None:
        self._stream.pause_writing()

    def resume_writing(self) -> None:
        self._stream.resume_writing()
