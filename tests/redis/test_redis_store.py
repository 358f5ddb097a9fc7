"""RedisStore: the shared store conformance suite, the key layout, URLs and a missing Redis."""

from __future__ import annotations

import json
import logging
import threading

import pytest
import redis

from rollout import Rollout, Store
from rollout._core.clock import Timestamp
from rollout._core.keys import EXISTS, PERCENTAGE, USER
from rollout._core.state import Register
from rollout.errors import StoreError, StoreUnavailableError
from rollout.redis import RedisStore
from rollout.redis._packed import pack
from rollout.stores import open_store
from rollout.testing import StoreConformance, eventually

from .redis_fixtures import changes, client, namespace, published, redis_url  # noqa: F401
from .redis_server import with_namespace

#: A port nothing listens on: connections are refused at once.
_NOTHING_LISTENS = "redis://127.0.0.1:1/0"


def _reg(wall: int, value: object, node: int = 7) -> Register:
    return Register(Timestamp(wall, 0, node), value)


class TestRedisStore(StoreConformance):
    @pytest.fixture(autouse=True)
    def _redis(self, redis_url: str, namespace: str) -> None:  # noqa: F811
        self.url = redis_url
        self.namespace = namespace

    def make_store(self) -> Store:
        return RedisStore(redis.Redis.from_url(self.url), namespace=self.namespace)

    def reopen(self, store: Store) -> Store:
        return RedisStore(redis.Redis.from_url(self.url), namespace=self.namespace)


def test_the_key_layout_is_the_documented_one(
    redis_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
    client: redis.Redis,  # noqa: F811
) -> None:
    store = RedisStore.from_url(with_namespace(redis_url, namespace))
    try:
        store.save({"chat": {EXISTS: _reg(10, True), USER + "42": _reg(11, True)}})
        assert set(client.keys(f"{namespace}:*")) == {
            f"{namespace}:flags",
            f"{namespace}:flag:chat",
            f"{namespace}:version",
        }
        assert client.smembers(f"{namespace}:flags") == {"chat"}
        assert set(client.hkeys(f"{namespace}:flag:chat")) == {EXISTS, USER + "42"}
        assert client.get(f"{namespace}:version") == "1"
    finally:
        store.close()


def test_only_a_save_that_changes_something_bumps_the_version_and_publishes(
    redis_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
    changes: redis.client.PubSub,  # noqa: F811
) -> None:
    store = RedisStore.from_url(with_namespace(redis_url, namespace))
    try:
        store.save({"chat": {PERCENTAGE: _reg(10, 20.0)}})
        assert store.version() == 1
        store.save({"chat": {PERCENTAGE: _reg(10, 20.0)}})  # the same register again
        store.save({"chat": {PERCENTAGE: _reg(5, 90.0)}})  # an older one
        assert store.version() == 1
        store.save({"chat": {PERCENTAGE: _reg(11, 30.0)}})
        assert store.version() == 2
        store.save({"chat": {PERCENTAGE: _reg(12, 40.0)}})  # a marker, published after them all
        assert store.version() == 3
        messages = published(
            changes, lambda got: got[-1].startswith("3 ") if got else False, "the marker's message"
        )
        # One message per save that changed something, in order, and nothing else before the
        # marker: none for the repeated or the older register, none twice.
        assert [m.split(" ", 2)[0] for m in messages] == ["1", "2", "3"]
        assert "30" in json.dumps(json.loads(messages[1].split(" ", 2)[2]))
    finally:
        store.close()


