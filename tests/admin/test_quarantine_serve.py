"""A running ``rollout serve`` node's quarantine, seen and resolved from outside: through its
API and through ``rollout quarantine --url`` / ``rollout members --url``.

Real processes throughout: a node whose clock runs an hour ahead writes a flag while alone,
then a ``serve`` node joins it and a healthy node; serve holds the future-stamped register
(its clock agrees with the majority, so it keeps writing and can resolve it).
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import httpx
import pytest

from rollout.cli._main import main
from rollout.testing import eventually
from rollout.testing.cluster import Node, free_port

from .serve_process import Served, clean_env, rollout, serve

SECRET = secrets.token_urlsafe(32)
TOKEN = secrets.token_urlsafe(32)
FLAG = "log verbose"  # quoted into paths and query strings
HOUR_MS = 3_600_000


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[Served, Node]]:
    """(serve, the fast node) once serve holds the fast node's register for user ``future``."""
    fast = Node("fast", tmp_path, secret=SECRET, clock_offset_ms=HOUR_MS, anti_entropy_interval=0.3)
    healthy = Node("healthy", tmp_path, secret=SECRET, anti_entropy_interval=0.3)
    fast.start()
    healthy.start()
    try:
        fast.call("activate_user", FLAG, "future")  # alone, without peers: it writes
        env = clean_env(ROLLOUT_SECRET=SECRET, ROLLOUT_TOKEN=f"oncall={TOKEN}")
        listen = f"127.0.0.1:{free_port()}"
        with serve(
            "--http", "127.0.0.1:0", "--listen", listen, "--peers",
            f"{fast.address},{healthy.address}", "--store", "memory://",
            cwd=tmp_path, env=env, token=TOKEN,
        ) as served, served.client() as http:  # fmt: skip
            eventually(lambda: _get(http, "/api/v1/quarantine")["quarantined"], 30, "held")
            eventually(lambda: _clock(http)["state"] == "ok", 30, "serve's clock judged ok")
            yield served, fast
    finally:
        fast.stop()
        healthy.stop()


def _get(http: httpx.Client, path: str) -> Any:
    response = http.get(path)
    assert response.status_code == 200, response.text
    return response.json()


def _clock(http: httpx.Client) -> dict[str, Any]:
    clock: dict[str, Any] = _get(http, "/api/v1/members")["clock"] or {}
    return clock


