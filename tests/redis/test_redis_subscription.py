"""The subscriber reads the change channel off its socket (rollout.redis._subscription): what
redis-py's reading did for it must still hold, whatever the connection's options."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from rollout import Rollout
from rollout._core.state import Delta
from rollout.redis import RedisStore
from rollout.testing import eventually

from .redis_fixtures import namespace, private_redis, redis_url  # noqa: F401  (fixtures)
from .redis_server import RedisServer, with_namespace


@pytest.mark.parametrize(
    "options",
    ["", "protocol=2", "protocol=3", "health_check_interval=1"],
)
def test_a_subscriber_hears_other_processes_and_skips_its_own_echoes(
    redis_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
    options: str,
) -> None:
    url = with_namespace(redis_url, namespace)
    listener_url = f"{url}&{options}" if options else url
    with Rollout(listener_url) as listener, Rollout(url) as writer:
        assert listener.wait_synced(10)
        assert writer.wait_synced(10)
        for user in range(3):
            writer.activate_user("chat", user)
            eventually(lambda u=user: listener.active("chat", u), what=f"user {user} heard")  # type: ignore[misc]
            listener.activate_user("mail", user)  # its own echo, skipped
            eventually(lambda u=user: writer.active("mail", u), what=f"user {user} sent")  # type: ignore[misc]
            time.sleep(1.2)  # past a health check's interval: the next poll sends a PING
        eventually(lambda: listener.stats()["sync"]["own_writes_skipped"] == 3)
        sync = listener.stats()["sync"]
        assert (sync["errors"], sync["reconnects"], sync["reloads"]) == (0, 0, 0)
        assert listener.export() == writer.export()


def test_a_subscription_the_server_closes_is_made_again_and_misses_nothing(
    private_redis: RedisServer,  # noqa: F811  (a server of its own: every subscriber is cut)
) -> None:
    url = with_namespace(private_redis.url, "killed")
    admin = redis.Redis.from_url(private_redis.url)
    try:
        with Rollout(url) as listener, Rollout(url) as writer:
            assert listener.wait_synced(10)
            assert writer.wait_synced(10)
            writer.activate_user("chat", 1)
            eventually(lambda: listener.active("chat", 1))
            admin.client_kill_filter(_type="pubsub")  # the listener's and the writer's
            writer.activate_user("chat", 2)  # perhaps while nobody listens
            eventually(lambda: listener.active("chat", 2), what="the write made meanwhile")
            eventually(lambda: listener.stats()["sync"]["reconnects"] >= 1)
            writer.activate_user("chat", 3)
            eventually(lambda: listener.active("chat", 3), what="a write after reconnecting")
    finally:
        admin.close()


class _SlowToApply(RedisStore):
    """A store whose saves return only once the test lets them (``go_on``): the write's echo
    arrives while it is still under way, for as long as the test needs."""

    def __init__(self, url: str) -> None:
        store = RedisStore.from_url(url)
        super().__init__(store.client, namespace=store.namespace)
        self.saved = threading.Event()
        self.go_on = threading.Event()

    def save(self, delta: Delta) -> None:
        super().save(delta)
        self.saved.set()
        self.go_on.wait(30)


def test_an_echo_that_comes_before_its_write_is_applied_is_seen_only_once_it_is(
    redis_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
) -> None:
    store = _SlowToApply(with_namespace(redis_url, namespace))
    with Rollout(store) as flags, Rollout(with_namespace(redis_url, namespace)) as other:
        assert flags.wait_synced(10)
        assert other.wait_synced(10)
        before = flags.stats()["sync"]["version_seen"]
        writing = threading.Thread(target=flags.activate_user, args=("chat", 1))
        writing.start()
        try:
            assert store.saved.wait(10)
            other.activate_user("mail", 2)  # published after the echo, while the write is applied
            eventually(lambda: other.stats()["sync"]["version_seen"] == before + 2)
            # Time for the echo, and the other's change behind it, to reach this subscriber too
            # (too short a wait only makes the next line weaker: the write is held meanwhile).
            time.sleep(0.2)
            assert flags.stats()["sync"]["version_seen"] == before  # neither claimed yet
        finally:
            store.go_on.set()
        writing.join(10)
        eventually(lambda: flags.stats()["sync"]["version_seen"] == before + 2)
        assert flags.active("chat", 1)
        assert flags.active("mail", 2)
        sync = flags.stats()["sync"]
        assert (sync["own_writes_skipped"], sync["reloads"], sync["errors"]) == (1, 0, 0)
    store.close()
