"""The PostgreSQL backend across real processes: concurrent writers, a process that dies and one
started after it, a listener stopped while changes are made, the CLI and ``rollout serve``."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from rollout import Rollout
from rollout.testing import eventually
from rollout.testing.proxy import FaultProxy

from ..admin.serve_process import clean_env, get_json, rollout, serve
from .pg_fixtures import admin, pg_url, schema, with_schema  # noqa: F401  (fixtures)

WORKER = Path(__file__).with_name("pg_worker.py")
TIMEOUT_S = 60.0  # generous: only there so that a broken test fails instead of hanging


class Workers:
    """Starts worker processes and makes sure none outlives the test."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[str]] = []

    def start(self, *args: object) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, str(WORKER), *map(str, args)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._procs.append(proc)
        return proc

    @staticmethod
    def wait_for(proc: subprocess.Popen[str], expected: str = "ready") -> None:
        assert proc.stdout is not None
        readable, _, _ = select.select([proc.stdout], [], [], TIMEOUT_S)
        line = proc.stdout.readline() if readable else ""
        if line != expected + "\n":
            proc.kill()
            _, err = proc.communicate(timeout=TIMEOUT_S)
            pytest.fail(f"worker {proc.args!r} did not print {expected!r}: {line!r}\n{err}")

    @staticmethod
    def finish(proc: subprocess.Popen[str]) -> str:
        """Wait for a worker to exit successfully; return what it printed."""
        try:
            out, err = proc.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=TIMEOUT_S)
            pytest.fail(f"worker {proc.args!r} did not finish")
        assert proc.returncode == 0, f"worker {proc.args!r} failed:\n{err}"
        return out

    def cleanup(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.communicate(timeout=TIMEOUT_S)


@pytest.fixture
def workers() -> Iterator[Workers]:
    started = Workers()
    try:
        yield started
    finally:
        started.cleanup()


def test_concurrent_writers_in_several_processes_lose_no_edit(
    pg_url: str,  # noqa: F811
    schema: str,  # noqa: F811
    workers: Workers,
    tmp_path: Path,
) -> None:
    url = with_schema(pg_url, schema)
    go = tmp_path / "go"
    procs, users = 4, 40
    with Rollout(url) as watcher:
        assert watcher.wait_synced(10)
        writers = [workers.start("writer", url, f"p{n}", go, users) for n in range(procs)]
        for proc in writers:
            workers.wait_for(proc)
        go.touch()
        for proc in writers:
            workers.finish(proc)
        expected = {f"p{n}-{i}" for n in range(procs) for i in range(users)}
        eventually(lambda: set(watcher.get("f").users) == expected, what="every edit, live")
    with Rollout(url) as fresh:
        assert set(fresh.get("f").users) == expected


def test_a_process_started_after_another_died_gets_its_writes(
    pg_url: str,  # noqa: F811
    schema: str,  # noqa: F811
    workers: Workers,
) -> None:
    url = with_schema(pg_url, schema)
    with Rollout(url) as watcher:
        assert watcher.wait_synced(10)
        workers.finish(workers.start("write-and-exit", url))
        eventually(lambda: watcher.get("beta").percentage == 25, what="the child's last write")
        ready, printed = workers.finish(workers.start("export", url)).split("\n", 1)
        assert ready == "ready"
        flags = json.loads(printed)
        assert flags == json.loads(watcher.export())["flags"]
        assert "from-the-child" in watcher.get("chat").users
        assert watcher.get("chat").data == {"owner": "child"}


def test_a_stopped_listener_gets_every_change_when_it_resumes(
    pg_url: str,  # noqa: F811
    schema: str,  # noqa: F811
    workers: Workers,
) -> None:
    url = with_schema(pg_url, schema)
    count = 30
    listener = workers.start("watch", url, count)
    workers.wait_for(listener)
    listener.send_signal(signal.SIGSTOP)
    try:
        with Rollout(url) as writer:
            for i in range(count):
                writer.activate_user("w", f"u-{i}")
    finally:
        listener.send_signal(signal.SIGCONT)
    workers.wait_for(listener, "seen")
    workers.finish(listener)


def test_the_cli_reads_and_writes_a_postgresql_store(
    pg_url: str,  # noqa: F811
    schema: str,  # noqa: F811
    admin: psycopg.Connection[Any],  # noqa: F811
    tmp_path: Path,
) -> None:
    url = with_schema(pg_url, schema)
    typo = with_schema(pg_url, schema + "_typo")
    listed = rollout("--store", typo, "list", cwd=tmp_path)
    assert listed.returncode != 0
    assert f"no rollout schema '{schema}_typo'" in listed.stderr
    assert admin.execute(
        "SELECT count(*) FROM pg_namespace WHERE nspname = %s", [schema + "_typo"]
    ).fetchone() == (0,)
    assert rollout("--store", url, "activate-user", "chat", "42", cwd=tmp_path).returncode == 0
    assert rollout("--store", url, "check", "chat", "--user", "42", cwd=tmp_path).returncode == 0
    assert rollout("--store", url, "check", "chat", "--user", "7", cwd=tmp_path).returncode == 1
    with Rollout(url) as flags:
        assert flags.get("chat").users == {"42"}


def test_serve_on_a_postgresql_store_sees_other_processes_changes_at_once(
    pg_url: str,  # noqa: F811
    schema: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    url = with_schema(pg_url, schema)
    host_port = url.split("@", 1)[1].split("/", 1)[0]
    proxy = FaultProxy(host_port).start()  # serve reaches PostgreSQL through it
    try:
        served_url = url.replace(host_port, proxy.address, 1) + "&connect_timeout=2"
        with (
            serve(
                "--http", "127.0.0.1:0", "--store", served_url, cwd=tmp_path, env=clean_env()
            ) as served,
            served.client() as http,
            Rollout(url) as other,
        ):
            assert other.wait_synced(10)
            other.activate("chat")
            eventually(lambda: get_json(http, "/api/v1/flags/chat/check")["active"] is True)
            eventually(lambda: http.get("/readyz").status_code == 200, what="ready")

            proxy.cut()
            body = eventually(lambda: _not_ready(http), timeout=30, what="not ready")
            assert body is not None
            assert "not listening on PostgreSQL" in body["checks"]["transport"]["problem"]
            assert get_json(http, "/api/v1/flags/chat/check")["active"] is True  # from memory

            proxy.heal()
            eventually(lambda: http.get("/readyz").status_code == 200, timeout=30, what="ready")
            other.deactivate("chat")  # made while serve was away from the database or not
            eventually(lambda: get_json(http, "/api/v1/flags/chat/check")["active"] is False)
    finally:
        proxy.close()
    assert served.returncode == 0, served.stderr()
    assert "Traceback" not in served.stderr()


def _not_ready(http: Any) -> dict[str, Any] | None:
    response = http.get("/readyz")
    body: dict[str, Any] = response.json()
    transport = body["checks"]["transport"]
    return body if response.status_code == 503 and not transport["ok"] else None
