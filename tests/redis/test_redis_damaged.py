"""A Redis hash edited by hand or damaged: loading it is a StoreError naming the flag and the
key, never a JSONDecodeError, a ValueError from int() or a smaller flag set."""

from __future__ import annotations

import pytest
import redis

from rollout import Rollout, StoreError
from rollout.redis import RedisStore

from .redis_fixtures import client, namespace, redis_url  # noqa: F401  (fixtures)
from .redis_server import with_namespace


@pytest.mark.parametrize(
    ("field", "damage"),
    [
        pytest.param("user:7", lambda packed: packed[:-4] + "tr\x15e", id="value-not-json"),
        pytest.param("user:7", lambda packed: "x" + packed[1:], id="timestamp-not-digits"),
        pytest.param("exiwts", lambda packed: packed, id="unknown-key"),
    ],
)
def test_a_damaged_register_is_a_store_error_naming_the_flag(
    redis_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
    client: redis.Redis,  # noqa: F811
    field: str,
    damage: object,
) -> None:
    url = with_namespace(redis_url, namespace)
    with Rollout(url) as flags:
        flags.activate_users("chat", [str(u) for u in range(10)])
    hash_key = f"{namespace}:flag:chat"
    packed = client.hget(hash_key, "user:7" if field != "exiwts" else "exists")
    assert isinstance(packed, str)
    assert callable(damage)
    client.hset(hash_key, field, damage(packed))
    store = RedisStore.from_url(url)
    try:
        with pytest.raises(StoreError) as caught:
            store.load()
    finally:
        store.close()
    print(caught.value)
    assert "damaged register" in str(caught.value)
    assert "'chat'" in str(caught.value)
    assert field in str(caught.value)
