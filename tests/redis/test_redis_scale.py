"""A Redis store holding big flags: reading it in pages, opening a Rollout on it with one load,
big saves announced by a small notice, and merges applied in bounded chunks.

The sizes that matter (pages, chunks, the notice's threshold) are made small here, so that a
few hundred registers cross them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
import redis

from rollout import Rollout
from rollout._core.clock import Timestamp
from rollout._core.keys import EXISTS, USER
from rollout._core.state import Delta, Register
from rollout.redis import RedisStore, _load
from rollout.redis._packed import pack
from rollout.testing import eventually

from .redis_fixtures import changes, client, namespace, redis_url, store  # noqa: F401  (fixtures)


def _reg(wall: int, value: object, node: int = 7) -> Register:
    return Register(Timestamp(wall, 0, node), value)


class CountingStore(RedisStore):
    """A RedisStore that counts the whole-store reads and the saves made through it."""

    def __init__(self, connection: redis.Redis, *, name: str) -> None:
        super().__init__(connection, namespace=name)
        self.snapshots = 0
        self.saves: list[int] = []  # registers per save

    def snapshot(self) -> tuple[Delta, int]:
        self.snapshots += 1
        return super().snapshot()

    def save(self, delta: Delta) -> None:
        self.saves.append(sum(map(len, delta.values())))
        super().save(delta)


#: Opens a Rollout on a new store of the given kind under the test's namespace: (store, Rollout).
OpenCounted = Callable[[type[CountingStore]], tuple[CountingStore, Rollout]]


@pytest.fixture
def open_counted(redis_url: str, namespace: str) -> Iterator[OpenCounted]:  # noqa: F811
    """Each call a store of its own (a Rollout passed one leaves it open): both closed after the
    test, the Rollout first."""
    with ExitStack() as opened:

        def open_one(kind: type[CountingStore]) -> tuple[CountingStore, Rollout]:
            counting = kind(redis.Redis.from_url(redis_url), name=namespace)
            opened.callback(counting.close)
            flags = Rollout(counting)
            opened.callback(flags.close)
            return counting, flags

        yield open_one


@pytest.fixture
def pages_of_7(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loads read in pages of 7 registers: the big flag in pages, the small ones batched."""
    monkeypatch.setattr(_load, "PAGE", 7)


@pytest.fixture
def chunks_of_40(monkeypatch: pytest.MonkeyPatch) -> None:
    """Merges saved in chunks of at most 40 registers: 300 users make eight."""
    from rollout.redis import _store

    monkeypatch.setattr(_store, "CHUNK", 40)


def _export(users: int, flag: str = "big", **percentages: float) -> bytes:
    """An export: ``flag`` on for users "0" to ``users - 1``, and flags at ``percentages``."""
    with Rollout() as source:
        source.activate_users(flag, [str(i) for i in range(users)])
        for name, percentage in percentages.items():
            source.activate_percentage(name, percentage)
        return source.export()


def _flags(users: int) -> Delta:
    """A big flag (``users`` users, written at three moments) and five small ones."""
    big = {EXISTS: _reg(1, True)}
    big.update({f"{USER}{i}": _reg(2 + i % 3, i % 5 != 0) for i in range(users)})
    delta: Delta = {"big": big}
    for n in range(5):
        delta[f"small-{n}"] = {EXISTS: _reg(5, True), f"{USER}{n}": _reg(6, True)}
    return delta


@pytest.mark.usefixtures("pages_of_7")
def test_a_load_in_pages_reads_exactly_what_was_saved(store: RedisStore) -> None:  # noqa: F811
    delta = _flags(300)
    store.save(delta)
    loaded, version = store.snapshot()
    assert loaded == delta
    assert version == store.version()
    # Registers of one packed text are one object: a million users are not a million tuples.
    users = loaded["big"]
    assert users[f"{USER}1"] is users[f"{USER}4"]


