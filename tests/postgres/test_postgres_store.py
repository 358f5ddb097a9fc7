"""The PostgreSQL backend in one test process, against the machine's PostgreSQL (each test in a
schema of its own): URLs and bad input, live updates, large changes, connections the server
ends, the database going away or not answering, and a commit whose answer never comes."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from rollout import Rollout
from rollout._core.clock import Timestamp
from rollout._core.keys import EXISTS
from rollout._core.state import Register
from rollout.errors import (
    MissingExtraError,
    StoreError,
    StoreOutcomeUnknownError,
    StoreUnavailableError,
)
from rollout.postgres import PostgresStore
from rollout.stores import open_store
from rollout.testing import eventually
from rollout.testing.proxy import FaultProxy

from .pg_fixtures import admin, pg_url, schema, terminate, with_schema  # noqa: F401  (fixtures)


def _host_port(url: str) -> str:
    return url.split("://", 1)[1].split("@", 1)[-1].split("/", 1)[0].split("?", 1)[0]


@pytest.fixture
def proxy(pg_url: str) -> Iterator[FaultProxy]:  # noqa: F811
    faults = FaultProxy(_host_port(pg_url)).start()
    try:
        yield faults
    finally:
        faults.close()


def _through(url: str, proxy: FaultProxy) -> str:
    return url.replace(_host_port(url), proxy.address, 1)


def _keys(admin: psycopg.Connection[Any], schema: str, flag: str) -> set[str]:  # noqa: F811
    """The register keys of ``flag`` in the database, but its history events."""
    rows = admin.execute(f"SELECT key FROM {schema}.registers WHERE flag = %s", [flag])
    return {str(key) for (key,) in rows if not str(key).startswith("history:")}


# URLs and bad input ------------------------------------------------------------------------


def test_open_store_takes_a_postgresql_url_and_creates_the_schema(
    pg_url: str,  # noqa: F811
    schema: str,  # noqa: F811
    admin: psycopg.Connection[Any],  # noqa: F811
) -> None:
    store = open_store(with_schema(pg_url, schema))
    try:
        assert isinstance(store, PostgresStore)
        assert store.load() == {}
        assert "schema " + schema in store.url
    finally:
        store.close()
    found = admin.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", [schema])
    assert found.fetchone() == (1,)


@pytest.mark.parametrize(
    ("query", "named"),
    [("schema=Flags-Prod", "schema"), ("schema=", "schema"), ("timeout=soon", "timeout")],
)
def test_a_bad_option_is_refused_naming_it_and_nothing_is_created(
    pg_url: str,  # noqa: F811
    admin: psycopg.Connection[Any],  # noqa: F811
    query: str,
    named: str,
) -> None:
    before = admin.execute("SELECT count(*) FROM pg_namespace").fetchone()
    with pytest.raises(ValueError, match=named) as caught:
        open_store(f"{pg_url}?{query}")
    assert repr(query.split("=", 1)[1]) in str(caught.value)
    assert admin.execute("SELECT count(*) FROM pg_namespace").fetchone() == before


def test_a_server_that_refuses_connections_is_unavailable(schema: str) -> None:  # noqa: F811
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://postgres@127.0.0.1:{port}/test?schema={schema}"
    with pytest.raises(StoreUnavailableError, match=r"cannot open PostgreSQL store .*refused"):
        open_store(url)


def test_a_missing_database_is_an_error_that_says_so(pg_url: str) -> None:  # noqa: F811
    url = pg_url.rsplit("/", 1)[0] + "/rollout_no_such_database"
    with pytest.raises(StoreError, match="no such database") as caught:
        open_store(url)
    assert not isinstance(caught.value, StoreUnavailableError)  # retrying will not help


@pytest.mark.parametrize("tail", [":notaport/test", ":5432/test?bogus=1", ":5432/test?sslmode=no"])
def test_a_url_libpq_refuses_is_an_error_that_never_shows_the_password(
    pg_url: str,  # noqa: F811
    tail: str,
) -> None:
    host = _host_port(pg_url).split(":", 1)[0]
    with pytest.raises(StoreError, match="the URL has a parameter libpq refuses") as caught:
        open_store(f"postgresql://app:Sekr3t-pw@{host}{tail}")
    assert not isinstance(caught.value, StoreUnavailableError)  # retrying will not help
    told = [str(caught.value), str(caught.value.__cause__), repr(caught.value.__cause__)]
    assert not [text for text in told if "Sekr3t-pw" in text]
    assert "app:***@" in str(caught.value)


def test_a_keyword_conninfo_never_shows_its_password(
    pg_url: str,  # noqa: F811
    schema: str,  # noqa: F811
) -> None:
    host, port = _host_port(pg_url).split(":", 1)
    conninfo = f"host={host} port={port} dbname=test user=postgres password='Sekr3t pw'"
    store = PostgresStore(conninfo, schema=schema)  # trust auth: the password goes unused
    try:
        assert "Sekr3t" not in store.url
        assert "password=***" in store.url
        with Rollout(store) as flags:
            assert "Sekr3t" not in str(flags.stats())
    finally:
        store.close()


def test_reading_a_schema_that_does_not_exist_creates_nothing(
    pg_url: str,  # noqa: F811
    schema: str,  # noqa: F811
    admin: psycopg.Connection[Any],  # noqa: F811
) -> None:
    with pytest.raises(StoreError, match=f"no rollout schema '{schema}'.*nothing was created"):
        open_store(with_schema(pg_url, schema), create=False)
    found = admin.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", [schema])
    assert found.fetchone() == (0,)


def test_without_psycopg_a_postgresql_url_names_the_extra(pg_url: str) -> None:  # noqa: F811
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "from rollout.stores import open_store\n"
        "from rollout.errors import MissingExtraError\n"
        "try:\n"
        f"    open_store({pg_url!r})\n"
        "except MissingExtraError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.startswith(MissingExtraError.__name__)
    assert "pip install 'rollout[postgres]'" in result.stdout


# Live updates ------------------------------------------------------------------------------


def test_rollouts_on_one_database_see_each_others_writes(
    pg_url: str,  # noqa: F811
    schema: str,  # noqa: F811
) -> None:
    url = with_schema(pg_url, schema)
    with Rollout(url) as first, Rollout(url) as second:
        assert first.wait_synced(10)
        assert second.wait_synced(10)
        first.activate_user("chat", 42)
        second.set_feature_data("chat", {"owner": "web"})
        for flags in (first, second):
            eventually(lambda f=flags: f.active("chat", 42), what="user 42 everywhere")  # type: ignore[misc]
            eventually(lambda f=flags: f.get("chat").data == {"owner": "web"})  # type: ignore[misc]
        assert first.export() == second.export()
        sync = first.stats()["sync"]
        assert sync["transport"] == "postgres"
        assert sync["connected"] is True


def test_a_change_too_big_for_notify_arrives_by_reference(
    pg_url: str,  # noqa: F811
    schema: str,  # noqa: F811
) -> None:
    url = with_schema(pg_url, schema)
    users = [f"user-{i:05d}" for i in range(2_000)]  # about 90 KB of JSON
    with Rollout(url) as first, Rollout(url) as second:
        assert first.wait_synced(10)
        assert second.wait_synced(10)
        first.activate_users("chat", users)
        first.set_feature_data("chat", {"note": "x" * 10_000})
        eventually(lambda: second.get("chat").data == {"note": "x" * 10_000})
        assert set(second.get("chat").users) == set(users)
        assert second.stats()["sync"]["by_reference"] >= 2
        assert second.stats()["sync"]["gaps"] == 0  # read from the table, not a full reload


def test_a_writer_reads_its_own_changes_back_without_merging_them_again(
    pg_url: str,  # noqa: F811
    schema: str,  # noqa: F811
) -> None:
    url = with_schema(pg_url, schema)
    with Rollout(url) as writer, Rollout(url) as reader:
        assert writer.wait_synced(10)
        assert reader.wait_synced(10)
        for user in range(4):
            writer.activate_user("chat", user)
        writer.activate_users("chat", range(100, 2_100))  # a big save: its change is grouped
        eventually(lambda: len(reader.get("chat").users) == 2_004, what="every user")
        eventually(lambda: writer.stats()["sync"]["own_writes_skipped"] == 5)
        assert reader.stats()["sync"]["own_writes_skipped"] == 0
        reader.deactivate_user("chat", 0)  # and the other way round
        eventually(lambda: not writer.active("chat", 0), what="the reader's write at the writer")
        assert writer.stats()["sync"]["own_writes_skipped"] == 5
        assert writer.stats()["sync"]["gaps"] == 0  # each change read in turn, none missed
        assert writer.export() == reader.export()


def test_changed_elsewhere_tells_another_process_s_write_from_its_own(
    pg_url: str,  # noqa: F811
    schema: str,  # noqa: F811
) -> None:
    url = with_schema(pg_url, schema)
    mine, theirs = PostgresStore.from_url(url), PostgresStore.from_url(url)
    try:
        assert mine.changed_elsewhere()  # never loaded
        mine.load()
        assert not mine.changed_elsewhere()
        mine.save({"chat": {EXISTS: Register(Timestamp(10, 0, 1), True)}})
        assert not mine.changed_elsewhere()  # its own write: no reload needed
        theirs.save({"beta": {EXISTS: Register(Timestamp(11, 0, 2), True)}})
        assert mine.changed_elsewhere()
        assert set(mine.load()) == {"chat", "beta"}
        assert not mine.changed_elsewhere()
    finally:
        mine.close()
        theirs.close()


# Faults -------------------------------------------------------------------------------------


def test_connections_ended_by_the_server_are_replaced_and_nothing_is_missed(
    pg_url: str,  # noqa: F811
    schema: str,  # noqa: F811
    admin: psycopg.Connection[Any],  # noqa: F811
) -> None:
    url = with_schema(pg_url, schema)
    with Rollout(url) as first, Rollout(url) as second:
        assert first.wait_synced(10)
        assert second.wait_synced(10)
        first.activate_user("chat", 1)
        eventually(lambda: second.active("chat", 1))
        assert terminate(admin, schema) == 4  # each: its store's connection and its listener
        first.activate_user("chat", 2)  # no error: the store opens a new connection
        for flags in (first, second):
            eventually(lambda f=flags: f.stats()["sync"]["connected"], what="listening again")  # type: ignore[misc]
        assert terminate(admin, schema, "listen") == 2
        first.activate_user("chat", 3)  # while the listeners reconnect: caught up after
        for flags in (first, second):
            eventually(lambda f=flags: f.active("chat", 2) and f.active("chat", 3))  # type: ignore[misc]
            eventually(lambda f=flags: f.stats()["sync"]["connected"])  # type: ignore[misc]
            assert flags.stats()["sync"]["reconnects"] >= 1
        assert first.export() == second.export()


def test_a_write_while_the_database_is_away_raises_and_changes_nothing(
    pg_url: str,  # noqa: F811
    schema: str,  # noqa: F811
    admin: psycopg.Connection[Any],  # noqa: F811
    proxy: FaultProxy,
) -> None:
    url = _through(with_schema(pg_url, schema), proxy) + "&connect_timeout=2"
    with Rollout(url) as flags:
        assert flags.wait_synced(10)
        flags.activate_user("chat", 1)
        before = flags.export()
        proxy.cut()
        with pytest.raises(StoreUnavailableError, match=r"cannot write to PostgreSQL store"):
            flags.activate_user("chat", 2)
        with pytest.raises(StoreUnavailableError):
            flags.delete("chat")
        assert flags.export() == before
        assert flags.active("chat", 1)  # checks answer from memory
        assert not flags.active("chat", 2)
        assert _keys(admin, schema, "chat") == {"exists", "user:1"}
        eventually(lambda: not flags.stats()["sync"]["connected"], what="the listener notices")
        proxy.heal()
        eventually(lambda: flags.stats()["sync"]["connected"], what="listening again")
        flags.activate_user("chat", 2)
        assert "user:2" in _keys(admin, schema, "chat")


def test_a_server_that_stops_answering_times_out_and_nothing_is_written(
    pg_url: str,  # noqa: F811
    schema: str,  # noqa: F811
    admin: psycopg.Connection[Any],  # noqa: F811
    proxy: FaultProxy,
) -> None:
    url = _through(with_schema(pg_url, schema), proxy) + "&timeout=1&connect_timeout=1"
    store = PostgresStore.from_url(url)
    try:
        with Rollout(store) as flags:
            assert flags.wait_synced(10)
            flags.activate_user("chat", 1)
            proxy.blackhole()  # connections stay up, bytes vanish: only a time limit ends it
            # The write's own call times out, or (when the listener's periodic check came
            # first and timed out, closing the connection) opening a new one does.
            with pytest.raises(
                StoreUnavailableError,
                match=r"nothing was written.*(no answer within 1 s|timeout expired)",
            ):
                flags.activate_user("chat", 2)
            assert not flags.active("chat", 2)
            assert flags.active("chat", 1)
            proxy.heal()
            flags.activate_user("chat", 2)
        assert _keys(admin, schema, "chat") == {"exists", "user:1", "user:2"}
    finally:
        store.close()


def test_a_commit_whose_answer_never_comes_is_an_unknown_outcome(
    pg_url: str,  # noqa: F811
    schema: str,  # noqa: F811
    admin: psycopg.Connection[Any],  # noqa: F811
) -> None:
    store = PostgresStore.from_url(with_schema(pg_url, schema) + "&timeout=1")
    try:
        # A trigger deferred to COMMIT makes the commit itself slow: past the store's timeout.
        admin.execute(
            f"CREATE FUNCTION {schema}.slow() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_sleep(1); RETURN NULL; END $$;"
            f"CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON {schema}.registers "
            f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {schema}.slow()"
        )
        with Rollout(store) as flags:
            assert flags.wait_synced(10)
            with pytest.raises(StoreOutcomeUnknownError, match="may or may not have happened"):
                flags.activate("chat")
            assert not flags.active("chat", 1)  # not applied here: it may not have happened
            # It did happen: the server finished the commit after the client stopped waiting,
            # and its notification brings it to this replica too.
            eventually(lambda: {"exists", "percentage"} <= _keys(admin, schema, "chat"))
            eventually(lambda: flags.active("chat", 1), what="the change, by notification")
    finally:
        store.close()


def test_opening_on_a_server_too_slow_to_answer_is_refused_after_the_timeout(
    pg_url: str,  # noqa: F811
    schema: str,  # noqa: F811
    admin: psycopg.Connection[Any],  # noqa: F811
    proxy: FaultProxy,
) -> None:
    proxy.delay(0.3)  # every answer comes late: the connection opens, its first query times out
    url = _through(with_schema(pg_url, schema), proxy) + "&timeout=0.2&connect_timeout=20"
    with pytest.raises(StoreUnavailableError, match=r"cannot open .*no answer within 0.2 s"):
        open_store(url)
    found = admin.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", [schema])
    assert found.fetchone() == (0,)


def test_a_notification_is_only_a_hint_a_role_without_rights_cannot_write_flags_with(
    pg_url: str,  # noqa: F811
    schema: str,  # noqa: F811
    admin: psycopg.Connection[Any],  # noqa: F811
) -> None:
    """PostgreSQL checks no privilege on NOTIFY: any role that may connect can send on our
    channel. A replica must take from the store, never from the message, what changed."""
    url = with_schema(pg_url, schema)
    nobody = f"{schema}_nobody"  # a role with no rights on the schema at all
    admin.execute(f"CREATE ROLE {nobody} NOLOGIN")
    try:
        with Rollout(url) as replica, Rollout(url) as writer, Rollout() as forger:
            assert replica.wait_synced(10)
            assert writer.wait_synced(10)
            writer.set("chat", False)
            eventually(lambda: replica.exists("chat"))
            forger.set("chat", True)  # later than the real write: it would win a merge
            flags_json = json.dumps(json.loads(forger.export())["flags"])
            before = replica.stats()["sync"]
            version = before["version_seen"]
            admin.execute(f"SET ROLE {nobody}")
            for message in (f"{version + 1} forged {flags_json}", f"{version + 9} x", "junk"):
                admin.execute("SELECT pg_notify(%s, %s)", [f"{schema}_changes", message])
            admin.execute("RESET ROLE")
            writer.set("other", True)  # the next real change, after the forged ones
            eventually(lambda: replica.exists("other"))
            assert replica.active("chat") is False
            after = replica.stats()["sync"]
            assert after["errors"] == 0  # no reconnect for a stray message,
            assert after["reloads"] == before["reloads"]  # nor a full load of every flag
            assert after["malformed"] == 1
        with Rollout(url) as later:
            assert later.active("chat") is False  # nor did it reach the store
    finally:
        admin.execute("RESET ROLE")
        admin.execute(f"DROP ROLE IF EXISTS {nobody}")
