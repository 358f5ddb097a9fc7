"""A local write too big for one atomic script (``activate_users`` of many ids) is saved in
chunks, as a merge is: Redis answers its other clients between them, every process ends up with
the whole write, its writer reads none of it back, and a chunk that fails leaves the ones before
it stored, applied by the writer too, and the same write again completes it.

Each test runs a private redis-server: a big write must not weigh on the Redis others share."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import redis

from rollout import PartlyStoredError, Rollout, StoreOutcomeUnknownError
from rollout.redis import RedisStore, RedisTransport
from rollout.testing import eventually

from .redis_fixtures import private_redis  # noqa: F401  (fixture)
from .redis_server import RedisServer, with_namespace


class Watcher:
    """Another client of the server, asking the size of a flag's hash over and over on a thread
    of its own until stopped: the answers it got, and the errors (``BUSY`` while a script
    holds Redis past its time limit)."""

    def __init__(self, server: RedisServer, key: str) -> None:
        self._client = redis.Redis.from_url(server.url, socket_timeout=30)
        self._key = key
        self._stop = threading.Event()
        self.sizes: list[int] = []
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            try:
                self.sizes.append(int(self._client.hlen(self._key)))
            except redis.RedisError as exc:
                self.errors.append(str(exc))

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)
        self._client.close()


@pytest.fixture
def pair(private_redis: RedisServer) -> Iterator[tuple[Rollout, Rollout]]:  # noqa: F811
    """Two Rollouts on one namespace of the private server (each with its store): a writer and
    another process's replica, whose transport compares versions once an hour: only what the
    channel says brings it a change (its periodic check would hide a missing announcement)."""
    url = with_namespace(private_redis.url, "app")
    store = RedisStore.from_url(url)
    quiet = RedisTransport(store, check_interval=3600, saves_writes=False)
    try:
        with Rollout(url) as writer, Rollout(store, transport=quiet) as follower:
            assert writer.wait_synced(10.0)
            assert follower.wait_synced(10.0)
            yield writer, follower
    finally:
        store.close()


def test_a_write_of_a_million_users_leaves_redis_answering_and_reaches_every_process(
    private_redis: RedisServer,  # noqa: F811
    pair: tuple[Rollout, Rollout],
) -> None:
    # It was one Lua script of 9 s: the call raised StoreOutcomeUnknownError at the 5 s socket
    # time-out and every other client of the server got "BUSY" until it ended.
    writer, follower = pair
    users = [f"user-{n}" for n in range(1_000_000)]
    reloads = writer.stats()["sync"]["reloads"], follower.stats()["sync"]["reloads"]
    with Watcher(private_redis, "app:flag:beta") as watcher:
        writer.activate_users("beta", users)
    assert watcher.errors == []
    # Redis answered while part of the write was stored, not only before and after it.
    assert [size for size in watcher.sizes if 0 < size < len(users)] != []
    assert len(writer.get("beta").users) == len(users)
    eventually(lambda: len(follower.get("beta").users) == len(users), 60.0, "the whole write")
    eventually(lambda: writer.stats()["sync"]["own_merges_skipped"] == 41, 30.0, "its chunks")
    # The writer holds its write: it read none of it back. The other process read it once.
    assert writer.stats()["sync"]["reloads"] == reloads[0]
    # (Counted once its load is merged: the users may show a moment before.)
    eventually(lambda: follower.stats()["sync"]["reloads"] == reloads[1] + 1, 30.0, "one load")
    # One write, one event (in its last chunk), wherever it is read.
    for flags in (writer, follower):
        assert [event.action for event in flags.history("beta")] == ["activate_users"]


@pytest.fixture
def chunks_of_1000(monkeypatch: pytest.MonkeyPatch) -> None:
    """Writes of more than 1,000 registers in chunks of 1,000: 10,000 users (and two more
    registers, the flag's existence and the event) make 11."""
    from rollout.redis import _store

    monkeypatch.setattr(_store, "CHUNK", 1_000)
    monkeypatch.setattr(RedisStore, "atomic_write_limit", 1_000)


def _room_for_a_chunk_or_two(server: RedisServer) -> redis.Redis:
    """Redis refuses a write ("OOM command not allowed") once it holds about two chunks more
    than now; returns the client that can lift the limit (``maxmemory`` 0)."""
    admin = server.client()
    used = int(admin.info("memory")["used_memory"])
    admin.config_set("maxmemory", used + 300_000)
    return admin


@pytest.mark.usefixtures("chunks_of_1000")
def test_a_write_whose_chunk_fails_leaves_the_chunks_before_stored_and_applied(
    private_redis: RedisServer,  # noqa: F811
    pair: tuple[Rollout, Rollout],
) -> None:
    writer, follower = pair
    writer.activate_user("beta", "first")
    reloads = writer.stats()["sync"]["reloads"]
    admin = _room_for_a_chunk_or_two(private_redis)
    users = [f"user-{n}" for n in range(10_000)]
    with pytest.raises(PartlyStoredError) as raised:
        writer.activate_users("beta", users)
    error = raised.value
    stored = {key for registers in error.stored.values() for key in registers}
    assert 0 < len(stored) < error.total == len(users) + 2
    assert "the same change again stores it all" in str(error)
    admin.config_set("maxmemory", 0)

    # The writer shows what Redis holds, as a process that opens the store now does, and the
    # other process comes to it too (told that the write stopped: no periodic check needed).
    url = with_namespace(private_redis.url, "app")
    with Rollout(url) as reader:
        held = reader.get("beta").users
        reader_history = reader.history("beta")
    assert "first" in held
    assert 1 < len(held) < len(users)
    assert writer.get("beta").users == held
    eventually(lambda: follower.get("beta").users == held, 30.0, "the stored chunks")
    assert writer.stats()["sync"]["reloads"] == reloads  # it skipped its chunks: applied

    # Who made the write stopped midway is recorded with what it stored (its event is in its
    # first chunk); the same write again completes it, and records itself too.
    assert [event.action for event in reader_history] == ["activate_users", "activate_user"]
    writer.activate_users("beta", users)
    everyone = frozenset(users) | {"first"}
    assert writer.get("beta").users == everyone
    eventually(lambda: follower.get("beta").users == everyone, 30.0, "the whole write")
    actions = [event.action for event in writer.history("beta")]
    assert actions == ["activate_users", "activate_users", "activate_user"]


@pytest.mark.usefixtures("chunks_of_1000")
def test_the_cli_and_the_http_api_never_say_nothing_was_written_of_a_write_stored_in_part(
    private_redis: RedisServer,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    # They said "unavailable" (HTTP 503, exit status 2): nothing was written, retry later.
    import anyio
    import httpx

    from rollout.admin import create_app
    from rollout.cli import main

    from ..admin.api_helpers import BEARER, TOKEN, asgi_client

    url = with_namespace(private_redis.url, "app")
    with Rollout(url) as flags:
        flags.activate_user("beta", "first")
    users = [f"user-{n}" for n in range(10_000)]

    _room_for_a_chunk_or_two(private_redis)
    assert main(["--store", url, "activate-user", "beta", *users]) == 3  # as an unknown outcome
    stderr = capsys.readouterr().err
    assert "stored, no part after it was sent" in stderr
    private_redis.client().config_set("maxmemory", 0)

    async def post() -> httpx.Response:
        with Rollout(url) as served:
            async with asgi_client(create_app(served, token=TOKEN), headers=BEARER) as api:
                return await api.post("/api/v1/flags/beta/users", json={"users": users[::-1]})

    _room_for_a_chunk_or_two(private_redis)
    answer = anyio.run(post)
    assert answer.status_code == 504, answer.text
    error = answer.json()["error"]
    assert error["code"] == "outcome_unknown"
    assert error["message"].startswith("PartlyStoredError: ")
    assert "stored, no part after it was sent" in error["message"]


class FirstReplyLost(RedisStore):
    """A store whose first chunk's reply is lost once armed: Redis runs the chunk (and announces
    it ``partial``), the writer hears a time-out, as when the answer does not come in time."""

    armed = False

    def _run_command(self, command: bytes, script: str) -> int:
        version = super()._run_command(command, script)
        if self.armed:
            self.armed = False
            raise StoreOutcomeUnknownError("no answer in time (the chunk ran)")
        return version


@pytest.mark.usefixtures("chunks_of_1000")
def test_a_first_chunk_whose_answer_is_lost_is_read_by_everyone_at_once(
    private_redis: RedisServer,  # noqa: F811
    pair: tuple[Rollout, Rollout],
) -> None:
    # The chunk ran and announced "partial": every process was left behind, waiting for the
    # rest, until its periodic check (an hour here). The writer now announces "done".
    _, follower = pair
    store = FirstReplyLost(redis.Redis.from_url(private_redis.url), namespace="app")
    with Rollout(store) as writer:
        assert writer.wait_synced(10.0)
        writer.activate_user("beta", "first")
        eventually(lambda: follower.get("beta").users == {"first"}, 30.0, "the small write")
        store.armed = True
        with pytest.raises(StoreOutcomeUnknownError):
            writer.activate_users("beta", [f"user-{n}" for n in range(2_500)])
        with Rollout(with_namespace(private_redis.url, "app")) as reader:
            held = reader.get("beta").users
        assert 1 < len(held) <= 1_001  # the first chunk (less the event and the flag's mark)
        eventually(lambda: follower.get("beta").users == held, 30.0, "the stored chunk")
        eventually(lambda: writer.get("beta").users == held, 30.0, "the writer's own")
    store.close()
