"""Definitions and named rules kept by the real stores: a SQLite file reopened, and Redis and
PostgreSQL shared by two Rollouts (live) and read again by a third after a delete; and carried
by the NATS transport."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from rollout import Rollout
from rollout.errors import StoreError
from rollout.testing import eventually

from ..nats.nats_fixtures import namespace as nats_namespace  # noqa: F401  (fixtures)
from ..nats.nats_fixtures import nats_url  # noqa: F401  (fixtures)
from ..postgres.pg_fixtures import pg_url, schema, with_schema  # noqa: F401  (fixtures)
from ..redis.redis_fixtures import namespace, redis_url  # noqa: F401  (fixtures)
from ..redis.redis_server import with_namespace

PRO = {"in": [{"var": "plan"}, ["pro", "enterprise"]]}
TARGETING = {"if": [{"$ref": "pro"}, "wide", "narrow"]}


class Customer:
    def __init__(self) -> None:
        self.id = 1
        self.plan = "pro"


def write_definitions(flags: Rollout) -> None:
    flags.define_rule("pro", PRO)
    flags.define_flag(
        "layout", {"wide": 3, "narrow": 1}, default_variant="narrow", targeting=TARGETING
    )
    flags.set_variant("layout", "huge", 9)
    flags.define_flag("gone", {"x": True}, default_variant="x")
    flags.delete("gone")
    flags.activate_group("chat", "pro")  # a named rule as a group


def assert_definitions(flags: Rollout) -> None:
    assert flags.features() == ["chat", "layout"]
    assert flags.rules() == {"pro": PRO}
    feature = flags.get("layout")
    assert dict(feature.variants) == {"wide": 3, "narrow": 1, "huge": 9}
    assert (feature.default_variant, feature.targeting) == ("narrow", TARGETING)
    assert flags.evaluate("layout", {"plan": "pro"}).value == 3
    assert flags.evaluate("gone").error_code == "FLAG_NOT_FOUND"
    assert flags.active("chat", Customer()) is True
    assert [e.action for e in flags.history("layout")] == ["set_variant", "define_flag"]


def test_a_sqlite_file_reopened_keeps_definitions_and_rules(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'flags.db'}"
    with Rollout(url) as flags:
        write_definitions(flags)
    with Rollout(url) as again:
        assert_definitions(again)


def shared_store(url: str) -> None:
    with Rollout(url) as writer, Rollout(url) as reader:
        assert writer.wait_synced(10)
        assert reader.wait_synced(10)
        write_definitions(writer)
        eventually(
            lambda: reader.exists("chat") and not reader.exists("gone") and bool(reader.rules()),
            what="the definitions at the second Rollout",
        )
        assert_definitions(reader)
        writer.disable_flag("layout")
        eventually(lambda: not reader.get("layout").enabled, what="disabled at the reader")
    with Rollout(url) as third:  # from the store alone
        assert third.evaluate("layout").reason == "DISABLED"
        assert third.rules() == {"pro": PRO}


def test_redis_keeps_and_shares_definitions_and_rules(
    redis_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
) -> None:
    shared_store(with_namespace(redis_url, namespace))


def test_postgresql_keeps_and_shares_definitions_and_rules(
    pg_url: str,  # noqa: F811
    schema: str,  # noqa: F811
) -> None:
    shared_store(with_schema(pg_url, schema))


def test_a_store_refuses_a_rule_register_on_a_flag(tmp_path: Path) -> None:
    # A rule belongs to the rules entity only: elsewhere it is a damaged row, not a flag's.
    url = f"sqlite:///{tmp_path / 'flags.db'}"
    with Rollout(url) as flags:
        flags.activate("chat")
    connection = sqlite3.connect(tmp_path / "flags.db")
    with connection:
        connection.execute(
            "INSERT INTO registers (flag, key, wall, counter, node, value) VALUES "
            "('chat', 'rule:x', 1, 0, 1, '{\"==\": [1, 1]}')"
        )
    connection.close()
    with pytest.raises(StoreError, match="register 'rule:x' of flag 'chat': unknown register key"):
        Rollout(url)


def test_nats_carries_definitions_and_rules(
    nats_url: str,  # noqa: F811
    nats_namespace: str,  # noqa: F811
) -> None:
    from rollout.nats import NatsTransport

    with (
        Rollout(transport=NatsTransport(nats_url, namespace=nats_namespace)) as writer,
        Rollout(transport=NatsTransport(nats_url, namespace=nats_namespace)) as reader,
    ):
        assert writer.wait_synced(10)
        assert reader.wait_synced(10)
        write_definitions(writer)
        eventually(
            lambda: reader.exists("chat") and not reader.exists("gone") and bool(reader.rules()),
            what="the definitions at the second Rollout",
        )
        assert_definitions(reader)
