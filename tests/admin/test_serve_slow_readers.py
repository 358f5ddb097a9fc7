"""``rollout serve`` against clients that send requests and never read the answers (a slow
read attack): a real serve process, real sockets on loopback, bounded counts.

A response the client does not read fills the kernel's buffers, then the server's; the request
is being answered, so neither the head nor the body deadline applies, and a connection being
answered was never evicted for room. A few such sockets (pipelined requests make any response
big enough) held every place under the connection cap.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from rollout.admin._connections import BODY_IDLE, WRITE_IDLE
from rollout.testing import eventually

from .serve_process import Served, clean_env, serve

pytestmark = pytest.mark.slow

#: Pipelined requests per connection: megabytes of answers, far more than the buffers hold.
PIPELINED = 600
_REQUEST = b"GET /static/flag.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def _port(served: Served) -> int:
    return int(served.url.rstrip("/").rsplit(":", 1)[1])


@contextmanager
def not_reading(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections that each send ``PIPELINED`` requests and never read."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
            sock.settimeout(10)
            sock.connect(("127.0.0.1", port))
            sock.sendall(_REQUEST * PIPELINED)
            sockets.append(sock)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def cut_short(sock: socket.socket, answers: int) -> bool:
    """Read what ``sock`` was sent: whether the server cut it off (reset or closed) before
    ``answers`` bytes, the size of the answers to every request sent on it."""
    sock.settimeout(10)
    received = 0
    try:
        while received < answers:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            received += len(chunk)
    except ConnectionResetError:
        pass
    return received < answers


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    # 72 descriptors: 64 kept for the rest of the process, a cap of 8 connections.
    with serve(
        "--store", "memory://", "--http", "127.0.0.1:0", cwd=tmp_path, env=clean_env(),
        open_files=(72, 72),
    ) as running:  # fmt: skip
        assert "holding at most 8 HTTP connections" in running.stderr()
        yield running
    assert "Traceback" not in running.stderr()


def test_clients_that_never_read_their_answers_lock_nobody_out(served: Served) -> None:
    answers = _answers(served)
    with not_reading(_port(served), 8) as readers:
        # The answers pile up until the server's writes are paused; from then on a newcomer
        # evicts a reader, and past the write deadline the readers are closed anyway. How long
        # the piling up takes depends on the machine (megabytes of answers to make), so the
        # newcomer keeps trying for longer than both: before either existed it never got in.
        start = time.monotonic()
        healthz = None
        while time.monotonic() - start < 3 * WRITE_IDLE:
            with httpx.Client(base_url=served.url.rstrip("/"), timeout=10) as client:
                healthz = client.get("/healthz")
            if healthz.status_code == 200:
                break
            time.sleep(0.5)
        took = time.monotonic() - start
        assert healthz is not None
        print(f"8 readers at a cap of 8: /healthz {healthz.status_code} after {took:.1f} s")
        assert healthz.status_code == 200
        # A reader made room for it (evicted, or closed at its write deadline).
        cut = [cut_short(sock, answers) for sock in readers]
        print(f"cut short: {cut}")
        assert cut.count(True) >= 1


def test_a_client_that_never_reads_is_closed_after_the_write_deadline(served: Served) -> None:
    port = _port(served)
    with not_reading(port, 2) as readers:
        # Both closed by the server before the test reads: reading first would let a reader
        # that is not closed yet (the answers take a while to pile up) drain its answers. Its
        # close waits behind the unsent answers, so only the server's side of it shows it.
        eventually(
            lambda: all(closed_by_server(port, sock) for sock in readers),
            WRITE_IDLE + 60,
            "both readers closed at the write deadline",
        )
        assert all(cut_short(sock, _answers(served)) for sock in readers)
    log = served.stderr()
    assert "closed a connection whose client read nothing of its answer for 10 s" in log


def closed_by_server(port: int, sock: socket.socket) -> bool:
    """Whether the server listening on ``port`` has closed its end of ``sock``'s connection:
    its socket there is past ESTABLISHED, or gone (the kernel's table, /proc/net/tcp)."""
    ours = sock.getsockname()[1]
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, remote, state = line.split()[1:4]
        if int(local.rsplit(":", 1)[1], 16) == port and int(remote.rsplit(":", 1)[1], 16) == ours:
            return state != "01"  # 01: ESTABLISHED
    return True


def _answers(served: Served) -> int:
    """The bytes of the bodies alone of the answers to ``PIPELINED`` requests."""
    with httpx.Client(base_url=served.url.rstrip("/"), timeout=10) as client:
        return len(client.get("/static/flag.js").content) * PIPELINED


def test_a_body_trickled_a_byte_at_a_time_is_closed_however_steady(served: Served) -> None:
    # A chunk of one byte every 2 s: never BODY_IDLE without data, but far under the rate.
    with socket.create_connection(("127.0.0.1", _port(served)), timeout=10) as sock:
        sock.sendall(
            b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n\r\n"
        )
        start, closed_after = time.monotonic(), None
        while time.monotonic() - start < 4 * BODY_IDLE:
            time.sleep(2)
            try:
                sock.sendall(b"1\r\nt\r\n")
            except OSError:
                closed_after = time.monotonic() - start
                break
        print(f"a body trickled at 3 bytes in 2 s: closed after {closed_after} s")
        assert closed_after is not None
