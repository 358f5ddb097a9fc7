"""The Redis store's save connection: one connection of the store's pool, kept for writes.

Through the pool, redis-py takes a connection for each command, checks that it has no unread
data (a poll and two time-out changes, all system calls) and gives it back: about a third of the
client's time in a write. A client of one connection skips that and keeps redis-py's retries,
reconnection (Sentinel's included) and errors. A forked child makes its own: the parent's
socket is not the child's to use.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

__all__ = ["SaveConnection"]


class SaveConnection:
    """The kept connection, made on first use (and again in a forked child)."""

    def __init__(self, client: redis.Redis) -> None:
        self._pool_client = client
        self._lock = threading.Lock()
        self._client: redis.Redis | None = None
        self._pid = 0  # the process that made _client

    @contextmanager
    def client(self) -> Iterator[redis.Redis]:
        """The save client, held by this thread until the block ends.

        The client's own lock (re-entrant: each command takes it again) is held across the check
        of the connection and the commands of the block: two threads saving through one store
        must not close or read the socket under each other's reply.
        """
        saver = self._client
        if saver is None or self._pid != os.getpid():
            saver = self._make()
        with saver.single_connection_lock:
            _drop_if_stale(saver)
            yield saver

    def _make(self) -> redis.Redis:
        import redis

        with self._lock:
            if self._client is None or self._pid != os.getpid():
                # Connects now: an error here is one of connecting (nothing was sent).
                self._client = redis.Redis(
                    connection_pool=self._pool_client.connection_pool,
                    single_connection_client=True,
                )
                self._pid = os.getpid()
            return self._client

    def close(self) -> None:
        """Give the connection back to the pool (this process's only: a child's is its own)."""
        if self._client is not None and self._pid == os.getpid():
            self._client.close()


def _drop_if_stale(saver: redis.Redis) -> None:
    import redis

    connection = saver.connection
    if connection is not None:
        # What the pool checks before lending a connection: one the server has closed (Redis
        # restarted, an idle time-out) is dropped here, before the command is sent, so that
        # reconnecting fails as "not sent" rather than the write reading as sent.
        try:
            stale = connection.can_read()
        except (OSError, redis.ConnectionError):
            stale = True
        if stale:
            connection.disconnect()  # type: ignore[no-untyped-call]
