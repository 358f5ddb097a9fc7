"""``rollout serve`` against clients that open connections and never finish a request
(slowloris): a real serve process, real sockets on loopback, bounded counts."""

from __future__ import annotations

import resource
import secrets
import selectors
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from rollout import Rollout
from rollout.admin._connections import BODY_IDLE, HEAD_TIMEOUT
from rollout.testing import eventually

from .serve_process import Served, clean_env, serve

pytestmark = pytest.mark.slow

TOKEN = secrets.token_urlsafe(32)

_HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
_BODY = (
    b"PUT /api/v1/flags/chat/percentage HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
    b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    b'{"percen'
)


def _port(served: Served) -> int:
    return int(served.url.rstrip("/").rsplit(":", 1)[1])


@contextmanager
def stalled(port: int, count: int, kind: str) -> Iterator[list[socket.socket]]:
    """``count`` connections that never finish: ``silent`` (nothing sent), ``head`` (half a
    request head) or ``body`` (a head and a tenth of the body it announces)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sockets.append(sock)
            if kind == "head":
                sock.sendall(_HEAD)
            elif kind == "body":
                sock.sendall(_BODY)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def closed_by_server(sockets: list[socket.socket], timeout: float) -> dict[socket.socket, bytes]:
    """What each socket received before the server closed it (those still open are missing)."""
    received = dict.fromkeys(sockets, b"")
    closed: dict[socket.socket, bytes] = {}
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ, data=sock)
        deadline = time.monotonic() + timeout
        while len(closed) < len(sockets) and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.5):
                sock = key.data
                try:
                    data = sock.recv(4096)
                except ConnectionResetError:
                    data = b""
                if data:
                    received[sock] += data
                else:
                    closed[sock] = received[sock]
                    selector.unregister(sock)
    return closed


def still_stalled(sockets: list[socket.socket]) -> list[socket.socket]:
    """The sockets that have neither received anything nor been closed, at one look."""
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ)
        touched = {key.fileobj for key, _ in selector.select(timeout=0)}
    return [sock for sock in sockets if sock not in touched]


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    """What ``sock`` receives up to and including ``marker`` (its timeout bounds each read)."""
    data = b""
    while marker not in data:
        chunk = sock.recv(4096)
        assert chunk, f"closed before {marker!r}; got {data!r}"
        data += chunk
    return data


def timed_get(url: str, path: str) -> tuple[httpx.Response, float]:
    """GET on a fresh connection, and the seconds it took (connecting included)."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=10) as client:
        start = time.perf_counter()
        response = client.get(path)
        return response, time.perf_counter() - start


