"""Fixtures for the Redis tests: a Redis to talk to, a private one to restart, a namespace.

Test modules import them (a ``conftest.py`` here would clash with ``tests/conftest.py`` for
mypy, since the test folders are not packages).

* ``redis_url``: the Redis at ``REDIS_URL`` when set and reachable, else a private
  ``redis-server`` on a free port (for the whole session) when the binary exists; without either
  the tests skip locally and fail under ``CI=true``.
* ``private_redis``: a ``redis-server`` of this test's own, which it may stop and restart.
* ``namespace``: a namespace no other test uses; its keys are deleted afterwards.
* ``client``: a plain redis-py client, to look at what the library wrote.
* ``store``: a :class:`RedisStore` under ``namespace``, closed afterwards.
* ``changes``: a subscription to ``namespace``'s changes channel, made before the test runs;
  :func:`published` reads its messages.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from rollout.redis import RedisStore
from rollout.testing import eventually

from .redis_server import RedisServer, need_redis, ping, redis_binary, with_namespace


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("REDIS_URL")
    if url and ping(url):
        yield url
        return
    binary = redis_binary()
    if binary is None:
        need_redis(
            f"REDIS_URL={url!r} is not reachable and there is no redis-server binary"
            if url
            else "no REDIS_URL and no redis-server binary"
        )
    server = RedisServer(binary, tmp_path_factory.mktemp("redis")).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    binary = redis_binary()
    if binary is None:
        need_redis("no redis-server binary to start a private Redis (this test restarts it)")
    server = RedisServer(binary, tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


def _delete_namespace(url: str, namespace: str) -> None:
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
        if keys:
            client.delete(*keys)
    except redis.ConnectionError:
        pass  # a private server already stopped: nothing left to clean
    finally:
        client.close()


@pytest.fixture
def namespace(redis_url: str) -> Iterator[str]:
    name = f"rollout-test-{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        _delete_namespace(redis_url, name)


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    """A plain redis-py client on the test Redis, for looking at what the library wrote."""
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture
def store(redis_url: str, namespace: str) -> Iterator[RedisStore]:
    opened = RedisStore.from_url(with_namespace(redis_url, namespace))
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def changes(client: redis.Redis, namespace: str) -> Iterator[redis.client.PubSub]:
    """A subscriber to the changes channel of ``namespace`` (its messages are text)."""
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        pubsub.subscribe(f"{namespace}:changes")
        yield pubsub
    finally:
        pubsub.close()


def published(
    changes: redis.client.PubSub,
    until: Callable[[list[str]], bool] = bool,
    what: str = "a change's message",
) -> list[str]:
    """The messages ``changes`` received, read until ``until`` holds of them (by default: one)."""
    messages: list[str] = []

    def arrived() -> bool:
        message = changes.get_message(timeout=0.1)
        if message is not None:
            messages.append(message["data"])
        return until(messages)

    eventually(arrived, what=what)
    return messages
