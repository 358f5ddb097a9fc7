"""Headers no browser sends, against a real ``rollout serve``: a refusal (4xx), never a 500 with a
traceback in the log (which anyone could repeat to fill the disk)."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from .serve_process import Served, clean_env, serve

TOKEN = secrets.token_urlsafe(32)

#: ``Origin`` values that ``urllib.parse.urlsplit`` cannot parse, or barely.
ORIGINS = ["http://[oops", "http://[::1", "http://]x[", "https://[::1]x", "http://a:99999", "null"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp_path: Path = tmp_path_factory.mktemp("hostile")
    env = clean_env(ROLLOUT_TOKEN=f"alice={TOKEN}")
    with serve("--http", "127.0.0.1:0", cwd=tmp_path, env=env, token=TOKEN) as running:
        yield running
    assert running.returncode == 0, running.stderr()
    assert "Traceback" not in running.stderr()


@pytest.mark.parametrize("origin", ORIGINS)
def test_a_malformed_origin_is_refused_as_cross_site_never_a_500(
    served: Served, origin: str
) -> None:
    with served.client(token=None) as browser:
        # The sign-in form is public: anyone can send this.
        login = browser.post(
            "/login", data={"token": "a-guess", "next": "/"}, headers={"Origin": origin}
        )
        assert login.status_code == 403, login.text
        assert "Origin" in login.json()["error"]["message"]
    assert "Traceback" not in served.stderr()


#: Requests that are not HTTP, each on its own connection: bounded, and far more than one line.
GARBAGE = 200


def test_requests_that_are_not_http_get_400_and_do_not_fill_the_log(served: Served) -> None:
    port = int(served.url.rstrip("/").rsplit(":", 1)[1])
    for _ in range(GARBAGE):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GARBAGE\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 400 Bad Request")
    lines = [line for line in served.stderr().splitlines() if "Invalid HTTP request" in line]
    print(f"{GARBAGE} requests that are not HTTP: {len(lines)} log line(s)")
    assert 1 <= len(lines) <= 2, lines[:5]
