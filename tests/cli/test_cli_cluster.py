"""`rollout serve`, `rollout members` and `--peers` on the command line, as real processes."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollout.testing.cluster import free_port

SECRET = secrets.token_urlsafe(32)


def rollout(
    *args: str, secret: str | None = SECRET, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
    if secret is not None:
        env["ROLLOUT_SECRET"] = secret
    return subprocess.run(
        [sys.executable, "-m", "rollout", *args],
        capture_output=True, text=True, timeout=timeout, env=env, check=False,
    )  # fmt: skip


@pytest.fixture
def node(tmp_path: Path) -> Iterator[str]:
    """A long-lived `rollout serve` node; yields its address."""
    address = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "ROLLOUT_SECRET": SECRET}
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "rollout", "serve", "--listen", address,
         "--store", f"sqlite:///{tmp_path / 'node.db'}", "--http", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=log, text=True, env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert f"listening on {address}" in first, first
        yield address
    finally:
        process.terminate()
        process.wait(timeout=15)
        assert process.stdout is not None
        process.stdout.close()
        log.close()
    assert process.returncode == 0  # SIGTERM is a clean stop
    assert "listening on" in (tmp_path / "serve.log").read_text()


def test_a_write_with_peers_reaches_the_node_and_other_clients(node: str) -> None:
    wrote = rollout("--store", "memory://", "--peers", node, "activate-user", "chat", "42")
    assert wrote.returncode == 0, wrote.stderr
    assert "chat: on for 1 user" in wrote.stdout
    listed = rollout("--store", "memory://", "--peers", node, "--json", "list")
    assert listed.returncode == 0, listed.stderr
    assert [(f["flag"], f["counts"]["users"]) for f in json.loads(listed.stdout)] == [("chat", 1)]
    on = rollout("--store", "memory://", "--peers", node, "check", "chat", "--user", "42")
    assert (on.returncode, on.stdout.strip()) == (0, "on")


def test_members_lists_the_node_with_its_state_and_clock_offset(node: str) -> None:
    shown = rollout("--store", "memory://", "--peers", node, "members")
    assert shown.returncode == 0, shown.stderr
    header, row = shown.stdout.splitlines()[:2]
    assert header.split() == ["ADDRESS", "NODE", "STATE", "CLOCK", "OFFSET", "AGREES", "SEED"]
    assert row.startswith(node)
    assert "connected" in row
    assert " ms" in row
    assert row.split()[-2:] == ["yes", "yes"]  # its clock agrees; it is a seed
    # The verdict shown is this command's own clock (it joined as a node), and says so.
    footer = shown.stdout.splitlines()[-3:]
    assert (
        footer[0] == "CLOCK OFFSET and AGREES: each node's clock against this command's own clock"
    )
    assert footer[1].startswith(
        "this command's own clock, as those nodes judge it: ok: agrees with 2 of 2 nodes"
    )
    assert "rollout members --url" in footer[2]
    as_json = json.loads(
        rollout("--store", "memory://", "--peers", node, "--json", "members").stdout
    )
    assert (as_json[0]["address"], as_json[0]["state"]) == (node, "connected")
    assert as_json[0]["clock_agrees"] is True


def test_a_wrong_secret_is_one_line_and_exit_status_2_and_changes_nothing(node: str) -> None:
    started = time.monotonic()
    refused = rollout(
        "--store", "memory://", "--peers", node, "activate", "x", secret=secrets.token_urlsafe(32)
    )
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1
    assert "did not accept this secret" in refused.stderr
    assert time.monotonic() - started < 20  # reported without waiting for every retry
    listed = rollout("--store", "memory://", "--peers", node, "--json", "list")
    assert json.loads(listed.stdout) == []


def test_a_weak_secret_is_refused_before_anything_is_sent(node: str) -> None:
    refused = rollout("--store", "memory://", "--peers", node, "activate", "x", secret="hunter2")
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1
    assert "secret is too weak" in refused.stderr
    assert "rollout secret" in refused.stderr  # says how to make a good one
    assert "hunter2" not in refused.stderr
    listed = rollout("--store", "memory://", "--peers", node, "--json", "list")
    assert json.loads(listed.stdout) == []


def test_rollout_secret_makes_secrets_the_cluster_accepts(node: str) -> None:
    made = rollout("secret", secret=None)
    assert made.returncode == 0
    assert made.stdout.strip() != SECRET
    # A fresh secret is strong enough to be used, and is not the cluster's: refused by peers.
    wrong = rollout("--store", "memory://", "--peers", node, "list", secret=made.stdout.strip())
    assert "did not accept this secret" in wrong.stderr


def test_an_unreachable_peer_is_one_line_and_exit_status_2() -> None:
    dead = f"127.0.0.1:{free_port()}"
    result = rollout("--store", "memory://", "--peers", dead, "list")
    assert result.returncode == 2
    assert result.stderr.startswith("rollout: error: no peer answered within 10 s")
    assert f"not reached: {dead}" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_a_public_address_without_a_secret(tmp_path: Path) -> None:
    result = rollout(
        "serve", "--listen", "0.0.0.0:0", "--store", f"sqlite:///{tmp_path / 'x.db'}", secret=None
    )
    assert result.returncode == 2
    # In the command line's words: its options and variable, not the library's arguments.
    assert result.stderr.startswith(
        "rollout: error: --listen 0.0.0.0:0: not a loopback address and no cluster secret"
    )
    assert "$ROLLOUT_SECRET (or --secret)" in result.stderr
    assert "--insecure" in result.stderr
    assert "secret=..." not in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.db").exists()  # refused before the store was opened
