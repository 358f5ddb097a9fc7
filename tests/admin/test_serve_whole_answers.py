"""Answers the serve writes whole, over real sockets: keep-alive, pipelining, HEAD, closing.

The serve's connections write an answer given in one body message themselves, and start the
next request on a fresh h11 connection (``_whole_response.py``). What a client sees must not
change: requests pipelined in one write are each answered, in order; HEAD answers the head
alone and the connection stays in step; ``Connection: close`` and HTTP/1.0 get their answer,
then the connection closes; the access log has each request's line; a stream's head goes out
before its first part. And for any ASGI app the serve's protocol answers as uvicorn's own h11
protocol does, byte for byte (``ANSWERS``: the cases a review found).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from rollout import Rollout
from rollout.admin import create_app
from rollout.admin._connections import ConnectionGuard, guarded
from rollout.testing import eventually

from .dashboard_server import serve
from .serve_process import clean_env
from .serve_process import serve as serve_process

CHECK = b"/api/v1/flags/chat/check?user=%d"


@contextmanager
def served(guard: ConnectionGuard) -> Iterator[int]:
    with Rollout() as flags:
        flags.activate_percentage("chat", 50)
        with serve(create_app(flags), http=guarded(guard)) as url:
            yield int(url.rsplit(":", 1)[1])


def request(
    user: int, *, method: bytes = b"GET", version: bytes = b"1.1", extra: bytes = b""
) -> bytes:
    return b"%s %s HTTP/%s\r\nHost: 127.0.0.1\r\n%s\r\n" % (method, CHECK % user, version, extra)


def content_length(head: bytes) -> int:
    """The Content-Length of a response head (lower-case field names, as the serve sends)."""
    fields = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
    return int(fields[b"content-length"])


def read_answers(
    sock: socket.socket, count: int, *, head: bool = False
) -> list[tuple[bytes, bytes]]:
    """``count`` answers, each (head, body), read by their Content-Length."""
    sock.settimeout(30)
    buffer = b""
    answers: list[tuple[bytes, bytes]] = []
    while len(answers) < count:
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            assert chunk, f"closed after {answers!r} and {buffer!r}"
            buffer += chunk
        top, _, buffer = buffer.partition(b"\r\n\r\n")
        length = 0 if head else content_length(top)
        while len(buffer) < length:
            chunk = sock.recv(65536)
            assert chunk, f"closed in a body: {buffer!r}"
            buffer += chunk
        answers.append((top, buffer[:length]))
        buffer = buffer[length:]
    assert buffer == b""
    return answers


def user_in(answer: tuple[bytes, bytes]) -> str:
    head, body = answer
    assert head.startswith(b"HTTP/1.1 200 OK\r\n"), head
    return str(json.loads(body)["user"])


def test_requests_pipelined_in_one_write_are_each_answered_in_order() -> None:
    guard = ConnectionGuard(16)
    with served(guard) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"".join(request(user) for user in range(5)))
        assert [user_in(a) for a in read_answers(sock, 5)] == ["0", "1", "2", "3", "4"]
        # The connection goes on, and its answers were written whole: its h11 connection is
        # a fresh one, not the one the last request was read with.
        sock.sendall(request(7))
        assert [user_in(a) for a in read_answers(sock, 1)] == ["7"]
        eventually(lambda: len(guard._idle) == 1)
        (connection,) = guard._idle
        assert connection.cycle is not None
        assert connection.cycle.conn is not connection.conn


def test_head_answers_the_head_alone_and_the_connection_stays_in_step() -> None:
    with served(ConnectionGuard(16)) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request(3, method=b"HEAD"))
        ((head, _),) = read_answers(sock, 1, head=True)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert content_length(head) > 0
        sock.sendall(request(4))  # no stray body bytes in front of this answer
        assert [user_in(a) for a in read_answers(sock, 1)] == ["4"]


def test_connection_close_and_http_1_0_get_their_answer_then_the_close() -> None:
    with served(ConnectionGuard(16)) as port:
        for ask in (request(1, extra=b"Connection: close\r\n"), request(1, version=b"1.0")):
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(ask)
                sock.settimeout(30)
                received = b""
                while chunk := sock.recv(65536):
                    received += chunk
                head, _, body = received.partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200 OK\r\n")
                assert b"\r\nconnection: close" in head.lower()
                assert json.loads(body)["user"] == "1"


def test_the_access_log_has_the_line_of_each_answer(tmp_path: Path) -> None:
    with (
        serve_process("--http", "127.0.0.1:0", cwd=tmp_path, env=clean_env()) as running,
        running.client(None) as client,
    ):
        assert client.get("/api/v1/flags/chat/check", params={"user": "9"}).status_code == 200
    assert '"GET /api/v1/flags/chat/check?user=9 HTTP/1.1" 200' in running.stderr()


async def _asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers that once went wrong written whole, each by its path."""
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/list":  # header pairs as lists, as ASGI allows
        headers: Any = [[b"content-type", b"text/plain"], [b"content-length", b"2"]]
    elif path == "/generator":  # a generator, which can be read once only
        headers = (pair for pair in [(b"x-generated", b"1")])
    else:
        headers = [(b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if path == "/raises":  # between its start and its body
        raise RuntimeError("the app failed after its start")
    if path == "/returns":  # without its body
        return
    if path == "/waits":  # for the client to go, without its body
        while (await receive())["type"] != "http.disconnect":
            pass
        return
    if path == "/stream":
        for part in (b"o", b"k"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
            await asyncio.sleep(0.05)
        await send({"type": "http.response.body", "body": b""})
        return
    await send({"type": "http.response.body", "body": b"ok"})
    if path == "/late":
        await asyncio.sleep(0.1)  # the next request arrives meanwhile
        await receive()  # only now, as an app watching for a disconnect does: the body


GET = b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n"
#: (what a client sends, a second part sent 0.05 s later or None), by what it shows.
ANSWERS = {
    "header pairs as lists": (GET % b"/list" + GET % b"/other", None),
    "headers from a generator": (GET % b"/generator", None),
    "an app that fails between its start and its body": (GET % b"/raises", None),
    "an app that returns between its start and its body": (GET % b"/returns", None),
    "... to a HEAD request": (b"HEAD /raises HTTP/1.1\r\nHost: a\r\n\r\n", None),
    "... to a request that asks to close": (
        b"GET /returns HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        None,
    ),
    "... to an HTTP/1.0 request": (b"GET /raises HTTP/1.0\r\n\r\n", None),
    "... behind an answer on the same connection": (GET % b"/other" + GET % b"/raises", None),
    "no 100 Continue after the answer, none in the next one": (
        b"POST /late HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
        GET % b"/stream",
    ),
}


#: Seconds an idle connection is kept (``timeout_keep_alive``) by the servers :func:`_talk`
#: talks to: each closes the connection that long after its last answer, which ends the talk.
KEEP_ALIVE = 1.0


def _talk(port: int, first: bytes, then: bytes | None) -> bytes:
    """What the server sends on one connection until it closes it (a server started with
    ``timeout_keep_alive=KEEP_ALIVE`` does once idle that long). The server's close ends the
    reading, not a quiet second on the client's clock: a server that stalls mid-answer on a
    busy machine is waited for."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(first)
        if then is not None:
            time.sleep(0.05)
            sock.sendall(then)
        sock.settimeout(30.0)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


@pytest.mark.parametrize("case", sorted(ANSWERS))
def test_any_app_is_answered_as_uvicorns_h11_protocol_answers(case: str) -> None:
    first, then = ANSWERS[case]
    answers = []
    for http in ("h11", guarded(ConnectionGuard(16))):
        with serve(_asgi_app, http=http, date_header=False, timeout_keep_alive=KEEP_ALIVE) as url:
            answers.append(_talk(int(url.rsplit(":", 1)[1]), first, then))
    uvicorns, ours = answers
    assert uvicorns.startswith(b"HTTP/1.1 ")
    assert ours == uvicorns


def test_an_app_that_ends_between_start_and_body_is_logged_as_uvicorn_logs_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # uvicorn logs the access line when the start comes; the serve holds the start for its
    # body, so an app that ends first must still have its line (and its error) logged.
    logged = []
    for http in ("h11", guarded(ConnectionGuard(16))):
        caplog.clear()
        with (
            caplog.at_level("INFO"),
            serve(
                _asgi_app,
                http=http,
                date_header=False,
                log_level="info",
                timeout_keep_alive=KEEP_ALIVE,
            ) as url,
        ):
            port = int(url.rsplit(":", 1)[1])
            for path in (b"/raises", b"/returns"):
                assert _talk(port, GET % path, None).startswith(b"HTTP/1.1 200 OK\r\n")
            # A client that goes while the app holds its start: uvicorn logged the line when
            # the start came.
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(GET % b"/waits")
                time.sleep(0.2)
            eventually(lambda: any("/waits" in r.getMessage() for r in caplog.records))
        logged.append(
            [
                (record.name, record.levelname, record.getMessage().split(" - ", 1)[-1])
                for record in caplog.records
                if record.name in ("uvicorn.access", "uvicorn.error")
                and "Uvicorn running" not in record.getMessage()
            ]
        )
    uvicorns, ours = logged
    assert ("uvicorn.access", "INFO", '"GET /raises HTTP/1.1" 200') in uvicorns
    assert ("uvicorn.access", "INFO", '"GET /returns HTTP/1.1" 200') in uvicorns
    assert ("uvicorn.access", "INFO", '"GET /waits HTTP/1.1" 200') in uvicorns
    assert ours == uvicorns


def test_a_held_start_is_let_go_at_once_to_a_client_that_does_not_read() -> None:
    # The client asks for a big answer it never reads, then for one whose app starts and
    # returns: the start is not written into the full buffer, nor is it waited on (uvicorn's
    # send would wait for the client to read, past the app's end and the server's shutdown).
    big = b"x" * (32 << 20)
    returned = threading.Event()
    records: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        length = len(big) if scope["path"] == "/big" else 2
        headers = [(b"content-length", b"%d" % length)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if scope["path"] == "/big":
            await send({"type": "http.response.body", "body": big})
        returned.set()

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    keep = Keep()
    logging.getLogger("uvicorn.error").addHandler(keep)
    try:
        guard = ConnectionGuard(16, write_idle=3600)  # never aborted while the test runs
        with (
            serve(app, http=guarded(guard)) as url,
            socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) as sock,
        ):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(GET % b"/big" + GET % b"/held")
            assert returned.wait(30)
            # uvicorn logs this once the app's end is handled: after the held start went.
            eventually(lambda: any("without completing" in line for line in records))
    finally:
        logging.getLogger("uvicorn.error").removeHandler(keep)


def test_a_stalled_body_gets_a_408_though_the_app_gave_its_start() -> None:
    # The app starts its answer, then reads the body, which stalls: the start is held (its
    # head not written), so the client is told why it is closed, and nothing else follows.
    async def reads_after_its_start(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = [(b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        while (await receive())["type"] == "http.request":
            pass
        await send({"type": "http.response.body", "body": b"ok"})

    guard = ConnectionGuard(16, body_idle=0.3)
    with serve(reads_after_its_start, http=guarded(guard)) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhalf")
            sock.settimeout(30)
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
    assert received == (
        b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    assert guard.timed_out == 1


def test_a_streams_head_goes_out_before_its_first_part() -> None:
    # Only an answer that gives its length is held for its body: an event stream's head must
    # reach the client before its first event, however late that comes.
    first_part = threading.Event()

    async def stream(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        while not first_part.is_set():
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    with (
        serve(stream, http=guarded(ConnectionGuard(16))) as url,
        socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) as sock,
    ):
        sock.sendall(GET % b"/events")
        sock.settimeout(30)
        received = b""
        try:
            while b"\r\n\r\n" not in received:  # before the first part is let go
                chunk = sock.recv(65536)
                assert chunk, received
                received += chunk
        finally:
            first_part.set()  # (on a failure too: the app must end for the server to stop)
        assert received.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"transfer-encoding: chunked" in received.lower()
        while not received.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk
        assert b"data: 1" in received
