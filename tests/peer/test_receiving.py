"""A connection's bytes after the handshake go to its handler from the transport's
``data_received`` (rollout.peer._receiving), over real loopback TCP sockets.

What the stream reader held when the handshake ended comes first, in order; an end it saw
already ends at once; the writer still closes as a stream's writer does.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from rollout.peer._loop import start_server, start_tls
from rollout.peer._receiving import receive

Connected = tuple[asyncio.StreamReader, asyncio.StreamWriter, socket.socket]


def run(test: Callable[[Connected], Awaitable[None]], *, limit: int = 2**16) -> None:
    """``test`` with a stream (reader, writer) on one end of a TCP connection and the other end,
    a plain blocking socket, as the peer."""

    async def main() -> None:
        server = socket.create_server(("127.0.0.1", 0))
        peer = socket.create_connection(server.getsockname())
        ours, _ = server.accept()
        server.close()
        ours.setblocking(False)
        reader, writer = await asyncio.open_connection(sock=ours, limit=limit)
        try:
            await asyncio.wait_for(test((reader, writer, peer)), 20.0)
        finally:
            writer.close()
            peer.close()

    asyncio.run(main())


def keeping(seen: list[bytes]) -> Callable[[bytes], bool]:
    """A handler that keeps what it is given and never ends the connection."""

    def handle(data: bytes) -> bool:
        seen.append(data)
        return True

    return handle


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.005)


def test_bytes_the_reader_held_come_first_then_the_rest_in_order() -> None:
    async def test(connected: Connected) -> None:
        reader, writer, peer = connected
        peer.sendall(b"hello|first|second|")
        assert await reader.readexactly(6) == b"hello|"  # the handshake's last read
        await asyncio.sleep(0.05)  # the rest lies in the reader's buffer by now
        seen: list[bytes] = []

        def handle(data: bytes) -> bool:
            seen.append(data)
            return b"last" not in b"".join(seen)

        receiving = asyncio.ensure_future(receive(reader, writer, handle))
        await until(lambda: bool(seen))
        assert seen == [b"first|second|"]
        peer.sendall(b"third|last")
        await receiving  # returns once the handler says the connection is done
        assert b"".join(seen) == b"first|second|third|last"

    run(test)


def test_an_end_of_file_returns_and_the_writer_still_closes() -> None:
    async def test(connected: Connected) -> None:
        reader, writer, peer = connected
        seen: list[bytes] = []
        receiving = asyncio.ensure_future(receive(reader, writer, keeping(seen)))
        peer.sendall(b"frame")
        await until(lambda: bool(seen))
        peer.shutdown(socket.SHUT_WR)
        await receiving
        assert seen == [b"frame"]
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 5.0)  # the stream's protocol heard it

    run(test)


def test_an_end_the_reader_saw_before_ends_it_at_once() -> None:
    async def test(connected: Connected) -> None:
        reader, writer, peer = connected
        peer.sendall(b"last words")
        peer.shutdown(socket.SHUT_WR)
        # The reader has the end (its buffer still holds the bytes, so at_eof() is not true).
        await until(lambda: reader._eof)  # type: ignore[attr-defined]
        seen: list[bytes] = []
        await receive(reader, writer, keeping(seen))
        assert seen == [b"last words"]

    run(test)


def test_what_the_handler_raises_ends_it_and_nothing_more_is_handled() -> None:
    async def test(connected: Connected) -> None:
        reader, writer, peer = connected
        seen: list[bytes] = []

        def handle(data: bytes) -> bool:
            seen.append(data)
            raise ValueError("bad bytes")

        receiving = asyncio.ensure_future(receive(reader, writer, handle))
        peer.sendall(b"bad")
        with pytest.raises(ValueError, match="bad bytes"):
            await receiving
        peer.sendall(b"more")
        await asyncio.sleep(0.05)
        assert seen == [b"bad"]

    run(test)


def test_a_connection_reset_raises_its_error() -> None:
    async def test(connected: Connected) -> None:
        reader, writer, peer = connected
        receiving = asyncio.ensure_future(receive(reader, writer, lambda _data: True))
        await asyncio.sleep(0.05)
        # SO_LINGER 0: the close sends a reset, not an end of file.
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        peer.close()
        with pytest.raises(ConnectionError):
            await receiving

    run(test)


def test_a_reader_paused_by_a_full_buffer_reads_again() -> None:
    async def test(connected: Connected) -> None:
        reader, writer, peer = connected
        sent = b"x" * 64 * 1024
        peer.sendall(sent)  # more than twice the reader's limit: it pauses the transport
        await until(lambda: not writer.transport.is_reading())  # type: ignore[attr-defined]
        seen: list[bytes] = []

        def handle(data: bytes) -> bool:
            seen.append(data)
            return len(b"".join(seen)) < len(sent) + 4

        receiving = asyncio.ensure_future(receive(reader, writer, handle))
        peer.sendall(b"done")
        await receiving
        assert b"".join(seen) == sent + b"done"

    run(test, limit=1024)


def test_a_tls_connection_reset_right_behind_the_last_handshake_read_ends_it(
    certificate: tuple[Path, Path],
) -> None:
    """Over TLS, CPython 3.11 tells the stream's protocol of a lost connection a loop turn after
    the TLS layer let go of it; a reset landing just after the handshake's last read (made in a
    task of its own, as the connection's handshake runs under wait_for) left no protocol to
    replace, and the receiving waited forever (10 tries out of 10, before the fix)."""
    cert, key = certificate
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    client_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_tls.load_verify_locations(cert)

    async def one() -> None:
        ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await start_tls(writer, server_tls)
                await asyncio.wait_for(reader.readexactly(5), 5.0)  # as the hello is read
                try:
                    # In this task, as the connection calls it: wait_for would give the lost
                    # connection's news the loop turn it needs before receive() starts.
                    async with asyncio.timeout(5.0):
                        await receive(reader, writer, lambda _data: True)
                    ended.set_result("returned")
                except TimeoutError:
                    ended.set_result("never ended")
                except ConnectionError:
                    ended.set_result("raised")
            finally:
                writer.close()

        server = await start_server(accept, "127.0.0.1", 0, tls=True)
        try:
            port = server.sockets[0].getsockname()[1]
            _, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client_tls, server_hostname="127.0.0.1"
            )
            writer.write(b"hello")
            await writer.drain()
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()  # a reset, not a TLS close
            assert await asyncio.wait_for(ended, 20.0) in ("returned", "raised")
        finally:
            server.close()

    async def main() -> None:
        for _ in range(10):
            await one()

    asyncio.run(main())
