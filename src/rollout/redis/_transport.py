"""Live updates through Redis pub/sub, for replicas whose store is a :class:`RedisStore`.

The store publishes every change itself, atomically with saving it (one Lua script), with the
namespace's version number. This transport subscribes on one background thread and merges what
other processes published. Pub/sub drops what is sent while a subscriber is away, so it
catches up as every transport following a numbered store does (:mod:`rollout.sync._versioned`:
re-seed and load on every reconnect, a full load on a skipped version, a periodic version check).
A change that is this replica's own write coming back (Redis publishes to every subscriber) is
skipped rather than decoded and merged again: the replica applied it already. Its writer names
the write's timestamp beside the origin (``pid-42@wall.counter.node``), so the echo is known
from that word; the messages are read straight from the subscription's socket
(rollout.redis._subscription).

The transport asks of the store only what :class:`ChangeFeed` names, and does not import it:
the store's ``default_transport()`` builds this transport, so the dependency runs one way.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from .._core.clock import Timestamp
from .._core.codec import decode_flags
from .._core.state import Delta
from ..errors import RolloutError
from ..sync._versioned import Poll, VersionedFeedTransport
from ._chunks import DONE, PARTIAL
from ._packed import origin_stamp, timestamp_words
from ._subscription import reader

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

    def merge(self, delta: Delta) -> None: ...

    def snapshot(self) -> tuple[Delta, int]:
        """Every register and the version of the last change, read atomically together."""
        ...

    def version(self) -> int: ...


class RedisTransport(VersionedFeedTransport):
    kind = "redis"
    listener_name = "Redis subscriber"
    #: Changes that were this replica's own writes, already applied, so not merged again.
    extra_counters = ("own_writes_skipped",)

    def __init__(
        self, store: ChangeFeed, *, check_interval: float = 5.0, saves_writes: bool = True
    ) -> None:
        super().__init__(store, check_interval=check_interval, saves_writes=saves_writes)
        self.store = store

    @contextlib.contextmanager
    def _subscribe(self) -> Iterator[Poll]:
        pubsub = self.store.client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(self.store.channel)
            yield reader(pubsub)
        finally:
            pubsub.close()

    def _receive(self, announcement: Any) -> None:
        try:
            text = announcement.decode() if isinstance(announcement, bytes) else announcement
            version_text, origin, flags_json = text.split(" ", 2)
            if not 0 < len(version_text) <= 20 or not version_text.isascii():
                raise ValueError(f"version {version_text[:40]!r}")
            version = int(version_text)
        except ValueError as exc:  # UnicodeDecodeError too: not a change this store published
            logger.warning("ignoring a malformed change on %s: %s", self.store.channel, exc)
            self._reload_soon()  # a change may be behind it: read the store (not re-seeded)
            return
        if self._own_merge(version):
            return  # a chunk of this replica's own merge: no reload at its last one
        if flags_json[:1].isalpha():  # a notice (rollout.redis._chunks): no registers in it
            self._notice(version, flags_json.split(" "))
            return
        if version <= self._seen:
            self._heard_before(version)  # in a full load, or a number announced twice
            return
        if version != self._seen + 1:
            self._gap()
            return
        # The version is seen once the replica holds its change (stats() says so), not when a
        # reload stands in for it, which may come a moment later (_reload_soon).
        # Who published it, and the write's one timestamp when its writer names it there: this
        # replica's own write coming back is then known without decoding the change.
        stamp = origin_stamp(origin)
        if stamp is not None and self._host is not None and self._host.applied_own_write(stamp):
            self._seen = version
            self._counters["own_writes_skipped"] += 1
            return
        try:
            flags = json.loads(flags_json)
            if stamp is None and self._own_write(flags):
                self._seen = version
                self._counters["own_writes_skipped"] += 1
                return
            delta = decode_flags(flags)
        except (ValueError, RecursionError, RolloutError) as exc:
            logger.warning("ignoring a malformed change on %s: %s", self.store.channel, exc)
            self._reload_soon()
            return
        self._merge(delta)
        self._seen = version

    def _own_write(self, flags: object) -> bool:
        """Whether a change is this replica's own write coming back, already applied here.

        Redis publishes every change to every subscriber, the writer's own included. Merging
        one's own write again changes nothing, but it costs a decode and a merge under the
        write lock for every write, on the writer's process. The replica is asked rather than
        the message's origin trusted: two replicas may share one store object (one origin), and
        a write whose answer was lost (StoreOutcomeUnknownError) reaches its own writer only as
        this echo. A local write's registers all carry its one timestamp. (A writer of this
        version names that timestamp in the origin, and :meth:`_receive` asks the replica
        about it before decoding anything; this walk is for changes that do not.)
        """
        if not isinstance(flags, dict) or self._host is None:
            return False
        stamp: list[Any] | None = None
        for registers in flags.values():
            if not isinstance(registers, dict):
                return False
            for register in registers.values():
                if not isinstance(register, list):
                    return False
                if stamp is None:
                    stamp = register[:3]
                elif register[:3] != stamp:
                    return False
        if stamp is None or len(stamp) != 3 or not all(type(part) is int for part in stamp):
            return False
        return self._host.applied_own_write(Timestamp(*stamp))

    def _notice(self, version: int, words: list[str]) -> None:
        """``partial``: a chunk of a merge, more follow; ``reload [wall counter node]``: a change
        too big to send, or a merge's last chunk. Read from the store (once for a merge).
        ``done``: the end of a merge whose last chunk changed nothing: read if behind."""
        if words[0] == DONE:
            if self._stale:
                self._reload_soon()
            return
        if version > self._seen + 1:
            self._gap()
            return
        if version <= self._seen and not self._stale:
            self._heard_before(version)  # in a full load, or a number announced twice
            return
        if words[0] == PARTIAL:
            self._behind(version)
            return
        if len(words) == 4 and not self._stale and self._own_stamp(words[1:]):
            self._seen = max(self._seen, version)
            self._counters["own_writes_skipped"] += 1
            return
        self._reload_soon()  # the version is seen when the load is made

    def _own_stamp(self, parts: list[str]) -> bool:
        """Whether a notice's timestamp stamps this replica's own write (as _own_write)."""
        stamp = timestamp_words(parts)
        return stamp is not None and self._host is not None and self._host.applied_own_write(stamp)
