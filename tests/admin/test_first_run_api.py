"""The README's HTTP API walk-through against a real ``rollout serve``: started as the README
says (with ``--token alice=s3cret``) its curls answer what the README shows; started without a
token (plain ``make run``) the same curl is refused with a 403 that says authentication is off,
not "use a bearer token" (which it did)."""

from __future__ import annotations

from pathlib import Path

import httpx

from .serve_process import serve


def localhost(url: str) -> str:
    # The README's curl says `localhost:8080`: the Host header is `localhost`, not 127.0.0.1.
    return url.rstrip("/").replace("127.0.0.1", "localhost")


def test_a_token_sent_to_a_server_without_tokens_is_told_auth_is_off(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'rollout.db'}"
    with serve("--http", "127.0.0.1:0", "--store", store, cwd=tmp_path) as served:
        bearer = {"Authorization": "Bearer s3cret"}
        with httpx.Client(base_url=localhost(served.url), timeout=30) as http:
            for headers in (bearer, {}):
                refused = http.put(
                    "/api/v1/flags/chat/percentage", json={"percentage": 20}, headers=headers
                )
                assert refused.status_code == 403, refused.text
                message = refused.json()["error"]["message"]
                assert "started without a token (authentication is off)" in message
                assert "rollout serve --token NAME=SECRET" in message
                assert "scripts use a bearer token" not in message
                assert ("bearer token sent is not checked" in message) == bool(headers)
            assert http.get("/api/v1/flags").json()["flags"] == []  # nothing written


def test_the_readmes_curls_with_the_readmes_token(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'rollout.db'}"
    args = ("--http", "127.0.0.1:0", "--store", store, "--token", "alice=s3cret")
    with serve(*args, cwd=tmp_path) as served:
        bearer = {"Authorization": "Bearer s3cret"}
        with httpx.Client(base_url=localhost(served.url), headers=bearer, timeout=30) as http:
            put = http.put("/api/v1/flags/chat/percentage", json={"percentage": 20})
            assert put.status_code == 200, put.text
            assert put.json()["percentage"] == 20.0
            check = http.get("/api/v1/flags/chat/check", params={"user": "42"})
            # User 42's bucket is below 20: on (the README said false until it was run).
            assert check.json() == {
                "flag": "chat",
                "user": "42",
                "active": True,
                "state": "partial",
            }
            bad = http.put("/api/v1/flags/chat/percentage", json={"percentage": 150})
            assert bad.status_code == 422
            assert (
                bad.json()["error"]["message"]
                == "percentage must be a number from 0 to 100, got 150"
            )