def _cli(served: Served, *args: str, token: str = TOKEN) -> tuple[int, str, str]:
    """``rollout ARGS`` in this process (so coverage sees the CLI's client of the API), with the
    environment and working directory the installed command would have."""
    env = clean_env(ROLLOUT_TOKEN=token) if token else clean_env()
    out, err = io.StringIO(), io.StringIO()
    with (
        patch.dict(os.environ, env, clear=True),
        contextlib.chdir(served.stderr_path.parent),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            status = main(list(args))
        except SystemExit as exit_:  # argparse's own refusals
            status = exit_.code if isinstance(exit_.code, int) else 2
    return status, out.getvalue(), err.getvalue()


def test_the_api_lists_and_resolves_what_a_running_node_holds(
    held: tuple[Served, Node],
) -> None:
    served, fast = held
    with served.client() as http, served.client(token=None) as anonymous:
        listed = _get(http, "/api/v1/quarantine")["quarantined"]
        # The write's two registers: the user, and the flag's existence.
        assert [(e["flag"], e["key"], e["value"]) for e in listed] == [
            (FLAG, "exists", True),
            (FLAG, "user:future", True),
        ]
        for entry in listed:
            assert (entry["node"], entry["origin"]) == (fast.node_id, "peer")
            assert entry["ahead_ms"] > HOUR_MS - 60_000
        assert _get(http, f"/api/v1/quarantine?flag={_path(FLAG)}") == {"quarantined": listed}
        assert _get(http, "/api/v1/quarantine?flag=other") == {"quarantined": []}
        assert _get(http, "/api/v1/members")["quarantined"] == 2

        # Refused without a token, like every other route; nothing resolved.
        assert anonymous.get("/api/v1/quarantine").status_code == 401
        assert anonymous.post(f"/api/v1/quarantine/{_path(FLAG)}/drop").status_code == 401
        missing = http.post(f"/api/v1/quarantine/{_path(FLAG)}/drop", json={"key": "user:nope"})
        assert (missing.status_code, missing.json()["error"]["field"]) == (404, "key")
        bad = http.post(f"/api/v1/quarantine/{_path(FLAG)}/drop", json={"key": 42})
        assert (bad.status_code, bad.json()["error"]["field"]) == (422, "key")
        assert _get(http, "/api/v1/quarantine")["quarantined"] == listed

        accepted = http.post(
            f"/api/v1/quarantine/{_path(FLAG)}/accept", json={"reason": "checked with the team"}
        )
        assert accepted.status_code == 200, accepted.text
        assert accepted.json() == {"flag": FLAG, "action": "accept", "registers": 2}
        assert _get(http, "/api/v1/quarantine") == {"quarantined": []}
        assert _get(http, f"/api/v1/flags/{_path(FLAG)}")["users"] == ["future"]
        [event] = _get(http, f"/api/v1/flags/{_path(FLAG)}/history")["events"]
        assert (event["action"], event["actor"]) == ("quarantine_accept", "oncall")
        assert event["reason"] == "checked with the team"
        again = http.post(f"/api/v1/quarantine/{_path(FLAG)}/accept")  # no body at all
        assert again.status_code == 404, again.text


def test_the_cli_sees_and_drops_a_running_nodes_quarantine_through_url(
    held: tuple[Served, Node], tmp_path: Path
) -> None:
    served, fast = held
    url = served.url.rstrip("/")
    # Without --url: this process's own (empty) replica, and a hint naming --url.
    status, out, _ = _cli(served, "--store", "memory://", "quarantine")
    assert status == 0
    assert "nothing is quarantined here" in out
    assert "--url" in out

    # The installed command itself, once; the rest in this process.
    done = rollout("quarantine", "--url", url, cwd=tmp_path, env=clean_env(ROLLOUT_TOKEN=TOKEN))
    status, out, err = done.returncode, done.stdout, done.stderr
    assert status == 0, err
    assert _cli(served, "quarantine", "--url", url) == (status, out, err)
    header, *rows = out.splitlines()
    assert header.split() == ["FLAG", "KEY", "VALUE", "STAMPED", "BY", "FROM", "AHEAD"]
    assert [row.split()[:6] for row in rows] == [
        [*FLAG.split(), key, "true", fast.node_id, "peer"] for key in ("exists", "user:future")
    ]

    status, _, err = _cli(served, "quarantine", "--url", url, token=secrets.token_urlsafe(32))
    assert status == 2
    assert "401" in err
    assert "ROLLOUT_TOKEN" in err

    status, out, err = _cli(served, "quarantine", "--url", url, "drop", FLAG, "user:future")
    assert (status, out, err) == (0, f"{FLAG}: 1 quarantined register dropped\n", "")
    status, out, err = _cli(
        served, "quarantine", "--url", url, "--reason", "bad clock", "drop", FLAG
    )
    assert (status, out, err) == (0, f"{FLAG}: 1 quarantined register dropped\n", "")
    status, out, _ = _cli(served, "quarantine", "--url", url)
    assert (status, out) == (0, "nothing is quarantined\n")
    with served.client() as http:
        events = _get(http, f"/api/v1/flags/{_path(FLAG)}/history")["events"]
        assert [(e["action"], e["actor"], e["reason"]) for e in events] == [
            ("quarantine_drop", "oncall", "bad clock"),  # newest first
            ("quarantine_drop", "oncall", None),
        ]
        assert http.get(f"/api/v1/flags/{_path(FLAG)}").status_code == 404  # never applied

    status, _, err = _cli(served, "quarantine", "--url", url, "drop", FLAG)
    assert status == 2
    assert "404" in err
    assert "nothing is quarantined" in err


def test_members_through_url_shows_the_nodes_own_verdict(held: tuple[Served, Node]) -> None:
    served, fast = held
    url = served.url.rstrip("/")
    status, out, err = _cli(served, "members", "--url", url)
    assert status == 0, err
    lines = out.splitlines()
    fast_row = next(line for line in lines if line.startswith(fast.address))
    assert fast_row.split()[-2:] == ["NO", "yes"]  # an hour ahead of serve's clock; a seed
    with served.client() as http:
        node = _get(http, "/api/v1/members")["node"]
    assert f"CLOCK OFFSET and AGREES: each node's clock against node {node}'s" in lines
    verdict = next(line for line in lines if line.startswith(f"node {node}'s clock"))
    assert "as its peers judge it: ok: agrees with 2 of 3 nodes" in verdict
    assert f"node {node} holds 2 quarantined registers: `rollout quarantine --url {url}`" in lines


def _path(name: str) -> str:
    return urllib.parse.quote(name, safe="")
