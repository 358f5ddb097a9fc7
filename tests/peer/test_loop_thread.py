"""The peer transport's loop thread ends what it started, even when stopped with it still open."""

from __future__ import annotations

import socket

from rollout.peer._loop import LoopThread, start_server


async def _ignore(reader: object, writer: object) -> None:
    del reader, writer


def test_a_stopped_loop_thread_closes_the_servers_left_open() -> None:
    # A listener left open after the loop stops would accept connections (from the kernel's
    # backlog) that no one closes: each a socket leaked, and a warning at garbage collection.
    thread = LoopThread("test-loop")
    server = thread.submit(start_server(_ignore, "127.0.0.1", 0)).result(5)
    port = server.sockets[0].getsockname()[1]
    thread.stop(5)
    probe = socket.socket()
    try:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # refused: nobody listens
    finally:
        probe.close()
