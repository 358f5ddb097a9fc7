"""Live updates through Redis pub/sub, for replicas whose store is a :class:`RedisStore`.

The store publishes every change itself, atomically with saving it (one Lua script), with the
namespace's version number. This transport subscribes on one background thread and merges what
other processes published. Pub/sub drops what is sent while a subscriber is away, so:

* on start and after every reconnect, it first saves this replica's whole state into Redis
  (merge-if-newer: harmless when Redis has it all, and it re-seeds a Redis that restarted
  empty), then loads Redis's whole state;
* a message whose version is not the next one means one was missed: load everything;
* every ``check_interval`` seconds it compares the version with the last one seen.

The transport asks of the store only what :class:`ChangeFeed` names, and does not import it:
the store's ``default_transport()`` builds this transport, so the dependency runs one way.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

from .._core.codec import decode_flags
from .._core.state import Delta
from ..errors import RolloutError
from ..sync._base import SyncHost, Transport

if TYPE_CHECKING:
    import redis

__all__ = ["ChangeFeed", "RedisTransport"]

logger = logging.getLogger("rollout.sync")


class ChangeFeed(Protocol):
    """What the transport needs of its store (a :class:`~rollout.redis.RedisStore` has it): a
    store that publishes every change it saves, numbered, on a pub/sub channel."""

    @property
    def client(self) -> redis.Redis: ...

    @property
    def channel(self) -> str:
        """The pub/sub channel every change is published on: ``<version> <origin> <flags>``."""
        ...

    def save(self, delta: Delta) -> None: ...

    def snapshot(self) -> tuple[Delta, int]:
        """Every register and the version of the last change, read atomically together."""
        ...

    def version(self) -> int: ...


class RedisTransport(Transport):
    def __init__(
        self, store: ChangeFeed, *, check_interval: float = 5.0, saves_writes: bool = True
    ) -> None:
        if isinstance(check_interval, bool) or not isinstance(check_interval, int | float):
            raise TypeError(f"check_interval must be a number of seconds, got {check_interval!r}")
        if check_interval <= 0:
            raise ValueError(f"check_interval must be positive, got {check_interval!r}")
        self.store = store
        self.check_interval = check_interval
        #: Whether publish() saves local writes into Redis (which publishes them). False only
        #: when the replica's own store is this Redis: its writes are saved there already.
        self.saves_writes = saves_writes
        self._host: SyncHost | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._seen = 0
        self._counters = dict.fromkeys(
            ("messages_received", "reloads", "reconnects", "gaps", "errors"), 0
        )
        self._last_error: str | None = None

    def start(self, host: SyncHost) -> None:
        self._host = host
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="rollout-redis", daemon=True)
        self._thread.start()

    def publish(self, delta: Any) -> None:
        """Save a local write into Redis, which publishes it (unless the replica already did).

        Never raises: the write is already applied here, and the next reconnect re-seeds Redis
        with this replica's whole state.
        """
        if not self.saves_writes:
            return
        try:
            self.store.save(delta)
        except RolloutError as exc:
            self._counters["errors"] += 1
            self._last_error = str(exc)
            logger.warning("could not publish a change to Redis: %s", exc)

    def wait_synced(self, timeout: float, peers: int | None = None) -> bool:
        # A write returns once Redis has it (the store saved it, or publish() did), and every
        # other replica gets it from there; Redis has no peers to count. What is left to wait
        # for is this replica being connected, so that it hears the others.
        del peers
        return self._connected.wait(timeout)

    def stats(self) -> dict[str, Any]:
        return {
            "transport": "redis",
            "connected": self._connected.is_set(),
            "version_seen": self._seen,
            "last_error": self._last_error,
            **self._counters,
        }

    def after_fork_in_child(self) -> None:
        if self._host is not None and self._thread is not None:
            self._connected.clear()
            self.start(self._host)

    def close(self, timeout: float = 5.0) -> None:
        thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # The subscriber thread ------------------------------------------------------------------

    def _run(self) -> None:
        delay = 0.05
        while not self._stop.is_set():
            try:
                self._listen()
                delay = 0.05
            except Exception as exc:  # any failure: back off, reconnect, reload
                self._connected.clear()
                self._counters["errors"] += 1
                self._last_error = f"{type(exc).__name__}: {exc}"
                logger.warning("Redis subscriber: %s; reconnecting in %.2f s", exc, delay)
                self._stop.wait(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, 5.0)
                self._counters["reconnects"] += 1

    def _listen(self) -> None:
        host = self._host
        assert host is not None
        pubsub = self.store.client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(self.store.channel)
            # Subscribed first, then re-seed and load: nothing published after the load can be
            # missed, and what was published before it is in it.
            self.store.save(host.replicated())
            self._reload()
            self._connected.set()
            next_check = time.monotonic() + self.check_interval
            while not self._stop.is_set():
                message = pubsub.get_message(timeout=0.5)
                if message is not None and message.get("type") == "message":
                    self._receive(message["data"])
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + self.check_interval
                    if self.store.version() != self._seen:
                        self._reload()
        finally:
            pubsub.close()

    def _receive(self, data: bytes | str) -> None:
        host = self._host
        assert host is not None
        text = data.decode() if isinstance(data, bytes) else data
        version_text, origin, flags_json = text.split(" ", 2)
        version = int(version_text)
        self._counters["messages_received"] += 1
        if version != self._seen + 1 and version > self._seen:
            self._counters["gaps"] += 1
            self._reload()
            return
        if version <= self._seen:
            return  # already in a full load
        self._seen = version
        # Our own writes come back too. They are merged again rather than skipped: merging is
        # idempotent and cheap when nothing changes, and an origin check breaks down as soon
        # as two replicas share one store object.
        del origin
        import json

        try:
            delta = decode_flags(json.loads(flags_json))
        except (ValueError, RecursionError, RolloutError) as exc:
            logger.warning("ignoring a malformed change on %s: %s", self.store.channel, exc)
            self._reload()
            return
        host.merge_remote(delta, store=False)

    def _reload(self) -> None:
        host = self._host
        assert host is not None
        delta, self._seen = self.store.snapshot()
        host.merge_remote(delta, store=False)
        self._counters["reloads"] += 1
