"""The sending side of one peer connection: frames from the loop thread and from a writing thread.

Every frame of a connection is MAC'd and written under one lock, so the frame counter the MAC
covers and the order on the wire are the same whatever thread sends. Most frames (hellos,
digests, states, acks) are sent by the replication loop's thread. A local write's delta is sent
by the thread that made the write (:meth:`FrameSender.send_now`), straight into the socket, when
nothing is queued before it on that connection: the change is on the wire before ``activate()``
returns, instead of waiting for the loop thread to wake up and to get the GIL from the writing
thread (which keeps it until it blocks, or for up to the interpreter's switch interval, 5 ms,
when it goes on computing). That wake-up was one of the two on the propagation path.

How it stays correct next to asyncio, which owns the socket and whose transports are not
thread-safe: the writing thread never calls the transport. It writes with a ``dup()`` of the
socket, and only when the transport holds no unsent bytes and nothing waits here; the loop
thread's own writes to the transport are under the same lock, so that state cannot change
between the check and the write. Whatever the socket does not take at once (a full send
buffer, an error) waits here, in order, and the loop thread writes it (and every frame after
it) to the transport, as every frame was before. TLS connections (whose bytes only the
transport can make) and interpreters without a GIL always go through the loop thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import threading
from asyncio.selector_events import BaseSelectorEventLoop
from collections.abc import Callable

from ._frames import FrameWriter

__all__ = ["FrameSender"]


def _gil_enabled() -> bool:
    # Without a GIL the transport's buffer could change while it is read from another thread.
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else bool(check())


class FrameSender:
    """Frames and writes the bodies of one connection, in order, from any thread."""

    def __init__(self, writer: asyncio.StreamWriter, after_write: Callable[[], None]) -> None:
        #: The MAC key and counter of this direction (keyed by the handshake).
        self.frames = FrameWriter()
        self._writer = writer
        self._after_write = after_write  # on the loop thread, after it wrote (stall check)
        self._lock = threading.Lock()
        self._direct: socket.socket | None = None  # a dup of the plain TCP socket
        self._waiting = bytearray()  # frames for the loop thread to write, in order
        self._flush_due = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    def open_direct(self) -> None:
        """Let :meth:`send_now` write from other threads (on the loop thread, once admitted).

        A writing thread may have sent between the admission and this call: what it left
        waiting is written now."""
        loop = asyncio.get_running_loop()
        with self._lock:
            self._loop = loop
            waiting, self._waiting = self._waiting, bytearray()
            if waiting and not self.closed:
                self._writer.write(bytes(waiting))
        transport = self._writer.transport
        sock = transport.get_extra_info("socket")
        if (
            sock is None
            or transport.get_extra_info("sslcontext") is not None
            or not isinstance(loop, BaseSelectorEventLoop)  # the standard library's transports
            or not _gil_enabled()
        ):
            return
        direct = sock.dup()  # its own descriptor: closing it here never closes another file
        direct.setblocking(False)
        with self._lock:
            if self.closed:
                direct.close()
            else:
                self._direct = direct

    @property
    def socket(self) -> socket.socket | None:
        """The duplicate socket :meth:`send_now` writes to (None: none)."""
        return self._direct

    @property
    def buffered(self) -> int:
        """Bytes not yet handed to the kernel: the transport's and the ones waiting here."""
        return self._writer.transport.get_write_buffer_size() + len(self._waiting)

    def send(self, body: bytes) -> None:
        """Frame and send ``body`` on the loop thread."""
        with self._lock:
            if self.closed:
                return
            frame = self.frames.frame_body(body)
            if self._waiting:  # frames of other threads first: this is the loop thread
                frame, self._waiting = bytes(self._waiting + frame), bytearray()
            self._writer.write(frame)
        self._after_write()

    def send_now(self, body: bytes) -> None:
        """Frame and send ``body`` from any thread: into the socket at once when nothing is
        queued before it, else after what is, by the loop thread."""
        with self._lock:
            if self.closed:
                return
            frame = self.frames.frame_body(body)
            direct = self._direct
            if direct is not None and not self._waiting and not self._transport_busy():
                try:
                    sent = direct.send(frame)
                except OSError:  # full (BlockingIOError) or broken: the transport finds out
                    sent = 0
                if sent == len(frame):
                    return
                frame = frame[sent:]
            self._waiting += frame
            if self._flush_due or self._loop is None:
                return
            self._flush_due = True
            loop = self._loop
        with contextlib.suppress(RuntimeError):  # the loop is closed: the transport shut down
            loop.call_soon_threadsafe(self._flush)

    def _transport_busy(self) -> bool:
        try:
            return self._writer.transport.get_write_buffer_size() > 0
        except RuntimeError:  # a buffer changed while it was summed (no GIL): assume busy
            return True

    def _flush(self) -> None:
        with self._lock:
            self._flush_due = False
            waiting, self._waiting = self._waiting, bytearray()
            if not waiting or self.closed:
                return
            self._writer.write(bytes(waiting))
        self._after_write()

    def close(self) -> None:
        """Send nothing more; close the duplicate socket (before the transport closes its own,
        or the peer would not see the connection end while the duplicate holds it open)."""
        with self._lock:
            self.closed = True
            direct, self._direct = self._direct, None
            self._waiting = bytearray()
        if direct is not None:
            direct.close()