def _open_files(count: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count:
        if hard != resource.RLIM_INFINITY and hard < count:
            pytest.skip(f"this test opens {count} sockets; the open file limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (count, hard))


def _seed(tmp_path: Path) -> str:
    store = f"sqlite:///{tmp_path / 'rollout.db'}"
    with Rollout(store) as seed:
        seed.activate("chat")
    return store


def test_a_thousand_stalled_connections_neither_slow_requests_nor_stay_open(
    tmp_path: Path,
) -> None:
    _open_files(2500)
    store = _seed(tmp_path)
    env = clean_env(ROLLOUT_TOKEN=TOKEN)
    with serve(
        "--store", store, "--http", "127.0.0.1:0", "--no-access-log", cwd=tmp_path, env=env
    ) as s:  # fmt: skip
        port = _port(s)
        with stalled(port, 500, "head") as heads, stalled(port, 500, "body") as bodies:
            opened = time.monotonic()
            # These connect after the stalled ones, so the server accepts them after (one
            # listening queue, first in first out): it holds all 1,000 when it answers.
            healthz, healthz_took = timed_get(s.url, "/healthz")
            check, check_took = timed_get(s.url, "/api/v1/flags/chat/check")
            print(f"with 1,000 stalled connections: /healthz {healthz_took * 1000:.1f} ms, "
                  f"a check {check_took * 1000:.1f} ms")  # fmt: skip
            assert healthz.status_code == 200
            assert check.json()["active"] is True
            # Answered while every stalled connection was still open, so not behind their
            # deadlines (the old server answered only once they had closed them). An order,
            # not a time, which a slow machine cannot break; the time (100 ms) is the bench's.
            assert len(still_stalled(heads + bodies)) == 1000

            # Past the deadlines the server answers 408 and closes every one of them.
            closed = closed_by_server(heads + bodies, timeout=max(HEAD_TIMEOUT, BODY_IDLE) + 30)
            waited = time.monotonic() - opened
            assert len(closed) == 1000, f"{1000 - len(closed)} stalled connections still open"
            assert waited > min(HEAD_TIMEOUT, BODY_IDLE) - 1  # not before their deadline
            assert {data.split(b"\r\n", 1)[0] for data in closed.values()} == {
                b"HTTP/1.1 408 Request Timeout"
            }
    assert s.returncode == 0
    assert "Traceback" not in s.stderr()


def test_a_silent_connection_is_closed_after_the_head_deadline_without_an_answer(
    tmp_path: Path,
) -> None:
    with serve("--store", "memory://", "--http", "127.0.0.1:0", cwd=tmp_path) as served:
        with stalled(_port(served), 3, "silent") as silent:
            closed = closed_by_server(silent, timeout=HEAD_TIMEOUT + 30)
        assert list(closed.values()) == [b"", b"", b""]
        # A keep-alive connection that starts a second request and stalls gets the same.
        with socket.create_connection(("127.0.0.1", _port(served)), timeout=10) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert read_until(sock, b"}").startswith(b"HTTP/1.1 200 OK")
            sock.sendall(_HEAD)
            closed = closed_by_server([sock], timeout=HEAD_TIMEOUT + 30)
        assert closed[sock].startswith(b"HTTP/1.1 408 Request Timeout\r\n")


def test_under_a_256_descriptor_limit_300_stalled_connections_lock_nobody_out(
    tmp_path: Path,
) -> None:
    _open_files(1000)
    store = _seed(tmp_path)
    with serve(
        "--store", store, "--http", "127.0.0.1:0", cwd=tmp_path, env=clean_env(ROLLOUT_TOKEN=TOKEN),
        open_files=(256, 256),
    ) as served:  # fmt: skip
        port = _port(served)
        # A dashboard's event stream is a finished request: the flood must not evict it.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as events:
            events.sendall(
                b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Authorization: Bearer " + TOKEN.encode() + b"\r\n\r\n"
            )
            read_until(events, b"connected")
            with (
                stalled(port, 100, "silent"),
                stalled(port, 100, "head"),
                stalled(port, 100, "body"),
            ):
                # The flood has filled the descriptors (where the old server logged megabytes
                # of EMFILE tracebacks): the oldest unfinished connections are being evicted.
                eventually(
                    lambda: "connections open (the cap)" in served.stderr(), 60, "the cap reached"
                )
                healthz, healthz_took = timed_get(served.url, "/healthz")
                check, check_took = timed_get(served.url, "/api/v1/flags/chat/check")
                took = f"/healthz {healthz_took * 1000:.1f} ms, a check {check_took * 1000:.1f} ms"
                print(f"256 descriptors, 300 stalled connections: {took}")
                # Answered at all is the point (the old server locked everybody out); how fast
                # is the bench's.
                assert healthz.status_code == 200
                assert check.json()["active"] is True
                with served.client(TOKEN) as client:
                    response = client.put("/api/v1/flags/signup/active", json={"active": True})
                    assert response.status_code == 200, response.text
                read_until(events, b"signup")
    log = served.stderr()
    print(f"stderr: {len(log.encode())} bytes")
    assert len(log.encode()) < 8192, log[:3000]
    assert "Traceback" not in log
    assert "connections open (the cap)" in log


def test_serve_raises_its_soft_descriptor_limit_to_the_hard_one(tmp_path: Path) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 4096:
        pytest.skip(f"the hard open file limit is {hard}")
    with serve(
        "--store", "memory://", "--http", "127.0.0.1:0", cwd=tmp_path,
        open_files=(256, 4096),
    ) as served:  # fmt: skip
        limits = Path(f"/proc/{served.process.pid}/limits")
        if not limits.exists():
            pytest.skip("no /proc here")
        row = next(line for line in limits.read_text().splitlines() if "open files" in line)
        assert row.split()[3:5] == ["4096", "4096"]


def test_a_new_connection_at_the_cap_evicts_the_oldest_one_still_sending_its_request(
    tmp_path: Path,
) -> None:
    # 72 descriptors: 64 kept for the rest of the process, a cap of 8 connections.
    env = clean_env(ROLLOUT_TOKEN=TOKEN)
    with serve(
        "--store", "memory://", "--http", "127.0.0.1:0", cwd=tmp_path, env=env,
        open_files=(72, 72),
    ) as served:  # fmt: skip
        assert "holding at most 8 HTTP connections (open file limit 72)" in served.stderr()
        port = _port(served)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as events:
            events.sendall(
                b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Authorization: Bearer " + TOKEN.encode() + b"\r\n\r\n"
            )
            read_until(events, b"connected")  # busy from now on: never evicted
            with stalled(port, 10, "head") as heads:
                healthz, _ = timed_get(served.url, "/healthz")
                assert healthz.status_code == 200
                # 1 stream + 10 heads + 1 request through a cap of 8: the 4 oldest heads went.
                closed = closed_by_server(heads, timeout=HEAD_TIMEOUT / 2)
                # (Closed at once, long before their deadline; with a 408 only if the server had
                # read part of their head by then.)
                assert sorted(heads.index(sock) for sock in closed) == [0, 1, 2, 3]
            with served.client(TOKEN) as client:
                response = client.put("/api/v1/flags/chat/active", json={"active": True})
                assert response.status_code == 200, response.text
            read_until(events, b"chat")
