# ruff: noqa: F811  (pytest fixtures imported from redis_fixtures are parameters here)
"""A watermark moved on a big flag (``deactivate`` of 200,000 users): the registers it hides are
collected in steps (rollout.redis._collect), never in one script that holds Redis for seconds;
and hidden registers left in Redis, by a writer that stopped midway, are ignored by every reader.

Each test has a Redis server of its own: the first one lowers the time after which Redis
answers other clients BUSY while a script runs, which no shared server should see.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from rollout import Rollout
from rollout._core.codec import decode
from rollout._core.keys import USER
from rollout.redis import RedisStore
from rollout.redis._scripts import STEP
from rollout.redis.ruby import feature_key, parse_record
from rollout.sqlite import SQLiteStore
from rollout.testing import eventually

from .redis_fixtures import private_redis  # noqa: F401  (fixture)
from .redis_server import RedisServer, with_namespace

BIG = 200_000
NAMESPACE = "collect"
HASH = f"{NAMESPACE}:flag:big"
#: Milliseconds a script may run before Redis answers every other client BUSY (5,000 by
#: default). One script that removed 200,000 registers ran about 800 ms here; a step, about 10.
BUSY_AFTER_MS = 200


class SteppedStore(RedisStore):
    """A RedisStore that calls ``before_step(number)`` before each step of a collection."""

    def __init__(self, url: str, before_step: Callable[[int], None]) -> None:
        super().__init__(redis.Redis.from_url(url), namespace=NAMESPACE)
        step = self._collect
        self.steps = 0

        def stepped(*, keys: list[Any], args: list[Any]) -> Any:
            before_step(self.steps)
            self.steps += 1
            return step(keys=keys, args=args)

        self._collect = stepped  # type: ignore[assignment]  # the real script, observed


class Pinger(threading.Thread):
    """Another client of the same Redis, pinging it until stopped: its answers and errors."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis.from_url(url)
        self.answers = 0
        self.errors: list[redis.RedisError] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.client.ping()
                self.answers += 1
            except redis.RedisError as exc:  # BUSY Redis is busy running a script...
                self.errors.append(exc)

    def stop(self) -> None:
        self.stopping.set()
        self.join()
        self.client.close()


@pytest.fixture
def url(private_redis: RedisServer) -> str:
    return with_namespace(private_redis.url, NAMESPACE)


def write_users(flags: Rollout, count: int) -> None:
    for start in range(0, count, 50_000):
        flags.activate_users("big", map(str, range(start, min(count, start + 50_000))))


def listed(flags: Rollout) -> tuple[set[str], ...]:
    """The users ``flags`` lists for "big", asked every way a reader has: the flag, its export,
    checks of those users and of a user only the deactivation removed."""
    users = set(flags.get("big").users)
    exported = {k[len(USER) :] for k in decode(flags.export())["big"] if k.startswith(USER)}
    checked = {user for user in (*users, "1") if flags.active("big", user)}
    return users, exported, checked


