"""The timestamps of a replica's latest local writes, for transports that hear them back.

A store that announces every change to every listener (Redis publishes each save on one
channel) sends each write back to its own writer too. Merging it again changes nothing, but
costs a decode and a merge under the write lock, on the writer's process, for every write. The
write pipeline records here each local write it has stored and applied; the transport asks
(through ``SyncHost.applied_own_write``) and skips the echo of one.

The replica answers, not the message's origin: two replicas may share one store object (one
origin), and a write whose answer was lost (``StoreOutcomeUnknownError``) is never recorded, so
its echo, which is how it reaches its writer, is merged.

Likewise the versions a store numbered the changes of this replica's own ``merge()`` with (a
merge's registers carry many timestamps, so it is not recognised by one): the transport skips
those versions, and at its first connection does not save back and reload a replica whose store
moved since its load only by its own merges. A version another writer produced, in between or
on the same store object, is not among them: that change is read as any other. A version is
only worth keeping until the transport has seen it: the store may number again from the start
(Redis restarted empty, a failover to a replica behind, a restored database), and a remembered
number would then pass another writer's change off as this replica's own. The transport forgets
them as it goes (:meth:`forget_versions`).
"""

from __future__ import annotations

import threading

from .._core.clock import Timestamp
from ..errors import PartlyStoredError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["KEPT", "OwnWrites"]

#: How many of the latest local writes are remembered. An echo comes back within milliseconds;
#: a listener further behind than this merges it again, which is slower but changes nothing.
KEPT = 256


class OwnWrites:
    """The latest ``KEPT`` local writes' timestamps, oldest first. ``add`` and ``clear`` run
    under the pipeline's write lock, given here so that a question waits for a write under way."""

    __slots__ = ("_lock", "_stamps", "_versions", "merging")

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._stamps: dict[Timestamp, None] = {}
        self._versions: dict[int, None] = {}
        #: Set (under the write lock) while a merge is being saved, before the store announces
        #: any of it: only then is :meth:`produced` worth waiting for the lock.
        self.merging = False

    def add(self, ts: Timestamp) -> None:
        """Record a local write, once it is stored and applied (under the write lock)."""
        stamps = self._stamps
        stamps[ts] = None
        if len(stamps) > KEPT:
            del stamps[next(iter(stamps))]

    def record_merge(self, save: Callable[[], list[int]], *, keep_partial: bool = False) -> None:
        """Run ``save`` (a merge's save, under the write lock) and record the versions it made;
        meanwhile :meth:`produced` waits for the lock, so a version is never answered "no".
        ``keep_partial``: a save that stored its first parts only (PartlyStoredError) records
        theirs too, for a caller that applies them (a local write)."""
        self.merging = True
        try:
            self.add_versions(save())
        except PartlyStoredError as exc:
            if keep_partial:
                self.add_versions(exc.versions)
            raise
        finally:
            self.merging = False

    def add_versions(self, versions: list[int]) -> None:
        """Record the store versions of a merge, once it is stored and applied (under the lock)."""
        kept = self._versions
        for version in versions:
            kept[version] = None
        while len(kept) > KEPT:
            del kept[next(iter(kept))]

    def clear(self) -> None:
        """Forget them all (the clock stepped back: some left the replica)."""
        self._stamps.clear()
        self._versions.clear()

    def forget_versions(self, through: int | None = None) -> None:
        """Forget the merge versions up to ``through``, or all of them (None): the transport has
        seen those, or the store's numbering may have started again. Forgetting one too many
        costs a read of a change this replica holds; keeping one too many would skip another
        writer's change."""
        with self._lock:  # add_versions runs under it, and walks the same dict
            kept = self._versions
            if through is None:
                kept.clear()
                return
            for version in [v for v in kept if v <= through]:
                del kept[version]

    def produced(self, first: int, last: int) -> bool:
        """Whether every store version from ``first`` to ``last`` is one of this replica's own
        merges, stored and applied here (a merge under way is waited for, as in :meth:`applied`)."""
        if not 0 < first <= last or last - first >= KEPT:
            return False
        if not self._versions and not self.merging:
            return False  # none recorded nor under way (asked of every change heard)
        wanted = range(first, last + 1)
        if all(version in self._versions for version in wanted):
            return True
        # A merge under way records its versions before it lets the lock go. Any other write
        # holding the lock (every local write, under a steady stream) is not waited for.
        if self.merging:
            with self._lock:
                pass
        # A merge records its versions before it lets the lock go: this answer is final.
        return all(version in self._versions for version in wanted)

    def applied(self, ts: Timestamp) -> bool:
        """Whether ``ts`` stamps one of the latest local writes, stored and applied here.

        The usual answer takes no lock, so the writer never waits on it. Otherwise the write
        lock is taken: an echo can only arrive once its write reached the store, which happens
        under that lock, so a write still being applied is waited for, never answered "no".
        """
        if ts in self._stamps:
            return True
        with self._lock:
            return ts in self._stamps
