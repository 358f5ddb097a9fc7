"""Keep-alive connections of the served app: closed once idle for ``timeout_keep_alive``.

The connection guard closes idle connections with one timer of its own (uvicorn's protocol made
and cancelled a timer for every request); these tests hold it to uvicorn's behaviour, over real
sockets: an idle connection is closed (without a byte) once its time-out has passed and not
before, a connection in use is not, and the guard counts closed ones out.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rollout import Rollout
from rollout.admin import create_app
from rollout.admin._connections import ConnectionGuard, guarded
from rollout.testing import eventually

from .dashboard_server import serve

KEEP_ALIVE = 1.0  # seconds; uvicorn's default is 5
#: For the tests where a connection must be kept open: the margin that a request has to come
#: back in is then seconds, not the few tenths a stalled test machine can take.
LONG_KEEP_ALIVE = 3.0
REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@contextmanager
def served(guard: ConnectionGuard, keep_alive: float = KEEP_ALIVE) -> Iterator[int]:
    with Rollout() as flags:
        app = create_app(flags)
        with serve(app, http=guarded(guard), timeout_keep_alive=keep_alive) as url:
            yield int(url.rsplit(":", 1)[1])


def ask(sock: socket.socket) -> bytes:
    """One request on ``sock``, its whole answer (``/healthz`` answers a JSON object)."""
    sock.sendall(REQUEST)
    answer = b""
    while not answer.endswith(b"}"):
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection after {answer!r}"
        answer += chunk
    return answer


def closed_after(sock: socket.socket, *, timeout: float = 30.0) -> float:
    """Seconds until the server closes ``sock``, which must receive nothing before."""
    started = time.monotonic()
    sock.settimeout(timeout)
    assert sock.recv(65536) == b""
    return time.monotonic() - started


def test_an_idle_keep_alive_connection_is_closed_once_its_time_out_has_passed() -> None:
    guard = ConnectionGuard(16)
    with served(guard) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        for _ in range(3):  # kept alive between requests
            assert ask(sock).startswith(b"HTTP/1.1 200 OK")
        # Never before its time-out: a lower bound, which no slow machine can break.
        assert closed_after(sock) >= KEEP_ALIVE
        eventually(lambda: guard.open == 0)


def test_connections_in_use_stay_open_while_idle_ones_are_closed() -> None:
    guard = ConnectionGuard(16)
    with served(guard, LONG_KEEP_ALIVE) as port:
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        busy = socket.create_connection(("127.0.0.1", port))
        try:
            for sock in idle:
                assert ask(sock).startswith(b"HTTP/1.1 200 OK")
                time.sleep(0.1)  # they go idle one after the other
            ended = time.monotonic() + 2 * LONG_KEEP_ALIVE
            while time.monotonic() < ended:  # a request every tenth of the time-out
                assert ask(busy).startswith(b"HTTP/1.1 200 OK")
                time.sleep(LONG_KEEP_ALIVE / 10)
            for sock in idle:  # closed by now, or about to be on a machine that stalled
                assert closed_after(sock) >= 0
            assert guard.open == 1
            assert ask(busy).startswith(b"HTTP/1.1 200 OK")
        finally:
            for sock in (*idle, busy):
                sock.close()


def test_a_connection_that_sends_again_before_its_time_out_starts_it_over() -> None:
    guard = ConnectionGuard(16)
    with (
        served(guard, LONG_KEEP_ALIVE) as port,
        socket.create_connection(("127.0.0.1", port)) as sock,
    ):
        assert ask(sock).startswith(b"HTTP/1.1 200 OK")
        time.sleep(LONG_KEEP_ALIVE * 0.5)
        assert ask(sock).startswith(b"HTTP/1.1 200 OK")
        asked = time.monotonic()
        closed = closed_after(sock)
        # Counted from the second answer, not the first.
        assert time.monotonic() - asked >= LONG_KEEP_ALIVE
        assert closed > 0
