"""The quarantine survives a restart: it is kept by the store (a real SQLite file, the real
Redis), so a register held or judged before a restart is still refused after it, however late it
is offered again, and this node's own held registers are not lost.
(Each store's own rules: rollout.testing.StoreConformance.)"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from rollout import Rollout, Store
from rollout._core.clock import Timestamp
from rollout._core.keys import EXISTS, USER
from rollout._core.state import Delta, Register
from rollout.errors import StoreError
from rollout.memory import MemoryStore
from rollout.redis import RedisStore
from rollout.sqlite import SQLiteStore
from rollout.testing import FakeClock

from ..redis.redis_fixtures import redis_url  # noqa: F401  (fixture)

HOUR = 3_600_000
START = 1_700_000_000_000

OpenStore = Callable[[], Store]


@pytest.fixture(params=["sqlite", "redis"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStore]:
    """Opens a new handle on one store each call (as a restarted process would), all closed at
    the end: a Rollout leaves a store passed to it open."""
    opened: list[Store] = []
    namespace = f"rollout-test-{secrets.token_hex(6)}"
    if request.param == "sqlite":

        def make() -> Store:
            return SQLiteStore(tmp_path / "flags.db")
    else:
        url = request.getfixturevalue("redis_url")

        def make() -> Store:
            return RedisStore(redis.Redis.from_url(url), namespace=namespace)

    def opening() -> Store:
        store = make()
        opened.append(store)
        return store

    try:
        yield opening
    finally:
        for store in opened:
            store.close()
        if request.param == "redis":
            cleaner = redis.Redis.from_url(request.getfixturevalue("redis_url"))
            keys = list(cleaner.scan_iter(match=f"{namespace}:*"))
            if keys:
                cleaner.delete(*keys)
            cleaner.close()


def _bomb() -> bytes:
    """An export from a node whose clock runs an hour ahead: chat on for user 42."""
    with Rollout(clock=FakeClock(START + HOUR)) as ahead:
        ahead.activate_user("chat", 42)
        return ahead.export()


def test_a_held_register_is_still_held_and_refused_after_a_restart(open_store: OpenStore) -> None:
    bomb = _bomb()
    with Rollout(open_store(), clock=FakeClock(START)) as before:
        assert before.merge(bomb) == set()
        assert [e.key for e in before.quarantined("chat")] == [EXISTS, USER + "42"]

    # Restarted once real time has passed the bomb's stamp: it is no longer ahead, and would
    # win over the writes made in between if the quarantine had been forgotten.
    clock = FakeClock(START + HOUR + 60_000)
    with Rollout(open_store(), clock=clock) as after:
        held = after.quarantined("chat")
        assert [(e.key, e.value, e.origin, e.quarantined_at_ms) for e in held] == [
            (EXISTS, True, "merge", START),
            (USER + "42", True, "merge", START),
        ]
        after.activate("chat")  # a write made in between (user 42 stays held)
        assert after.merge(bomb) == set()
        assert after.user_in_active_users("chat", 42) is False
        assert after.stats()["registers_rejected"] >= 2


def test_a_resolved_register_stays_refused_after_a_restart(open_store: OpenStore) -> None:
    bomb = _bomb()
    with Rollout(open_store(), clock=FakeClock(START)) as before:
        before.merge(bomb)
        assert before.drop_quarantined("chat") == 2
        assert before.quarantined() == []

    with Rollout(open_store(), clock=FakeClock(START + 2 * HOUR)) as after:
        assert after.merge(bomb) == set()  # judged before the restart: refused, not held
        assert after.exists("chat") is False
        assert after.quarantined() == []


def test_an_accepted_register_is_not_taken_again_after_a_restart(open_store: OpenStore) -> None:
    bomb = _bomb()
    with Rollout(open_store(), clock=FakeClock(START)) as before:
        before.merge(bomb)
        before.accept_quarantined("chat")  # written again, stamped START

    with Rollout(open_store(), clock=FakeClock(START + 2 * HOUR)) as after:
        after.merge(bomb)  # no longer ahead, but judged: the accepted write stays the winner
        registers = json.loads(after.export())["flags"]["chat"]
        assert registers[USER + "42"][0] == START
        assert after.quarantined() == []


def test_own_registers_moved_out_after_a_step_back_survive_a_restart(
    open_store: OpenStore,
) -> None:
    clock = FakeClock(START + HOUR)
    with Rollout(open_store(), clock=clock) as flags:
        flags.activate_user("chat", 7)
        clock.set(START)  # the wall clock steps back an hour
        flags.activate("other")
        assert {e.origin for e in flags.quarantined("chat")} == {"own clock"}

    with Rollout(open_store(), clock=FakeClock(START + 1_000)) as restarted:
        held = restarted.quarantined("chat")
        assert [(e.key, e.origin) for e in held] == [
            (EXISTS, "own clock"),
            (USER + "7", "own clock"),
        ]
        assert restarted.user_in_active_users("chat", 7) is False
        assert restarted.accept_quarantined("chat", USER + "7") == 1
        assert restarted.user_in_active_users("chat", 7)


def test_two_processes_on_one_store_share_what_was_judged(open_store: OpenStore) -> None:
    bomb = _bomb()
    with Rollout(open_store(), clock=FakeClock(START)) as first:
        first.merge(bomb)
        first.drop_quarantined("chat")
    # Another process on the same store starts later, once the bomb is no longer ahead.
    with Rollout(open_store(), clock=FakeClock(START + 2 * HOUR)) as second:
        assert second.merge(bomb) == set()
        assert second.exists("chat") is False


def test_a_sqlite_file_from_before_the_quarantine_gets_its_tables(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE registers (flag TEXT NOT NULL, key TEXT NOT NULL, wall INTEGER NOT NULL,
            counter INTEGER NOT NULL, node INTEGER NOT NULL, value TEXT NOT NULL,
            PRIMARY KEY (flag, key)) WITHOUT ROWID;
        CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');
        """
    )
    old.execute("INSERT INTO registers VALUES ('chat', 'exists', ?, 0, 9, 'true')", (START,))
    old.commit()
    old.close()

    store = SQLiteStore(path)
    try:
        with Rollout(store, clock=FakeClock(START + 1_000)) as flags:
            assert flags.exists("chat")
            flags.merge(_bomb())
            assert len(flags.quarantined("chat")) == 2
    finally:
        store.close()
    check = sqlite3.connect(path)
    try:
        # Additive: the version stays, so a library from before still opens the file.
        assert check.execute("SELECT value FROM meta").fetchone() == ("1",)
        held = {key for (key,) in check.execute("SELECT key FROM quarantine_held")}
        assert {EXISTS, USER + "42"} <= held  # and the write's history event
    finally:
        check.close()


