"""The SQLite store with real processes sharing one real file (beyond the conformance suite).

Separate processes run ``sqlite_worker.py`` (next to this file) with this interpreter.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollout import Rollout, SQLiteStore, StoreError, StoreUnavailableError
from rollout.testing import eventually

WORKER = Path(__file__).with_name("sqlite_worker.py")
TIMEOUT_S = 60.0  # generous: only there so that a broken test fails instead of hanging


def _url(path: Path) -> str:
    # An absolute path gives four slashes: sqlite:////tmp/.../flags.db
    return f"sqlite:///{path}"


@contextlib.contextmanager
def _raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection (autocommit), closed afterwards."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        yield connection
    finally:
        connection.close()


@contextlib.contextmanager
def _fresh(path: Path) -> Iterator[Rollout]:
    """A new Rollout on the file, as a process starting now would open it."""
    flags = Rollout(_url(path))
    try:
        yield flags
    finally:
        flags.close()


def _integrity(path: Path) -> str:
    with _raw(path) as connection:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])


class Workers:
    """Starts worker processes and makes sure none outlives the test."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[str]] = []

    def start(self, *args: object, stdin: int = subprocess.DEVNULL) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, str(WORKER), *map(str, args)],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._procs.append(proc)
        return proc

    @staticmethod
    def wait_ready(proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        readable, _, _ = select.select([proc.stdout], [], [], TIMEOUT_S)
        line = proc.stdout.readline() if readable else ""
        if line != "ready\n":
            proc.kill()
            _, err = proc.communicate(timeout=TIMEOUT_S)
            pytest.fail(f"worker {proc.args!r} did not get ready: {line!r}\n{err}")

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
                proc.kill()
            proc.communicate(timeout=TIMEOUT_S)


@pytest.fixture
def workers() -> Iterator[Workers]:
    started = Workers()
    try:
        yield started
    finally:
        started.cleanup()


# 1. Concurrent writers never lose a write -------------------------------------------------------


def test_concurrent_writers_in_separate_processes_never_lose_a_write(
    tmp_path: Path, workers: Workers
) -> None:
    path = tmp_path / "flags.db"
    go = tmp_path / "go"
    procs, users, data_keys = 4, 200, 5
    # The file does not exist yet: the four processes also create it concurrently.
    running = [workers.start("writer", path, p, go, users, data_keys) for p in range(procs)]
    for proc in running:
        workers.wait_ready(proc)
    go.touch()  # all four start writing together
    for proc in running:
        workers.finish(proc)

    with _fresh(path) as flags:
        feature = flags.get("f")
        assert feature.users == {f"{p}-{i}" for p in range(procs) for i in range(users)}
        assert len(feature.users) == procs * users
        assert set(feature.data) == {f"{p}-{k}" for p in range(procs) for k in range(data_keys)}
        assert flags.features() == ["f"]
    assert _integrity(path) == "ok"


# 2. A write returns after it is committed -------------------------------------------------------


def test_a_write_is_committed_when_the_call_returns(tmp_path: Path, workers: Workers) -> None:
    path = tmp_path / "flags.db"
    workers.finish(workers.start("write-and-exit", path))  # os._exit(0): nothing closed

    with _fresh(path) as flags:
        assert flags.get("durable").to_dict() == {
            "name": "durable",
            "percentage": 30.0,
            "percentage_of_time": 0.0,
            "users": ["last-write"],
            "excluded_users": [],
            "groups": [],
            "data": {"owner": "child"},
        }


# 3. Reopening restores every flag exactly -------------------------------------------------------


def _write_every_kind_of_flag(flags: Rollout) -> None:
    flags.activate_percentage("full", 12.5)
    flags.activate_percentage_of_time("full", 33.333)
    flags.activate_users("full", [1, "two", "ünï ✓", 4])
    flags.deactivate_user("full", 4)  # a user register that says false
    flags.exclude_user("full", "bad")
    flags.exclude_user("full", "forgiven")
    flags.include_user("full", "forgiven")
    flags.activate_group("full", "beta")
    flags.activate_group("full", "all")
    flags.activate_group("full", "gone")
    flags.deactivate_group("full", "gone")
    flags.set_feature_data("full", {"owner": "web", "nested": {"a": [1, 2.5, None, True]}})
    flags.set_feature_data("full", {"description": "every kind of register ✓"})

    flags.activate_users("deleted", ["x", "y"])
    flags.set_feature_data("deleted", {"owner": "nobody"})
    flags.delete("deleted")

    flags.activate_percentage("off", 50)
    flags.activate_users("off", ["x"])
    flags.activate_group("off", "beta")
    flags.set_feature_data("off", {"kept": "after deactivate"})
    flags.deactivate("off")

    flags.activate("on")
    flags.set_feature_data("cleared", {"gone": 1})
    flags.clear_feature_data("cleared")
    flags.activate_user("cleared", "after-clear")


def test_reopening_the_file_restores_every_flag_exactly(tmp_path: Path) -> None:
    path = tmp_path / "flags.db"
    names = ["full", "deleted", "off", "on", "cleared", "never-written"]
    with _fresh(path) as flags:
        _write_every_kind_of_flag(flags)
        before = {name: flags.get(name).to_dict() for name in names}
        before_features = flags.features()
        before_export = flags.export()

    # The state we compare against is the one the library promises, not just "whatever it kept".
    assert before_features == ["cleared", "full", "off", "on"]
    assert before["full"]["users"] == ["1", "two", "ünï ✓"]
    assert before["full"]["excluded_users"] == ["bad"]
    assert before["full"]["groups"] == ["all", "beta"]
    assert before["off"] == {
        "name": "off",
        "percentage": 0.0,
        "percentage_of_time": 0.0,
        "users": [],
        "excluded_users": [],
        "groups": [],
        "data": {"kept": "after deactivate"},
    }
    assert before["cleared"]["data"] == {}

    # Reopened through the URL, and through a store object passed in.
    with _fresh(path) as flags:
        assert {name: flags.get(name).to_dict() for name in names} == before
        assert flags.features() == before_features
        assert flags.export() == before_export
    store = SQLiteStore(path)
    try:
        with Rollout(store) as flags:
            assert {name: flags.get(name).to_dict() for name in names} == before
            assert flags.features() == before_features
            assert flags.export() == before_export
    finally:
        store.close()


# 4. A process that starts while another writes sees a consistent state --------------------------


def test_a_process_starting_during_writes_sees_a_consistent_snapshot(
    tmp_path: Path, workers: Workers
) -> None:
    path = tmp_path / "flags.db"
    stop = tmp_path / "stop"
    writer = workers.start("pair", path, stop)
    workers.wait_ready(writer)  # "pair" exists from here on

    seen: list[int] = []
    try:
        # At least 50 opens, and on until the writer has been seen to write in between (a
        # starved writer process is waited for, up to a deadline, not taken as a failure).
        deadline = time.monotonic() + 60
        while len(seen) < 50 or (len(set(seen)) < 2 and time.monotonic() < deadline):
            with _fresh(path) as flags:
                users = flags.get("pair").users
                names = flags.features()
            assert names == ["pair"]
            numbers = {user[1:] for user in users}
            assert len(users) == 2, f"a torn snapshot: {sorted(users)}"
            assert len(numbers) == 1, f"a torn snapshot: {sorted(users)}"
            (n,) = numbers
            assert users == {f"a{n}", f"b{n}"}
            seen.append(int(n))
            time.sleep(0.04)  # spread the 50 opens over about two seconds of writes
    finally:
        stop.touch()
    last = int(workers.finish(writer))

    assert seen == sorted(seen), "a later process saw an older state"
    assert len(set(seen)) > 1, "the writer never wrote while we read: the test proved nothing"
    assert seen[-1] <= last
    with _fresh(path) as flags:
        assert flags.get("pair").users == {f"a{last}", f"b{last}"}


# 5. Errors name the path ------------------------------------------------------------------------


def _open_by_url(path: Path) -> None:
    Rollout(_url(path)).close()


def _open_store(path: Path) -> None:
    SQLiteStore(path).close()


OPENERS = [pytest.param(_open_by_url, id="url"), pytest.param(_open_store, id="store")]


@pytest.mark.parametrize("open_", OPENERS)
def test_a_file_that_is_not_a_database_raises_store_error_naming_the_path(
    tmp_path: Path, open_: object
) -> None:
    path = tmp_path / "garbage.db"
    garbage = (b"\x00not a database" * 300)[:4096]
    path.write_bytes(garbage)
    assert callable(open_)
    with pytest.raises(StoreError) as caught:
        open_(path)
    assert str(path) in str(caught.value)
    assert isinstance(caught.value.__cause__, sqlite3.Error)
    assert path.read_bytes() == garbage, "a failed open must not touch the user's file"


@pytest.mark.parametrize("open_", OPENERS)
def test_a_directory_raises_store_error_naming_the_path(tmp_path: Path, open_: object) -> None:
    path = tmp_path / "a-directory"
    path.mkdir()
    assert callable(open_)
    with pytest.raises(StoreError) as caught:
        open_(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("open_", OPENERS)
def test_a_missing_directory_raises_store_error_naming_the_path(
    tmp_path: Path, open_: object
) -> None:
    path = tmp_path / "missing" / "flags.db"
    assert callable(open_)
    with pytest.raises(StoreError) as caught:
        open_(path)
    assert str(path) in str(caught.value)
    assert not path.parent.exists()


@pytest.mark.parametrize("open_", OPENERS)
def test_a_schema_version_from_the_future_raises_store_error(tmp_path: Path, open_: object) -> None:
    path = tmp_path / "flags.db"
    with _fresh(path) as flags:
        flags.activate("x")
    with _raw(path) as connection:
        changed = connection.execute(
            "UPDATE meta SET value = '99' WHERE name = 'schema_version'"
        ).rowcount
        assert changed == 1
    assert callable(open_)
    with pytest.raises(StoreError) as caught:
        open_(path)
    message = str(caught.value)
    assert "99" in message
    assert "version" in message
    assert str(path) in message
    with _raw(path) as connection:
        row = connection.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
        assert row == ("99",), "a failed open must not rewrite the version"


def _open_descriptors(path: Path) -> list[str]:
    """Files this process has open whose path starts with ``path`` (the database, -wal, -shm)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith(str(path.resolve())):
                found.append(target)
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd (Linux)")
@pytest.mark.parametrize("case", ["garbage", "future-version"])
def test_a_failed_open_leaves_no_connection_open(tmp_path: Path, case: str) -> None:
    # A leaked sqlite3 connection keeps the file open for as long as the error is referenced,
    # and is a ResourceWarning ("unclosed database") on Python 3.13+.
    path = tmp_path / "flags.db"
    if case == "garbage":
        path.write_bytes((b"\x00not a database" * 300)[:4096])
    else:
        with _fresh(path):
            pass
        with _raw(path) as connection:
            connection.execute("UPDATE meta SET value = '99' WHERE name = 'schema_version'")
    with pytest.raises(StoreError) as caught:
        SQLiteStore(path)
    assert _open_descriptors(path) == [], f"still open after {caught.value!r}"


# 6. WAL mode ------------------------------------------------------------------------------------


def test_the_file_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "flags.db"
    with _fresh(path) as flags:
        flags.activate("f")
        with _raw(path) as connection:
            assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    with _raw(path) as connection:  # WAL is a property of the file: it stays after close
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


# 7. The watermark prunes ------------------------------------------------------------------------


def test_activate_deactivate_cycles_do_not_grow_the_file(tmp_path: Path) -> None:
    path = tmp_path / "flags.db"
    with _fresh(path) as flags:
        for i in range(1000):
            flags.activate_user("f", i)
            flags.deactivate("f")
        flags.activate_user("other", "kept")
    history = "substr(key, 1, 8) = 'history:'"
    with _raw(path) as connection:
        (rows,) = connection.execute(
            f"SELECT count(*) FROM registers WHERE flag = 'f' AND NOT {history}"
        ).fetchone()
        (events,) = connection.execute(
            f"SELECT count(*) FROM registers WHERE flag = 'f' AND {history}"
        ).fetchone()
        (other,) = connection.execute(
            f"SELECT count(*) FROM registers WHERE flag = 'other' AND NOT {history}"
        ).fetchone()
    assert rows <= 5, f"{rows} registers kept for a flag that was reset 1000 times"
    assert events == 100, "the history keeps the newest 100 events of 2,000"
    assert other == 2  # exists + user:kept: pruning is per flag
    with _fresh(path) as flags:
        assert flags.features() == ["f", "other"]
        assert flags.get("f").users == frozenset()
        assert flags.get("other").users == {"kept"}


# 8. Fork safety ---------------------------------------------------------------------------------


def _wait_pid(pid: int) -> int:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the forked child did not exit")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_and_its_parent_both_write(tmp_path: Path) -> None:
    path = tmp_path / "flags.db"
    with _fresh(path) as flags:
        flags.activate_user("f", "before-fork")
        pid = os.fork()
        if pid == 0:  # the child: never return into pytest
            code = 1
            try:
                flags.activate_user("f", "child")
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        flags.activate_user("f", "parent-during")
        assert _wait_pid(pid) == 0
        flags.activate_user("f", "parent-after")  # the child did not break our connection

    with _fresh(path) as flags:
        assert flags.get("f").users == {"before-fork", "child", "parent-during", "parent-after"}
    assert _integrity(path) == "ok"


# 9. A locked database ---------------------------------------------------------------------------


@pytest.mark.slow
def test_a_write_to_a_locked_database_raises_unavailable_and_changes_nothing(
    tmp_path: Path, workers: Workers
) -> None:
    path = tmp_path / "flags.db"
    with _fresh(path) as flags:
        flags.activate_user("f", "before")
        flags.set_feature_data("f", {"owner": "web"})
        before = flags.get("f")
        before_export = flags.export()

        holder = workers.start("lock", path, stdin=subprocess.PIPE)
        workers.wait_ready(holder)  # another process holds BEGIN EXCLUSIVE from here on
        try:
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError) as caught:
                flags.activate_user("f", "blocked")
            assert time.monotonic() - started < TIMEOUT_S  # waits, but does not hang
            assert str(path) in str(caught.value)

            # The failed write applied nothing, here or in the file.
            assert flags.get("f") == before
            assert flags.get("f").to_dict() == before.to_dict()
            assert flags.export() == before_export
            assert not flags.active("f", "blocked")

            # WAL: a writer holding the lock does not keep a starting process from reading.
            with _fresh(path) as starting:
                assert starting.get("f") == before
        finally:
            workers.finish(holder)  # closes its stdin: it rolls back and exits

        flags.activate_user("f", "after")  # the same call succeeds once the lock is gone

    with _fresh(path) as flags:
        assert flags.get("f").users == {"before", "after"}
        assert flags.get("f").data == {"owner": "web"}


_OPEN_AT_ONCE = """
import os, sys, time
path, go = sys.argv[1], sys.argv[2]
open(f"{go}.{os.getpid()}", "w").close()  # at the starting line
while not os.path.exists(go):
    time.sleep(0.0005)
from rollout import Rollout
with Rollout("sqlite:///" + path) as flags:
    flags.activate_user("opened", os.getpid())
"""


def test_processes_opening_a_new_file_at_the_same_instant_all_succeed(tmp_path: Path) -> None:
    # They race to switch the new file to WAL and create the schema; SQLite answers
    # "database is locked" at once to some of them, which the store must retry, not raise.
    for trial in range(5):
        path, go = tmp_path / f"new-{trial}.db", tmp_path / f"go-{trial}"
        openers = [
            subprocess.Popen(
                [sys.executable, "-c", _OPEN_AT_ONCE, str(path), str(go)],
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(6)
        ]
        eventually(
            lambda: len(list(tmp_path.glob(f"{go.name}.*"))) == len(openers),  # noqa: B023  (used at once)
            what="every process at the starting line",
        )
        go.touch()
        for opener in openers:
            _, stderr = opener.communicate(timeout=60)
            assert opener.returncode == 0, stderr
        with Rollout(f"sqlite:///{path}") as flags:
            assert len(flags.get("opened").users) == 6
