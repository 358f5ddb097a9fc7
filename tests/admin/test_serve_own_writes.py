"""``rollout serve`` on an SQLite file reads the file again only for other processes' writes:
its own writes (through the API) never make it reload a 100,000-user flag."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rollout import Rollout
from rollout.testing import eventually

from .serve_process import clean_env, get_json, rollout, serve

pytestmark = pytest.mark.slow

USERS = 100_000
WRITES = 20
TOKEN = "own-writes-token-0123456789abcdef"


def _reloads(metrics: str) -> float:
    for family in text_string_to_metric_families(metrics):
        if family.name == "rollout_store_reloads":
            return family.samples[0].value
    raise AssertionError("no rollout_store_reloads_total in /metrics")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_own_writes_next_to_a_big_flag_do_not_reload_the_store_but_others_writes_do(
    tmp_path: Path,
) -> None:
    store = f"sqlite:///{tmp_path / 'rollout.db'}"
    with Rollout(store) as seed:
        seed.activate_users("big", range(USERS))
    env = clean_env(ROLLOUT_TOKEN=TOKEN)
    with serve(
        "--store", store, "--http", "127.0.0.1:0", "--no-access-log", cwd=tmp_path, env=env,
        token=TOKEN,
    ) as s, s.client() as http:  # fmt: skip
        before = _cpu_seconds(s.process.pid)
        for n in range(WRITES):
            response = http.post("/api/v1/flags/small/users", json={"users": [str(n)]})
            assert response.status_code == 200, response.text
        # Give the file watcher (every 0.25 s) time to look at least twice.
        time.sleep(1.0)
        used = _cpu_seconds(s.process.pid) - before
        print(f"{WRITES} one-user writes next to a {USERS:,}-user flag: {used:.2f} s of CPU")
        assert _reloads(http.get("/metrics").text) == 0

        # Another process's write is still seen, with one reload.
        done = rollout("activate", "from-cli", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        eventually(
            lambda: get_json(http, "/api/v1/flags/from-cli/check")["active"] is True,
            timeout=30,
            what="the CLI's write reaching serve",
        )
        assert _reloads(http.get("/metrics").text) == 1
        assert get_json(http, f"/api/v1/flags/big/check?user={USERS - 1}")["active"] is True
