"""The PostgreSQL store with many registers at once: a load grouped by flag, timestamp and value,
a big save copied in and merged by two statements, and its change written as groups. Each test
in a schema of its own."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from rollout import Rollout
from rollout._core.clock import Timestamp
from rollout._core.keys import DATA_RESET, EXISTS, RESET
from rollout._core.state import Delta, Register
from rollout.errors import StoreError
from rollout.postgres import PostgresStore
from rollout.postgres._bulk import BULK_ROWS
from rollout.testing import eventually

from .pg_fixtures import admin, pg_url, schema, store, with_schema  # noqa: F401  (fixtures)

# Ids a key-by-key path and a grouped one could read differently: a newline (the separator of
# a grouped load), a tab and a backslash (COPY's escapes), quotes, non-ASCII, a colon.
AWKWARD = ["line\nbreak", "tab\tand\\slash", 'quo"te', "naïve ✓", "a:b", "\n", "exists"]


def _users(count: int) -> list[str]:
    return [*AWKWARD, *(f"u{i}" for i in range(count - len(AWKWARD)))]


def _big(flag: str, count: int, ts: Timestamp, value: bool = True) -> Delta:
    shared = Register(ts, value)
    return {flag: {EXISTS: shared, **{f"user:{user}": shared for user in _users(count)}}}


def test_a_big_flag_loads_whole_with_awkward_ids(
    pg_url: str,  # noqa: F811
    schema: str,  # noqa: F811
) -> None:
    url = with_schema(pg_url, schema)
    users = _users(3 * BULK_ROWS)
    with Rollout(url) as writer:
        writer.activate_users("big", users[: 2 * BULK_ROWS])  # a grouped save
        writer.activate_users("big", users[2 * BULK_ROWS :])  # and a second group
        writer.deactivate_user("big", "naïve ✓")  # a register alone, false
        writer.set_feature_data("big", {"owner": "web", "line": "a\nb\\c"})
        expected = writer.export()
    with Rollout(url) as reopened:
        assert reopened.export() == expected
        assert set(reopened.get("big").users) == set(users) - {"naïve ✓"}
        assert reopened.active("big", "line\nbreak")
        assert not reopened.active("big", "line")


@pytest.mark.parametrize(
    "damage",
    [
        ("user:", "true", "'user:'"),  # no member
        ("bogus:7", "true", "'bogus:7'"),  # no such register
        ("exists\nuser:8", "true", "exists"),  # a key that is two lines of good ones
        ("user:9", "maybe", "'user:9'"),  # not JSON
    ],
)
def test_a_damaged_row_among_many_is_refused_naming_it(
    schema: str,  # noqa: F811
    store: PostgresStore,  # noqa: F811
    admin: psycopg.Connection[Any],  # noqa: F811
    damage: tuple[str, str, str],
) -> None:
    key, value, named = damage
    ts = Timestamp(1_700_000_000_000, 0, 7)
    store.save(_big("big", 2 * BULK_ROWS, ts))
    admin.execute(
        f"INSERT INTO {schema}.registers VALUES ('big', %s, %s, %s, %s, %s)",
        [key, *ts, value],  # in the same group as the good ones when its value is true
    )
    with pytest.raises(StoreError, match="damaged register") as caught:
        store.load()
    assert named in str(caught.value)


def test_a_big_save_keeps_the_newer_register_of_each_key(store: PostgresStore) -> None:  # noqa: F811
    old, mid, new = Timestamp(100, 0, 1), Timestamp(200, 0, 1), Timestamp(300, 0, 1)
    store.save({"big": {"user:older": Register(old, True), "user:newer": Register(new, True)}})
    store.save({"big": {"data:tie": Register(mid, "b")}})
    incoming = _big("big", 2 * BULK_ROWS, mid, value=False)
    incoming["big"]["user:older"] = Register(mid, False)
    incoming["big"]["user:newer"] = Register(mid, False)
    incoming["big"]["data:tie"] = Register(mid, "c")  # one timestamp: the larger value wins
    incoming["small"] = {"data:tie": Register(mid, "a"), "data:odd": Register(mid, "\t\n\\.")}
    store.save(incoming)
    loaded = store.load()
    assert loaded["big"]["user:older"] == Register(mid, False)
    assert loaded["big"]["user:newer"] == Register(new, True)
    assert loaded["big"]["data:tie"] == Register(mid, "c")
    assert loaded["big"]["user:line\nbreak"] == Register(mid, False)
    assert loaded["small"]["data:odd"] == Register(mid, "\t\n\\.")  # COPY's escapes
    assert len(loaded["big"]) == 2 * BULK_ROWS + 4  # the users, exists and three more
    store.save({"big": {"data:tie": Register(mid, "a")}})  # loses the tie: no change
    assert store.load()["big"]["data:tie"] == Register(mid, "c")


def test_a_big_save_of_a_new_flag_keeps_what_a_writer_it_waited_for_stored(
    pg_url: str,  # noqa: F811
    schema: str,  # noqa: F811
    store: PostgresStore,  # noqa: F811
    admin: psycopg.Connection[Any],  # noqa: F811
) -> None:
    """A flag with nothing stored is copied straight into the registers: right only if what is
    stored is looked at once the save holds the version row, after the writer before it."""
    older, newer = Timestamp(100, 0, 1), Timestamp(200, 0, 1)
    store.version()  # the schema exists
    admin.execute("BEGIN")  # a writer holding the version row (as a save does)
    admin.execute(f"SELECT value FROM {schema}.meta WHERE name = 'version' FOR UPDATE")
    admin.execute(
        f"INSERT INTO {schema}.registers VALUES ('big', 'user:u9', %s, %s, %s, 'false')",
        [*newer],
    )
    with ThreadPoolExecutor(1) as pool, psycopg.connect(pg_url, autocommit=True) as watcher:
        saving = pool.submit(store.save, _big("big", 2 * BULK_ROWS, older))
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))"
        eventually(
            lambda: watcher.execute(waiting, [admin.info.backend_pid]).fetchone() == (1,),
            what="the save waiting for the version row",
        )
        admin.execute("COMMIT")
        saving.result(timeout=60)
    loaded = store.load()["big"]
    assert loaded["user:u9"] == Register(newer, False)  # the newer register stays
    assert loaded["user:u8"] == Register(older, True)
    assert len(loaded) == 2 * BULK_ROWS + 1  # the users and exists


def test_a_big_save_whose_watermarks_share_the_users_register_stores_them_as_such(
    store: PostgresStore,  # noqa: F811
) -> None:
    # A watermark is stored with no value whatever its register's: one that is the very object
    # of a write's users (as a decoded export can share it) leaves their group.
    older, ts = Timestamp(100, 0, 1), Timestamp(200, 0, 1)
    store.save({"big": {"user:gone": Register(older, True), "data:gone": Register(older, "x")}})
    delta = _big("big", 2 * BULK_ROWS, ts)
    shared = delta["big"][EXISTS]
    delta["big"][RESET] = delta["big"][DATA_RESET] = shared
    store.save(delta)
    loaded = store.load()["big"]
    assert loaded[RESET].ts == loaded[DATA_RESET].ts == ts
    assert loaded["user:u9"] == loaded[EXISTS] == Register(ts, True)
    assert "user:gone" not in loaded  # older than the watermarks
    assert "data:gone" not in loaded
    assert len(loaded) == 2 * BULK_ROWS + 1 + 2


def test_a_big_save_that_changes_nothing_is_no_change(
    schema: str,  # noqa: F811
    store: PostgresStore,  # noqa: F811
    admin: psycopg.Connection[Any],  # noqa: F811
) -> None:
    """What every listener does on connecting: saves its whole replica, mostly held already."""
    delta = _big("big", 2 * BULK_ROWS, Timestamp(100, 0, 1))
    store.save(delta)
    version = store.version()
    store.save(delta)
    store.save(_big("big", 2 * BULK_ROWS, Timestamp(50, 0, 1)))  # older: loses everywhere
    assert store.version() == version
    rows = admin.execute(f"SELECT count(*) FROM {schema}.changes").fetchone()
    assert rows == (1,)


def test_a_big_change_is_announced_by_a_short_message_and_read_as_groups(
    pg_url: str,  # noqa: F811
    schema: str,  # noqa: F811
    admin: psycopg.Connection[Any],  # noqa: F811
) -> None:
    url = with_schema(pg_url, schema)
    users = _users(20_000)  # about 300 KB of keys
    with Rollout(url) as writer, Rollout(url) as reader:
        assert writer.wait_synced(10)
        assert reader.wait_synced(10)
        admin.execute(f'LISTEN "{schema}_changes"')
        before = reader.stats()["sync"]
        writer.activate_users("big", users)
        eventually(lambda: len(reader.get("big").users) == len(users), what="every user")
        assert set(reader.get("big").users) == set(users)
        messages = [n.payload for n in admin.notifies(timeout=30, stop_after=1)]  # the first
        version = writer.stats()["sync"]["version_seen"]
        assert messages == [f"{version} pid-{os.getpid()}"]
        row = admin.execute(f"SELECT delta FROM {schema}.changes WHERE version = %s", [version])
        change = str(row.fetchone()[0])  # type: ignore[index]
        groups = json.loads(change)  # [flag, wall, counter, node, value, keys] per group
        listed = [group for group in groups if group[4] == "true"]  # and a history event
        assert [(group[0], *group[1:4]) for group in groups] == [("big", *listed[0][1:4])] * 2
        assert sorted(listed[0][5]) == sorted(["exists", *(f"user:{u}" for u in users)])
        after = reader.stats()["sync"]
        assert after["by_reference"] == before["by_reference"] + 1
        assert (after["gaps"], after["reloads"]) == (before["gaps"], before["reloads"])


def test_a_merged_export_reaches_every_replica(
    pg_url: str,  # noqa: F811
    schema: str,  # noqa: F811
) -> None:
    url = with_schema(pg_url, schema)
    with Rollout() as source:
        source.activate_users("big", _users(5_000))
        source.activate_percentage("small", 25)
        source.set_feature_data("small", {"owner": "web"})
        exported = source.export()
    with Rollout(url) as importer, Rollout(url) as other:
        assert other.wait_synced(10)
        importer.merge(exported)
        eventually(lambda: other.export() == exported, what="the whole export")
    with Rollout(url) as reopened:
        assert reopened.export() == exported


def test_a_load_tells_the_version_it_was_read_at(store: PostgresStore) -> None:  # noqa: F811
    store.save(_big("big", 2 * BULK_ROWS, Timestamp(100, 0, 1)))
    delta, version = store.load_numbered()
    assert delta == store.load()
    assert version == store.version() == 1


def test_a_merge_right_after_start_is_neither_saved_back_nor_read_back_by_its_process(
    pg_url: str,  # noqa: F811
    schema: str,  # noqa: F811
) -> None:
    url = with_schema(pg_url, schema)
    with Rollout() as source:
        source.activate_users("big", _users(2 * BULK_ROWS))
        exported = source.export()
    with Rollout(url) as other:
        other.activate_user("before", "1")
        with Rollout(url) as importer:
            importer.merge(exported)  # while its listener connects, or before
            assert importer.wait_synced(10)
            other.activate_user("later", "9")
            eventually(lambda: importer.active("later", "9"))  # all before it is read
            stats = importer.stats()["sync"]
            assert (stats["reloads"], stats["gaps"]) == (0, 0)
            assert stats["by_reference"] == 1  # the later write only, not its own merge
            eventually(lambda: other.active("big", "u5"))
            assert other.export() == importer.export()


def test_the_version_seen_names_a_big_change_only_once_the_replica_holds_it(
    pg_url: str,  # noqa: F811
    schema: str,  # noqa: F811
) -> None:
    # A change read from the changes table was seen before it was merged: a process that waits
    # for the version (as the Redis transport now promises) read a replica without the change
    # for as long as merging a big one takes.
    url = with_schema(pg_url, schema)
    users = _users(100_000)
    with Rollout(url) as writer, Rollout(url) as reader:
        assert writer.wait_synced(10)
        assert reader.wait_synced(10)
        before = reader.stats()["sync"]["version_seen"]
        writer.activate_users("big", users)
        eventually(lambda: reader.stats()["sync"]["version_seen"] > before, what="the change")
        assert reader.active("big", users[-1])