# 30 users, pages of 7: decoded a register at a time; 3,000 users in one page: by C loops,
# which leave a page holding a NUL in a field to the register-at-a-time decoding.
@pytest.mark.parametrize(("users", "page"), [(30, 7), (3_000, 50_000)])
def test_a_field_holding_a_nul_is_read_whole(
    store: RedisStore,  # noqa: F811
    client: redis.Redis,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    users: int,
    page: int,
) -> None:
    monkeypatch.setattr(_load, "PAGE", page)
    delta = _flags(users)
    store.save(delta)
    for name in ("big", "small-1"):  # written by something else: a NUL in a member's id
        client.hset(f"{store.namespace}:flag:{name}", f"{USER}a\0b", pack(USER, _reg(9, True)))
        delta[name][f"{USER}a\0b"] = _reg(9, True)
    assert store.load() == delta


@pytest.mark.usefixtures("pages_of_7")
def test_a_damaged_register_on_a_later_page_leaves_only_its_flag_out(
    store: RedisStore,  # noqa: F811
    client: redis.Redis,  # noqa: F811
) -> None:
    delta = _flags(100)
    store.save(delta)
    client.hset(f"{store.namespace}:flag:big", f"{USER}77", "not a register")
    loaded = store.load()
    assert "big" not in loaded  # never half a flag
    assert loaded == {name: regs for name, regs in delta.items() if name != "big"}
    # Left midway, the read did not leave a page's answer on a pooled connection.
    client.hset(f"{store.namespace}:flag:big", f"{USER}77", pack(USER, delta["big"][f"{USER}77"]))
    for _ in range(3):
        assert store.load() == delta


