"""A Redis hash edited by hand or damaged: that flag is left out of the load with an error
logged naming the flag, the key and the fix, never a JSONDecodeError or a ValueError from int();
the other flags load (Redis is shared with other programs: one foreign record must not stop
every process from starting)."""

from __future__ import annotations

import logging

import pytest
import redis

from rollout import Rollout
from rollout.redis import RedisStore

from .redis_fixtures import client, namespace, redis_url  # noqa: F401  (fixtures)
from .redis_server import with_namespace


@pytest.mark.parametrize(
    ("field", "damage"),
    [
        pytest.param("user:7", lambda packed: packed[:-4] + "tr\x15e", id="value-not-json"),
        pytest.param("user:7", lambda packed: "x" + packed[1:], id="timestamp-not-digits"),
        pytest.param("exiwts", lambda packed: packed, id="unknown-key"),
        pytest.param("user:", lambda packed: packed, id="bare-prefix"),
        pytest.param("bogus\0user:7", lambda packed: packed, id="nul-then-a-member"),
    ],
)
# 3,000 users: a flag past a thousand registers is decoded by C loops (rollout.redis._load)
@pytest.mark.parametrize("users", [10, 3_000])
def test_a_damaged_register_leaves_its_flag_out_naming_the_flag_and_key(
    redis_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
    client: redis.Redis,  # noqa: F811
    *,
    field: str,
    damage: object,
    users: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="rollout.redis")
    url = with_namespace(redis_url, namespace)
    with Rollout(url) as flags:
        flags.activate_users("chat", [str(u) for u in range(users)])
        flags.activate("other")
    hash_key = f"{namespace}:flag:chat"
    packed = client.hget(hash_key, "user:7" if field == "user:7" else "exists")
    assert isinstance(packed, str)
    assert callable(damage)
    client.hset(hash_key, field, damage(packed))
    store = RedisStore.from_url(url)
    try:
        loaded = store.load()
    finally:
        store.close()
    assert sorted(loaded) == ["other"]
    logged = [r.getMessage() for r in caplog.records if r.name == "rollout.redis"]
    print(logged)
    named = repr(field)[1:-1]  # as the message writes it
    assert any("'chat'" in m and named in m and "HDEL" in m for m in logged), logged