def text_client(server: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(server.url, decode_responses=True)


def stored_users(look: redis.Redis) -> set[str]:
    """The users of the flag's hash in Redis, hidden or not."""
    fields = map(str, look.hkeys(HASH))  # text already (decode_responses), typed loosely
    return {field[len(USER) :] for field in fields if field.startswith(USER)}


def only(*users: str) -> tuple[set[str], ...]:
    return set(users), set(users), set(users)


def test_deactivating_a_big_flag_keeps_redis_answering_and_collects_what_it_hides(
    url: str, private_redis: RedisServer
) -> None:
    pinger = Pinger(private_redis.url)
    other = Rollout(url)
    answers_seen = [0]

    def before_step(number: int) -> None:
        if number == 0:  # after the reset, before its collection: seen, so stamped after it
            eventually(lambda: not other.get("big").users, what="the reset at the other replica")
            other.activate_users("big", ["7", "new"])
        elif number <= 3:  # Redis answers others between steps
            eventually(lambda: pinger.answers > answers_seen[0], what="a PING answered")
        answers_seen[0] = pinger.answers

    store = SteppedStore(private_redis.url, before_step)
    flags = Rollout(store)
    try:
        write_users(flags, BIG)
        with private_redis.client() as look:
            assert look.hlen(HASH) > BIG
        eventually(lambda: len(other.get("big").users) == BIG, what="the other replica's users")
        with private_redis.client() as admin:  # not before: the writes of 50,000 take longer
            admin.config_set("lua-time-limit", BUSY_AFTER_MS)
        pinger.start()
        try:
            flags.deactivate("big")
            assert not flags.active("big", "1")  # applied here, its collection going on
            with text_client(private_redis) as look:
                eventually(lambda: stored_users(look) == {"7", "new"}, what="the collection")
                assert look.hlen(HASH) < 20  # exists, reset, the users, the history events
        finally:
            pinger.stop()
        assert pinger.errors == []
        assert store.steps > BIG // (2 * STEP)  # in steps, each a script of its own
        eventually(lambda: listed(flags) == only("7", "new"), what="the writer's users")
        eventually(lambda: listed(other) == only("7", "new"), what="the other replica's users")
        with Rollout(url) as fresh:
            assert listed(fresh) == only("7", "new")
    finally:
        flags.close()
        store.close()
        other.close()


def test_hidden_registers_a_writer_left_are_ignored_by_every_reader_and_collected_next_time(
    url: str,
    private_redis: RedisServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def dies(number: int) -> None:
        if number == 2:  # the writer's connection lost midway: the rest is left hidden
            raise redis.ConnectionError("lost")

    store = SteppedStore(private_redis.url, dies)
    flags = Rollout(store)
    look = text_client(private_redis)
    try:
        write_users(flags, 5 * STEP)
        flags.deactivate("big")  # stored: the collection's failure is only logged
        eventually(lambda: "collecting the registers hidden" in caplog.text, what="the warning")
        left = look.hlen(HASH)
        assert left > 2 * STEP
        flags.activate_user("big", "new")
        assert listed(flags) == only("new")
        with Rollout(url) as fresh:  # a replica's load: the reset drops what it hides
            assert listed(fresh) == only("new")
        with Rollout(url, ruby_compat=True, ruby_namespace=NAMESPACE) as ruby:
            ruby.activate_user("big", "ruby")  # the gem's record, rendered from the replica
            record = parse_record(str(look.get(feature_key("big", NAMESPACE))))
            assert set(record.users) == {"new", "ruby"}
        copy = SQLiteStore(tmp_path / "copy.db")
        copy.save(RedisStore(look, namespace=NAMESPACE).load())
        with Rollout(copy) as copied:
            assert listed(copied) == only("new", "ruby")
        copy.close()
        assert look.hlen(HASH) >= left  # nobody but a watermark's move collects them
        with Rollout(url) as next_writer:  # its store's close waits for the collection
            next_writer.deactivate("big")  # the next reset collects the leftovers too
        assert stored_users(look) == set()
    finally:
        flags.close()
        store.close()
        look.close()


def test_a_store_closed_within_a_time_stops_its_collection_and_leaves_the_rest_hidden(
    url: str, private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Rollout.close(timeout) returns within about its timeout: a collection under way is
    # stopped at its next step (the rest is hidden, harmless, and collected by the next reset).
    at_second_step = threading.Event()
    go_on = threading.Event()

    def held(number: int) -> None:
        if number == 1:
            at_second_step.set()
            go_on.wait(10)

    store = SteppedStore(private_redis.url, held)
    flags = Rollout(store)
    look = text_client(private_redis)
    try:
        write_users(flags, 5 * STEP)
        flags.deactivate("big")
        assert at_second_step.wait(10)
        closing = threading.Thread(target=store.close_within, args=(0.0,))
        closing.start()
        eventually(lambda: "closed with hidden registers" in caplog.text, what="the warning")
        go_on.set()
        closing.join(10)
        assert not closing.is_alive()
        assert store.steps == 2  # the step under way ended; no step after it
        assert look.hlen(HASH) > 2 * STEP  # the rest stays, hidden
        with Rollout(url) as fresh:
            assert listed(fresh) == only()
    finally:
        go_on.set()
        flags.close()
        store.close()
        look.close()
