"""Live updates through PostgreSQL's LISTEN/NOTIFY, for replicas on a :class:`PostgresStore`.

The store NOTIFYs every change itself, in the transaction that saves it (PostgreSQL sends it at
commit, in commit order), numbered by the schema's version. This transport LISTENs on its own
connection, on one background thread, and merges what other processes saved. A listener that is
away misses notifications, so it catches up as the Redis transport does
(:mod:`rollout.sync._versioned`: re-seed and load on every reconnect, a full load on a skipped
version, a periodic version check).

A notification is its version alone: the flags are read from the store's ``changes`` table,
never from the message (any role that can connect may NOTIFY any channel). The transport asks
of the store only what :class:`ChangeFeed` names, and does not import it: the store's
``default_transport()`` builds this transport.
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
from ._bulk import decode_change

if TYPE_CHECKING:
    import psycopg

__all__ = ["ChangeFeed", "PostgresTransport"]

logger = logging.getLogger("rollout.sync")


class ChangeFeed(Protocol):
    """What the transport needs of its store (a :class:`~rollout.postgres.PostgresStore`)."""

    @property
    def channel(self) -> str:
        """The NOTIFY channel of every change: ``<version> <origin>``."""
        ...

    def connect(self, purpose: str = "store") -> psycopg.Connection[Any]:
        """A new autocommit connection to the store's database."""
        ...

    def save(self, delta: Delta) -> None: ...

    def snapshot(self) -> tuple[Delta, int]:
        """Every register and the version of the last change, read together."""
        ...

    def version(self) -> int: ...

    def change(self, version: int) -> str | None:
        """The flags JSON of a change sent by reference, if still kept."""
        ...


class PostgresTransport(VersionedFeedTransport):
    kind = "postgres"
    listener_name = "PostgreSQL listener"
    extra_counters = ("by_reference", "malformed", "own_writes_skipped")

    def __init__(
        self, store: ChangeFeed, *, check_interval: float = 5.0, saves_writes: bool = True
    ) -> None:
        super().__init__(store, check_interval=check_interval, saves_writes=saves_writes)
        self.store = store

    @contextlib.contextmanager
    def _subscribe(self) -> Iterator[Poll]:
        connection = self.store.connect("listen")

        def poll(timeout: float) -> Iterator[str]:
            for notify in connection.notifies(timeout=timeout):
                yield notify.payload

        try:
            connection.execute(f'LISTEN "{self.store.channel}"')
            yield poll
        finally:
            connection.close()

    def _receive(self, announcement: Any) -> None:
        # Only the version is read: the change itself comes from the changes table, whatever
        # the message says. Any role that can connect may NOTIFY our channel (PostgreSQL checks
        # no privilege), so a message is a hint, never a change (older writers put the flags
        # in it: those are ignored, and a version not in the table is a full load).
        version_text = str(announcement).partition(" ")[0]
        if not (version_text.isascii() and version_text.isdigit() and len(version_text) < 20):
            self._counters["malformed"] += 1
            logger.warning("ignoring a message on %s that is not a change", self.store.channel)
            return
        version = int(version_text)
        if version <= self._seen or self._own_merge(version):
            return  # already in a full load, or this replica's own merge (not even read)
        flags_json = self.store.change(version) if version == self._seen + 1 else None
        if flags_json is None:
            # A version skipped, or not in the table: a full load, unless the store has not
            # moved (a stranger's message: a load per message would let it make every replica
            # read every flag, as often as it likes). A real change is committed before its
            # message arrives, so the store's version has moved for it.
            if self.store.version() > self._seen:
                self._gap()
            return
        self._counters["by_reference"] += 1
        try:
            change = json.loads(flags_json)
            if self._own_write(change):
                self._counters["own_writes_skipped"] += 1
                self._seen = version
                return
            # A big save's change is its groups of registers (rollout.postgres._bulk), a small
            # one's the export format's flags.
            delta = decode_change(change) if isinstance(change, list) else decode_flags(change)
        except (ValueError, RecursionError, RolloutError) as exc:
            logger.warning("ignoring a malformed change on %s: %s", self.store.channel, exc)
            self._reload_soon()
            return
        self._merge(delta)
        self._seen = version  # once merged: stats() never names a change the replica lacks

    def _own_write(self, change: object) -> bool:
        """Whether a change is this replica's own write read back, already applied here.

        Every process reads every change from the table, its writer's included: merging one's
        own write again changes nothing, but costs a decode and a merge under the write lock
        (for ``activate_users`` of 50,000 ids, 50,000 registers weighed one by one). The replica
        is asked rather than the change's origin trusted: two replicas may share one store
        object (one origin), and a write whose answer was lost (StoreOutcomeUnknownError)
        reaches its own writer only this way. A local write's registers all carry its one
        timestamp: in a grouped change every group, in the export format every register.
        """
        if self._host is None:
            return False
        stamps: list[Any] = []
        if isinstance(change, list):
            stamps = [group[1:4] if isinstance(group, list) else None for group in change]
        elif isinstance(change, dict):
            for registers in change.values():
                if not isinstance(registers, dict):
                    return False
                stamps += [r[:3] if isinstance(r, list) else None for r in registers.values()]
        stamp = stamps[0] if stamps else None
        if not (isinstance(stamp, list) and len(stamp) == 3):
            return False
        if not all(type(part) is int for part in stamp) or any(s != stamp for s in stamps):
            return False
        return self._host.applied_own_write(Timestamp(*stamp))
