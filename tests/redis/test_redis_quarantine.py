"""The quarantine kept in Redis when Redis is away as a process starts: the process starts with an
empty quarantine, holds what it refuses meanwhile, and once Redis is back loads the quarantine the
store keeps and writes what it held into it. (Restarts: tests/client/test_quarantine_restart.py.)"""

from __future__ import annotations

import json

import redis

from rollout import Rollout
from rollout._core.clock import Timestamp
from rollout.redis import RedisStore
from rollout.testing import FakeClock, eventually

from .redis_fixtures import private_redis  # noqa: F401  (fixture)
from .redis_server import RedisServer

HOUR = 3_600_000
START = 1_700_000_000_000


def _export(clock_ms: int, flag: str) -> bytes:
    with Rollout(clock=FakeClock(clock_ms)) as writer:
        writer.activate_user(flag, 1)
        return writer.export()


def test_a_process_started_while_redis_is_away_loads_the_quarantine_once_it_is_back(
    private_redis: RedisServer,  # noqa: F811
) -> None:
    private_redis.stop()
    store = RedisStore(redis.Redis.from_url(private_redis.url), namespace="app")
    other = RedisStore(redis.Redis.from_url(private_redis.url), namespace="app")
    try:
        with Rollout(store, clock=FakeClock(START)) as flags:
            flags.merge(_export(START + HOUR, "bomb"))  # held in memory while Redis is away
            assert len(flags.quarantined("bomb")) == 2

            private_redis.start()
            # Judged by another process on the store: an old register, not ahead of this clock.
            old = _export(START - 1_000, "old")
            registers = json.loads(old)["flags"]["old"]
            other.release([("old", key, Timestamp(*r[:3])) for key, r in registers.items()])

            harmless = _export(START, "harmless")

            def loaded() -> bool:
                flags.merge(harmless)  # screening registers is when the load is tried again
                return {e.flag for e in other.quarantined().held} == {"bomb"}

            eventually(loaded, timeout=30, what="the quarantine loaded and written through")
            assert flags.merge(old) == set()  # judged in the store: refused
            assert flags.exists("old") is False
            assert len(flags.quarantined("bomb")) == 2
    finally:
        store.close()
        other.close()
