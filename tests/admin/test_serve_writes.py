"""``rollout serve`` sends a short answer in one write (uvicorn writes a response's head and
its body apart: two system calls and two TCP segments), and a stream's head without waiting
for its first event."""

from __future__ import annotations

import socket
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .serve_process import Served, clean_env, serve

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="counts TCP segments with Linux's TCP_INFO"
)

TOKEN = "s3cret-token"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    env = clean_env(ROLLOUT_TOKEN=TOKEN)
    with serve("--store", "memory://", "--http", "127.0.0.1:0", cwd=tmp_path, env=env) as running:
        yield running
    assert "Traceback" not in running.stderr()


def _connect(served: Served) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", int(served.url.rstrip("/").rsplit(":", 1)[1])))
    sock.settimeout(10)
    return sock


def _read_until(sock: socket.socket, end: bytes) -> bytes:
    """What ``sock`` receives until it ends with ``end`` (a ``end`` in it, for a head)."""
    received = b""
    while not (received.endswith(end) if end == b"}" else end in received):
        chunk = sock.recv(65536)
        assert chunk, received
        received += chunk
    return received


def _data_segments_received(sock: socket.socket) -> int:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return int(struct.unpack_from("I", info, 152)[0])  # struct tcp_info's tcpi_data_segs_in


def _get(path: str, *headers: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {TOKEN}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_each_answer_arrives_in_one_segment(served: Served) -> None:
    request = _get("/api/v1/flags/chat/check?user=42")
    with _connect(served) as sock:
        for answered in range(1, 4):
            sock.sendall(request)
            received = _read_until(sock, b"}")
            assert received.startswith(b"HTTP/1.1 200 OK\r\n"), received
            assert received.count(b"HTTP/1.1") == 1
            assert _data_segments_received(sock) == answered


def test_a_streams_head_is_sent_before_its_first_event(served: Served) -> None:
    with _connect(served) as sock:
        sock.sendall(_get("/events", "Accept: text/event-stream"))
        received = _read_until(sock, b"\r\n\r\n")  # no flag changes: no event is coming
        assert received.startswith(b"HTTP/1.1 200 OK\r\n"), received
        assert b"text/event-stream" in received.lower()
