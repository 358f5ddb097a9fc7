"""gunicorn with --preload and 3 workers: a flag flipped on one worker is seen by all.

The app (``app_gunicorn.py``) makes its ``Rollout`` at import time, in the master; each forked
worker must come back to the cluster as a node of its own. A seed node in a separate process is
the peer they all know.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gunicorn.config
import pytest

from rollout.testing.cluster import Node, free_port

SECRET = secrets.token_urlsafe(32)
WORKERS = 3
WAIT = 30.0  # starting gunicorn and meeting every worker; never approached when healthy
PROPAGATION = 15.0  # for the flip to reach every worker


def _get(port: int, path: str) -> dict[str, Any]:
    """One request on a new connection, so the kernel may hand it to any worker."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        response = connection.getresponse()
        body = response.read()
        assert response.status == 200, (response.status, body)
        answer: dict[str, Any] = json.loads(body)
        return answer
    finally:
        connection.close()


@pytest.fixture
def seed(tmp_path: Path) -> Iterator[Node]:
    node = Node("seed", tmp_path, secret=SECRET, anti_entropy_interval=0.2)
    try:
        yield node.start()
    finally:
        node.stop()


@pytest.fixture
def server(seed: Node, tmp_path: Path) -> Iterator[int]:
    """A running ``gunicorn --preload -w 3`` serving app_gunicorn; yields its port."""
    port = free_port()
    env = {**os.environ, "ROLLOUT_SEED": seed.address, "ROLLOUT_SECRET": SECRET}
    arguments = [
        sys.executable, "-m", "gunicorn", "--preload", "-w", str(WORKERS),
        "-b", f"127.0.0.1:{port}", "--pythonpath", str(Path(__file__).parent),
        "app_gunicorn:app",
    ]  # fmt: skip
    if any(s.name == "control_socket_disable" for s in gunicorn.config.KNOWN_SETTINGS):
        arguments.insert(3, "--no-control-socket")  # else gunicorn 27+ makes ~/.gunicorn/*.ctl
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            arguments, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env
        )
    try:
        deadline = time.monotonic() + WAIT
        while True:
            if process.poll() is not None:
                raise AssertionError(f"gunicorn exited:\n{log_path.read_text()[-3000:]}")
            try:
                _get(port, "/node")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"gunicorn did not answer within {WAIT} s:\n{log_path.read_text()[-3000:]}"
                    ) from None
                time.sleep(0.1)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            tail = log_path.read_text()[-3000:]
            raise AssertionError(f"gunicorn ignored SIGTERM:\n{tail}") from None


def _every_worker(port: int, path: str) -> dict[int, dict[str, Any]]:
    """Ask until all workers answered once; each worker's first answer, by pid."""
    answers: dict[int, dict[str, Any]] = {}
    deadline = time.monotonic() + WAIT
    while len(answers) < WORKERS:
        answer = _get(port, path)
        answers.setdefault(answer["pid"], answer)
        assert len(answers) <= WORKERS, f"more worker pids than workers: {sorted(answers)}"
        if time.monotonic() > deadline:
            raise AssertionError(f"only workers {sorted(answers)} answered within {WAIT} s")
    return answers


def test_a_flag_flipped_on_one_preloaded_worker_is_seen_by_all(server: int, seed: Node) -> None:
    port = server
    nodes = {pid: answer["node"] for pid, answer in _every_worker(port, "/node").items()}
    assert len(set(nodes.values())) == WORKERS, f"workers share a node id: {nodes}"
    assert seed.node_id not in nodes.values()
    pids = set(nodes)
    assert all(a["active"] == "0" for a in _every_worker(port, "/check?name=chat").values())

    flipped = _get(port, "/flip?name=chat")
    assert flipped["pid"] in pids
    assert flipped["synced"] is True, "wait_synced gave up on a healthy cluster"

    seen: set[int] = set()
    deadline = time.monotonic() + PROPAGATION
    while seen != pids:
        answer = _get(port, "/check?name=chat")
        assert answer["pid"] in pids, f"a worker was replaced: {answer['pid']} not in {pids}"
        if answer["active"] == "1":
            seen.add(answer["pid"])
        if time.monotonic() > deadline:
            raise AssertionError(
                f"after {PROPAGATION} s only workers {sorted(seen)} of {sorted(pids)} "
                f"see the flag flipped on worker {flipped['pid']}"
            )
    assert seed.call("active", "chat") is True
    # Every worker joined the cluster under its own id: the seed knows them all.
    deadline = time.monotonic() + WAIT
    while not set(nodes.values()) <= (known := {m["node"] for m in seed.call("members")}):
        if time.monotonic() > deadline:
            raise AssertionError(f"the seed knows {known}, the workers are {nodes}")
        time.sleep(0.1)