def test_a_newer_sqlite_schema_is_refused(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "flags.db").close()
    with sqlite3.connect(tmp_path / "flags.db") as connection:
        connection.execute("UPDATE meta SET value = '2' WHERE name = 'schema_version'")
    connection.close()
    with pytest.raises(StoreError, match="schema version 2"):
        SQLiteStore(tmp_path / "flags.db")


class _OlderStore(Store):
    """A third-party store written before the quarantine methods existed."""

    def __init__(self) -> None:
        self.inner = MemoryStore()

    def load(self) -> Delta:
        return self.inner.load()

    def save(self, delta: Delta) -> None:
        self.inner.save(delta)

    def discard(self, delta: Delta) -> None:
        self.inner.discard(delta)


def test_a_store_without_the_quarantine_methods_keeps_it_in_memory_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = _OlderStore()
    with caplog.at_level(logging.WARNING, logger="rollout"):
        with Rollout(store, clock=FakeClock(START)) as flags:
            flags.merge(_bomb())
            assert len(flags.quarantined("chat")) == 2
            flags.drop_quarantined("chat", USER + "42")
        with Rollout(store, clock=FakeClock(START)) as again:  # the same object: same memory
            assert [e.key for e in again.quarantined()] == [EXISTS]
    warnings = [r.message for r in caplog.records if "does not implement quarantine" in r.message]
    assert len(warnings) == 1
    assert [(flag, key) for flag, key, _ in store.quarantined().judged] == [("chat", USER + "42")]


def test_the_store_bounds_what_is_held_across_restarts(tmp_path: Path) -> None:
    def opened() -> SQLiteStore:
        store = SQLiteStore(tmp_path / "flags.db")
        store.quarantine_limit = 3
        return store

    ahead: Delta = {
        "f": {f"{USER}{i}": Register(Timestamp(START + HOUR, 0, 9), True) for i in range(5)}
    }
    first = opened()
    with Rollout(first, clock=FakeClock(START)) as flags:
        flags._pipeline.merge(ahead, save=False)
        assert len(flags.quarantined()) == 3
        assert flags.stats()["quarantine_overflow"] == 2
    first.close()
    second = opened()
    with Rollout(second, clock=FakeClock(START)) as flags:
        assert len(flags.quarantined()) == 3
        assert flags._pipeline.merge(ahead, save=False) == set()
        assert len(flags.quarantined()) == 3
    second.close()


def test_refresh_reads_what_another_process_on_the_store_held_or_resolved(
    open_store: OpenStore,
) -> None:
    bomb = _bomb()
    clock = FakeClock(START)
    with Rollout(open_store(), clock=clock) as running, Rollout(open_store(), clock=clock) as other:
        other.merge(bomb)
        assert running.quarantined() == []
        running.refresh()
        assert [e.key for e in running.quarantined("chat")] == [EXISTS, USER + "42"]

        other.drop_quarantined("chat")
        running.refresh()
        assert running.quarantined() == []
        clock.advance(2 * HOUR)  # no longer ahead: only the verdict keeps it out
        running.merge(bomb)
        assert running.exists("chat") is False