def test_concurrent_saves_of_different_users_from_many_clients_all_survive(
    redis_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
) -> None:
    stores = [RedisStore(redis.Redis.from_url(redis_url), namespace=namespace) for _ in range(4)]
    start = threading.Barrier(len(stores))

    def write(i: int, store: RedisStore) -> None:
        start.wait()
        for n in range(50):
            store.save({"f": {USER + f"{i}-{n}": _reg(1000 + n, True, node=i + 1)}})

    threads = [threading.Thread(target=write, args=(i, store)) for i, store in enumerate(stores)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        users = {key for key in stores[0].load()["f"] if key.startswith(USER)}
        assert users == {USER + f"{i}-{n}" for i in range(4) for n in range(50)}
        assert stores[0].version() == 200
    finally:
        for store in stores:
            store.close()


def test_namespaces_isolate_stores_on_one_database(
    redis_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
) -> None:
    other_namespace = f"{namespace}-other"
    first = RedisStore.from_url(with_namespace(redis_url, namespace))
    second = RedisStore.from_url(with_namespace(redis_url, other_namespace))
    try:
        first.save({"chat": {EXISTS: _reg(10, True)}})
        assert second.load() == {}
        assert second.version() == 0
        second.save({"beta": {EXISTS: _reg(10, True)}})
        assert set(first.load()) == {"chat"}
        assert set(second.load()) == {"beta"}
    finally:
        second.client.delete(*second.client.keys(f"{other_namespace}:*"))
        first.close()
        second.close()


def test_a_url_chooses_database_and_namespace(
    redis_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
) -> None:
    store = open_store(with_namespace(redis_url, namespace))
    try:
        assert isinstance(store, RedisStore)
        assert store.namespace == namespace
        assert store.channel == f"{namespace}:changes"
    finally:
        store.close()
    default = open_store("redis://127.0.0.1:6379/3")
    try:
        assert isinstance(default, RedisStore)
        assert default.namespace == "rollout"
        assert default.client.connection_pool.connection_kwargs["db"] == 3
    finally:
        default.close()


@pytest.mark.parametrize("bad", ["", "two words", "line\nbreak"])
def test_a_bad_namespace_is_a_value_error_naming_it(bad: str) -> None:
    connection = redis.Redis.from_url(_NOTHING_LISTENS)
    try:
        with pytest.raises(ValueError, match="namespace"):
            RedisStore(connection, namespace=bad)
    finally:
        connection.close()


def test_an_unreachable_redis_is_store_unavailable_for_load_and_save() -> None:
    store = RedisStore.from_url(with_namespace(_NOTHING_LISTENS, "nobody"))
    try:
        with pytest.raises(StoreUnavailableError, match=r"Redis \(nobody\)") as raised:
            store.load()
        assert isinstance(raised.value.__cause__, redis.ConnectionError)
        with pytest.raises(StoreUnavailableError):
            store.save({"chat": {EXISTS: _reg(10, True)}})
        with pytest.raises(StoreUnavailableError):
            store.version()
    finally:
        store.close()


def test_a_rollout_on_an_unreachable_redis_starts_and_says_why_it_cannot_write() -> None:
    """A service starts while Redis is away: from its defaults, with writes refused."""
    flags = Rollout(with_namespace(_NOTHING_LISTENS, "nobody"), defaults={"beta": True})
    try:
        assert flags.active("beta")
        assert not flags.active("chat", 1)
        with pytest.raises(
            StoreUnavailableError, match=r"cannot write to Redis \(nobody\)"
        ) as raised:
            flags.activate("chat")
        assert isinstance(raised.value, StoreError)
        assert "127.0.0.1:1" in str(raised.value)
        assert not flags.active("chat")
        eventually(lambda: flags.stats()["sync"]["last_error"] is not None, what="an error seen")
        sync = flags.stats()["sync"]
        assert sync["connected"] is False
        assert "127.0.0.1:1" in sync["last_error"]
        assert flags.wait_synced(0.1) is False
    finally:
        flags.close()


def test_a_future_register_in_redis_is_quarantined_and_accept_takes_it_out(
    redis_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
) -> None:
    from rollout._core.clock import system_clock_ms

    url = with_namespace(redis_url, namespace)
    future = system_clock_ms() + 3_600_000
    writer = RedisStore.from_url(url)
    writer.save({"chat": {EXISTS: _reg(future, True), PERCENTAGE: _reg(future, 30.0)}})
    writer.close()
    with Rollout(url) as flags:  # started after a process with a clock an hour ahead wrote
        assert flags.exists("chat") is False
        assert {(e.key, e.origin) for e in flags.quarantined()} == {
            (EXISTS, "store"),
            (PERCENTAGE, "store"),
        }
        flags.activate_percentage("chat", 50)  # a later write wins over the held registers
        assert flags.quarantined() == []
        assert flags.get("chat").percentage == 50
    reader = RedisStore.from_url(url)
    try:
        stored = reader.load()["chat"]
        assert stored[PERCENTAGE].value == 50
        assert stored[PERCENTAGE].ts.wall < future
    finally:
        reader.close()


# Records another program wrote: a bad one is isolated to its flag ----------------------------

_PACKED_PREFIX = pack("exists", _reg(10, True))[:-4]  # the timestamp part: "true" cut off

BAD_FIELDS: dict[str, dict[bytes, bytes]] = {
    "lone surrogate in a value": {b"data:k": _PACKED_PREFIX.encode() + b'"x\\ud800"'},
    "value nested 1,000 deep": {b"data:k": _PACKED_PREFIX.encode() + b"[" * 1000 + b"]" * 1000},
    "value nested 40 deep": {b"data:k": _PACKED_PREFIX.encode() + b"[" * 40 + b"]" * 40},
    "key not UTF-8": {b"user:\xff": _PACKED_PREFIX.encode() + b"true"},
    "timestamp garbage": {b"exists": b"garbage"},
}


@pytest.mark.parametrize("fields", BAD_FIELDS.values(), ids=BAD_FIELDS.keys())
def test_a_bad_record_in_redis_is_left_out_and_the_other_flags_load(
    redis_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
    fields: dict[bytes, bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="rollout.redis")  # whatever quietened "rollout"
    url = with_namespace(redis_url, namespace)
    with Rollout(url) as writer:
        writer.activate("good")
        writer.activate("bad")
    raw = redis.Redis.from_url(redis_url)
    try:
        raw.hset(f"{namespace}:flag:bad", mapping=fields)  # type: ignore[arg-type]
    finally:
        raw.close()
    with Rollout(url) as reader:
        assert reader.features() == ["good"]
        assert reader.active("good")
        # Everything a reader does with what it loaded still works.
        assert reader.export()
    logged = [r.getMessage() for r in caplog.records if r.name == "rollout.redis"]
    assert any("'bad'" in m and "left out" in m for m in logged), logged
