"""The API over a real socket: the app under uvicorn on a loopback port, driven with httpx."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rollout import Rollout
from rollout.admin import Auth, create_app

from .api_helpers import BEARER, TOKEN, seeded, served, session


@pytest.fixture
def flags(tmp_path: Path) -> Iterator[Rollout]:
    with Rollout(f"sqlite:///{tmp_path / 'flags.db'}") as rollout:
        yield seeded(rollout)


@pytest.fixture
def server(flags: Rollout) -> Iterator[tuple[str, Auth]]:
    app = create_app(flags, tokens={"alice": TOKEN}, max_body=10_000)
    with served(app) as url:
        yield url, app.state.auth


def test_reads_and_writes_over_http_land_in_the_store(
    server: tuple[str, Auth], flags: Rollout, tmp_path: Path
) -> None:
    url, _ = server
    with httpx.Client(base_url=url, headers=BEARER, timeout=30) as client:
        assert client.get("/healthz").json() == {"status": "ok", "flags": 2}
        response = client.post("/api/v1/flags/chat/users", json={"users": ["u9"]})
        assert response.status_code == 200
        assert "u9" in response.json()["users"]
        events = client.get("/api/v1/flags/chat/history", params={"limit": 1}).json()["events"]
        assert (events[0]["action"], events[0]["actor"]) == ("activate_users", "alice")
    # Written through to SQLite: another process opening the file sees it.
    with Rollout(f"sqlite:///{tmp_path / 'flags.db'}") as reopened:
        assert "u9" in reopened.get("chat").users
        assert reopened.history("chat")[0].actor == "alice"


def test_no_token_is_401_and_changes_nothing(server: tuple[str, Auth], flags: Rollout) -> None:
    url, _ = server
    before = flags.export()
    response = httpx.put(f"{url}/api/v1/flags/chat/active", json={"active": False}, timeout=30)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert flags.export() == before


def test_a_browser_session_needs_its_csrf_token(server: tuple[str, Auth], flags: Rollout) -> None:
    url, auth = server
    headers = session(auth, "alice")
    with httpx.Client(base_url=url, timeout=30) as client:
        refused = client.put(
            "/api/v1/flags/chat/percentage",
            json={"percentage": 3},
            headers={"Cookie": headers["Cookie"]},
        )
        assert refused.status_code == 403
        accepted = client.put(
            "/api/v1/flags/chat/percentage",
            json={"percentage": 3},
            headers={**headers, "Origin": url},
        )
        assert accepted.status_code == 200
    assert flags.get("chat").percentage == 3.0
    assert flags.history("chat")[0].actor == "alice"


def test_bad_input_over_the_wire(server: tuple[str, Auth], flags: Rollout) -> None:
    url, _ = server
    before = flags.export()
    headers = {**BEARER, "Content-Type": "application/json"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        malformed = client.put("/api/v1/flags/chat/percentage", content=b'{"percentage": 5')
        assert (malformed.status_code, malformed.json()["error"]["code"]) == (400, "malformed_json")
        out_of_range = client.put("/api/v1/flags/chat/percentage", json={"percentage": 500})
        assert out_of_range.status_code == 422
        assert out_of_range.json()["error"]["field"] == "percentage"
        big = client.post("/api/v1/flags/chat/users", json={"users": ["u" * 20_000]})
        assert (big.status_code, big.json()["error"]["code"]) == (413, "too_large")
    assert flags.export() == before


def test_a_body_far_over_the_limit_is_refused_without_reading_it(
    server: tuple[str, Auth], flags: Rollout
) -> None:
    # Content-Length says 1 GB and no body follows: the answer comes from the header alone.
    url, _ = server
    host, port = url.removeprefix("http://").split(":")
    request = (
        "PUT /api/v1/flags/chat/percentage HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request.encode())
        head, _, body = _read_response(sock)
    assert head.startswith("HTTP/1.1 413 ")
    assert json.loads(body)["error"]["code"] == "too_large"


def _read_response(sock: socket.socket) -> tuple[str, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return lines[0], headers, rest[:length]


def test_auth_off_refuses_a_rebound_host_name_over_the_wire(flags: Rollout) -> None:
    with served(create_app(flags)) as url:
        local = httpx.get(f"{url}/api/v1/flags/chat", timeout=30)
        assert local.status_code == 200
        rebound = httpx.get(
            f"{url}/api/v1/flags/chat", headers={"Host": "attacker.example"}, timeout=30
        )
        assert rebound.status_code == 403
        assert "'attacker.example' is not served here" in rebound.json()["error"]["message"]