@pytest.mark.usefixtures("pages_of_7")
def test_a_load_during_saves_is_still_a_join_of_what_was_saved(
    store: RedisStore,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store.save(_flags(60))
    big = _load.Pages._big
    writes = iter(range(100, 200))

    def read_while_saving(self: Any, *args: Any) -> Any:
        store.save({"busy": {EXISTS: _reg(next(writes), True)}})  # the version moves each time
        return big(self, *args)

    monkeypatch.setattr(_load.Pages, "_big", read_while_saving)
    loaded, version = store.snapshot()
    # The read kept seeing a new version: it returns its last read with the version it began at,
    # so whoever follows the changes merges those after it again.
    assert version == store.version() - 1
    assert loaded["big"] == _flags(60)["big"]
    assert loaded["busy"][EXISTS].ts.wall >= 100


def test_a_rollout_opened_on_a_big_store_loads_it_once_and_writes_nothing_back(
    store: RedisStore,  # noqa: F811
    open_counted: OpenCounted,
) -> None:
    store.save(_flags(500))
    counting, flags = open_counted(CountingStore)
    assert flags.wait_synced(10.0)
    assert flags.active("big", 1)
    assert counting.snapshots == 1
    assert counting.saves == []
    assert flags.stats()["sync"]["reloads"] == 0
    # It still follows: a change saved elsewhere arrives.
    store.save({"later": {EXISTS: _reg(50, True), f"{USER}9": _reg(50, True)}})
    eventually(lambda: flags.active("later", 9))
    assert counting.snapshots == 1


def test_a_change_between_the_load_and_the_subscription_is_not_missed(
    store: RedisStore,  # noqa: F811
    open_counted: OpenCounted,
) -> None:
    store.save(_flags(20))

    class ChangedAfterLoad(CountingStore):
        def load_numbered(self) -> tuple[Delta, int | None]:
            loaded = super().load_numbered()
            # Another process saves before this one has subscribed: no announcement reaches it.
            store.save({"meanwhile": {EXISTS: _reg(60, True), f"{USER}3": _reg(60, True)}})
            return loaded

    counting, flags = open_counted(ChangedAfterLoad)
    assert flags.wait_synced(10.0)
    eventually(lambda: flags.active("meanwhile", 3))
    assert counting.snapshots == 2  # the version moved: loaded again


def _announcements(pubsub: redis.client.PubSub) -> list[str]:
    """What the changes channel carried (the subscriber's backlog), as text."""
    out: list[str] = []
    quiet = 0
    while quiet < 3:  # three quiet half-seconds: nothing more is coming
        message = pubsub.get_message(timeout=0.5)
        if message is None:
            quiet += 1
        elif message["type"] == "message":
            quiet = 0
            out.append(str(message["data"]))
    return out


@pytest.mark.usefixtures("chunks_of_40")
def test_a_merge_is_saved_in_chunks_announced_by_small_notices(
    open_counted: OpenCounted,
    changes: redis.client.PubSub,  # noqa: F811
) -> None:
    document = _export(300, small=30)
    _, follower = open_counted(CountingStore)
    _, importer = open_counted(CountingStore)
    assert follower.wait_synced(10.0)
    assert importer.wait_synced(10.0)
    importer.merge(document)
    announced = _announcements(changes)
    # Eight chunks of at most 40 registers; each announced by a word, the last "reload".
    assert [line.split(" ", 2)[2] for line in announced] == ["partial"] * 7 + ["reload"]
    eventually(lambda: follower.active("big", "299") and follower.active("big", "0"))
    assert follower.stats()["sync"]["reloads"] == 1  # once, at the last chunk
    assert follower.export() == importer.export()


def test_a_big_save_is_announced_by_a_notice_its_writer_skips_and_others_reload(
    open_counted: OpenCounted,
    changes: redis.client.PubSub,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rollout.redis import _store

    monkeypatch.setattr(_store, "NOTICE_BYTES", 2_000)
    _, writer = open_counted(CountingStore)
    _, follower = open_counted(CountingStore)
    assert writer.wait_synced(10.0)
    assert follower.wait_synced(10.0)
    writer.activate_user("small", "1")  # announced with its registers
    writer.activate_users("big", [str(i) for i in range(200)])  # one atomic save
    announced = [line.split(" ", 2)[2] for line in _announcements(changes)]
    assert announced[0].startswith("{")
    assert len(announced) == 2
    assert len(announced[1]) < 100
    assert announced[1].startswith("reload ")  # with the write's timestamp
    eventually(lambda: follower.active("big", "199") and follower.active("small", "1"))
    assert follower.stats()["sync"]["reloads"] == 1
    assert writer.stats()["sync"]["reloads"] == 0  # its own write: applied already
    assert writer.stats()["sync"]["own_writes_skipped"] == 2


@pytest.mark.parametrize("nul", [False, True], ids=["joined", "a-nul-in-a-key"])
def test_a_merge_in_chunks_reaches_the_state_of_one_save(
    store: RedisStore,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    nul: bool,
) -> None:
    from rollout._core.keys import RESET
    from rollout.redis import _store
    from rollout.stores import merge_delta

    monkeypatch.setattr(_store, "CHUNK", 7)
    store.save({"big": {f"{USER}old": _reg(1, True), f"{USER}kept": _reg(1, True)}})
    delta = _flags(40)
    # The watermark, last in the delta, hides registers of earlier chunks: dropped all the same.
    delta["big"][RESET] = _reg(3, None)
    if nul:
        delta["small-2"][f"{USER}a\0b"] = _reg(9, True)
    store.merge(delta)
    expected: Delta = {"big": {f"{USER}old": _reg(1, True), f"{USER}kept": _reg(1, True)}}
    merge_delta(expected, delta, store.history_limit)
    assert store.load() == expected
    assert f"{USER}old" not in expected["big"]


@pytest.mark.usefixtures("chunks_of_40")
def test_the_merging_process_skips_its_own_chunks_and_another_rollout_on_its_store_reloads(
    open_counted: OpenCounted,
) -> None:
    document = _export(300)
    shared, importer = open_counted(CountingStore)
    with Rollout(shared) as neighbour:  # one store object, one origin
        assert importer.wait_synced(10.0)
        assert neighbour.wait_synced(10.0)
        snapshots = shared.snapshots
        importer.merge(document)
        eventually(lambda: neighbour.active("big", "299") and neighbour.active("big", "0"))
        eventually(lambda: importer.stats()["sync"]["own_merges_skipped"] == 8)
        assert importer.stats()["sync"]["reloads"] == 0  # its own merge: applied already
        assert neighbour.stats()["sync"]["reloads"] == 1  # not its own: read once
        assert shared.snapshots == snapshots + 1
        assert neighbour.export() == importer.export()


@pytest.mark.usefixtures("chunks_of_40")
def test_a_merge_right_after_start_is_not_saved_back_nor_loaded_again(
    store: RedisStore,  # noqa: F811
    open_counted: OpenCounted,
) -> None:
    store.save(_flags(100))
    document = _export(300, flag="merged")
    counting, flags = open_counted(CountingStore)
    flags.merge(document)  # while the transport connects, or before
    assert flags.wait_synced(10.0)
    store.save({"later": {EXISTS: _reg(50, True), f"{USER}9": _reg(50, True)}})
    eventually(lambda: flags.active("later", 9))  # every announcement before it is read
    assert counting.snapshots == 1  # the load at start only
    assert flags.stats()["sync"]["reloads"] == 0
    assert flags.active("merged", "299")
    assert flags.active("big", 1)


@pytest.mark.usefixtures("chunks_of_40")
def test_another_process_writing_between_the_chunks_of_a_merge_is_not_missed(
    store: RedisStore,  # noqa: F811
    open_counted: OpenCounted,
) -> None:
    document = _export(300)

    class Interleaved(CountingStore):
        chunks = 0

        def _run_command(self, command: bytes, script: str) -> int:
            version = super()._run_command(command, script)
            self.chunks += 1
            if self.chunks in (3, 5):  # another process saves between two chunks
                n = self.chunks
                store.save({f"between-{n}": {EXISTS: _reg(50, True), f"{USER}{n}": _reg(50, True)}})
            return version

    _, importer = open_counted(Interleaved)
    assert importer.wait_synced(10.0)
    importer.merge(document)
    eventually(lambda: importer.active("between-3", 3) and importer.active("between-5", 5))
    eventually(lambda: importer.stats()["sync"]["own_merges_skipped"] == 8)
    assert importer.stats()["sync"]["version_seen"] == store.version() == 10
    assert importer.stats()["sync"]["reloads"] == 0  # the two saves read from their messages
    assert importer.active("big", "299")


def test_a_merge_over_many_batches_of_a_script_keeps_every_newer_stored_register(
    store: RedisStore,  # noqa: F811
) -> None:
    # The script reads and writes a flag's registers a thousand at a time: batches where every
    # register wins, where some lose to newer stored ones, where all lose, and a watermark last.
    from rollout._core.keys import RESET
    from rollout.stores import merge_delta

    stored = {f"{USER}{i}": _reg(10 if i % 7 == 0 else 1, True) for i in range(4000)}
    stored.update({f"{USER}{i}": _reg(10, False) for i in range(1000, 2000)})
    store.save({"big": stored})
    incoming = {f"{USER}{i}": _reg(5, i % 3 != 0) for i in range(3500)}
    incoming[RESET] = _reg(3, None)  # hides what is stored at wall 1 and not replaced
    store.merge({"big": incoming})
    expected: Delta = {"big": dict(stored)}
    merge_delta(expected, {"big": incoming}, store.history_limit)
    # What the reset hides in a big flag goes in steps after the merge returns (redis._collect).
    eventually(lambda: store.load() == expected, what="the merged flag, collected")
    assert expected["big"][f"{USER}7"] == _reg(10, True)  # newer stored: kept
    assert expected["big"][f"{USER}1500"] == _reg(10, False)
    assert expected["big"][f"{USER}3"] == _reg(5, False)
    assert f"{USER}3600" not in expected["big"]  # stored at wall 1, hidden by the reset
    assert f"{USER}3605" in expected["big"]  # stored at wall 10, after the reset
