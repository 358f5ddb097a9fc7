"""An asyncio event loop on one daemon thread, so the application does not have to be async, and
the asyncio plumbing the peer transport needs (tracked connections and servers, TLS upgrade)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import ssl
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

__all__ = [
    "LoopThread",
    "abandon",
    "close_server",
    "open_connection",
    "release_inherited_socket",
    "start_server",
    "start_tls",
]

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        try:
            self.loop.run_forever()
        finally:
            self._finish()
            self.loop.close()

    def _finish(self) -> None:
        """What asyncio.run does at its end: cancel what is left and let it unwind.

        A connection accepted in the last turns before the stop still has a task on its way to
        its handler; cancelled and run, it closes its transport (and socket) instead of leaving
        it for the garbage collector to find open.
        """
        loop = self.loop
        # Listeners first: one still open would accept a connection in the turns below, after
        # its task could be cancelled, and make a transport that nothing then closes.
        for server in _OPEN_SERVERS.pop(loop, ()):
            loop.run_until_complete(close_server(server))
        for _ in range(3):
            pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
            if not pending:
                break
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        # What is not lost yet is ended here, not left for the garbage collector to find open:
        # a connection made just as its task was cancelled (open_connection completing under a
        # cancel, an accept racing the stop) has a transport nobody holds, and a closed one
        # whose goodbye a slow peer never read waits for its buffer to drain, which no loop
        # will now run. abort() ends both at once.
        for transport in list(_OPEN_TRANSPORTS.pop(loop, ())):
            if isinstance(transport, asyncio.WriteTransport):
                transport.abort()
            else:
                transport.close()
        # Transports close their sockets one loop turn after close(): give them the turns.
        for _ in range(3):
            loop.run_until_complete(asyncio.sleep(0))
        loop.run_until_complete(loop.shutdown_asyncgens())

    @property
    def is_current(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call_soon(self, callback: Callable[..., object], *args: object) -> None:
        """Run ``callback`` on the loop; a no-op once the loop is closed."""
        with contextlib.suppress(RuntimeError):  # a closed loop: the transport is shutting down
            self.loop.call_soon_threadsafe(callback, *args)

    def stop(self, timeout: float) -> None:
        if self.is_current:
            raise RuntimeError("the loop thread cannot stop itself")
        self.call_soon(self.loop.stop)
        self._thread.join(timeout)


#: Per loop, the transports of the connections made through this module and not yet lost.
_OPEN_TRANSPORTS: dict[asyncio.AbstractEventLoop, set[asyncio.BaseTransport]] = {}
#: Per loop, the servers started through this module (closing one twice is harmless).
_OPEN_SERVERS: dict[asyncio.AbstractEventLoop, list[asyncio.Server]] = {}


class _TrackedStreamProtocol(asyncio.StreamReaderProtocol):
    """asyncio's stream protocol, recording its transport from made to lost (see _finish).

    ``paused``: the transport reads nothing until :func:`start_tls` resumes it (see there).
    """

    paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._tracked = transport
        _OPEN_TRANSPORTS.setdefault(asyncio.get_running_loop(), set()).add(transport)
        if self.paused and isinstance(transport, asyncio.ReadTransport):
            # Before asyncio's first read, which the transport schedules after this call.
            transport.pause_reading()
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        tracked = getattr(self, "_tracked", None)
        if tracked is not None:
            _OPEN_TRANSPORTS.get(asyncio.get_running_loop(), set()).discard(tracked)
        super().connection_lost(exc)


async def open_connection(
    host: str, port: int, **options: Any
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """``asyncio.open_connection``, with the transport recorded until the connection is lost."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(loop=loop)
    protocol = _TrackedStreamProtocol(reader, loop=loop)
    transport, _ = await loop.create_connection(lambda: protocol, host, port, **options)
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


async def start_server(
    accept: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    host: str | None,
    port: int,
    *,
    tls: bool = False,
    **options: Any,
) -> asyncio.Server:
    """``asyncio.start_server``, with each accepted transport recorded until it is lost.

    ``tls``: ``accept`` begins with :func:`start_tls`, and nothing is read before it.
    """
    loop = asyncio.get_running_loop()

    def factory() -> _TrackedStreamProtocol:
        protocol = _TrackedStreamProtocol(asyncio.StreamReader(loop=loop), accept, loop=loop)
        protocol.paused = tls
        return protocol

    server = await loop.create_server(factory, host, port, **options)
    _OPEN_SERVERS.setdefault(loop, []).append(server)
    return server


async def close_server(server: asyncio.Server) -> None:
    """Stop ``server`` listening without leaking a connection it accepted just before.

    asyncio (3.11) accepts in one loop turn and builds the connection's transport in the next;
    a server closed in between fails an assertion in ``Server._attach`` while the transport is
    half built, and its socket stays open until the garbage collector finds it (a
    ResourceWarning, seen in CI). So the listening sockets stop being read first, the turns
    that finish what was accepted are let run (the handler closes those connections: the
    transport is closing), and only then is the server closed.
    """
    loop = asyncio.get_running_loop()
    for sock in server.sockets:
        loop.remove_reader(sock.fileno())
    for _ in range(2):
        await asyncio.sleep(0)
    server.close()


#: The parent's loops in a forked child: never run, never closed, kept so no finaliser warns.
_ABANDONED: list[LoopThread] = []


def abandon(loop: LoopThread) -> None:
    _ABANDONED.append(loop)


def release_inherited_socket(sock: Any) -> None:
    """Release this process's copy of a socket inherited through fork.

    The parent still uses the socket. Putting /dev/null on its fd number drops our copy (so a
    close by the parent really ends the connection) while the number stays valid for the socket
    object that will close it again later.
    """
    with contextlib.suppress(OSError, AttributeError, ValueError):
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            os.dup2(devnull, sock.fileno())
        finally:
            os.close(devnull)


async def start_tls(writer: asyncio.StreamWriter, context: ssl.SSLContext) -> None:
    """TLS on an accepted connection, as the server. ConnectionError if the peer left during it.

    The connection must come from ``start_server(tls=True)``, whose transports read nothing
    until here (``loop.start_tls`` resumes them). A plain transport reads as soon as its
    connection is made: a ClientHello that arrived with the connection (the peer sends it at
    once; a busy node accepts late) would land in the plain stream's buffer, where TLS never
    sees it, and the handshake would wait for it until its time-out, on every retry.

    CPython 3.11 gets no transport (None) from ``loop.start_tls`` when the peer closes cleanly
    in the middle of the TLS handshake; ``StreamWriter.start_tls`` stores it and then fails with
    AttributeError, and the writer fails again in ``__del__``. So the plain transport is kept,
    aborted, and given back to the writer (the one private attribute here: the writer has no
    public way to be repaired).
    """
    plain = writer.transport
    try:
        await writer.start_tls(context)
    except AttributeError:
        if writer.transport is not None:
            raise  # not the case above: a bug to see
    if writer.transport is None:
        plain.abort()
        writer._transport = plain
        raise ConnectionError("the peer closed the connection during the TLS handshake")
