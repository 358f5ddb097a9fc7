"""The replication half of the public API: export, merge, refresh, and what transports call.

``Rollout`` is a :class:`~rollout.sync.SyncHost`: a transport hands it registers from peers
(``merge_remote``) and asks for digests and registers to send. Everything that comes from
elsewhere goes through one place, :meth:`ReplicationAPI._merge_delta`, which rejects registers
stamped too far in the future, stores the rest, merges them into the replica and notifies.
"""

from __future__ import annotations

import abc
import logging
import os
import threading
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .._core.clock import HybridClock
from .._core.codec import decode
from .._core.state import Delta
from ..stores import Store
from .replica import Replica

if TYPE_CHECKING:
    from ..sync import Transport

__all__ = ["ReplicationAPI"]

logger = logging.getLogger("rollout")


class ReplicationAPI(abc.ABC):
    """Replication methods of :class:`rollout.Rollout`."""

    _replica: Replica
    _clock: HybridClock
    _store: Store | None
    _transport: Transport | None
    _write_lock: threading.Lock
    _counters: dict[str, int]
    _clock_skew: str | None

    @abc.abstractmethod
    def _notify(self, changed: set[str]) -> None: ...

    def export(self) -> bytes:
        """The full replicated state with timestamps (versioned format, for ``merge()``)."""
        return self._replica.export()

    def merge(self, data: bytes) -> set[str]:
        """Apply another replica's ``export()`` or delta; return the flags whose state changed.

        Registers stamped further in the future than ``max_offset`` are rejected (counted in
        ``stats()``) and leave this replica and its clock unchanged. Raises
        :class:`~rollout.errors.FormatError` for a corrupt or unknown blob, changing nothing.
        """
        return self._merge_delta(decode(data), save=True)

    def refresh(self) -> set[str]:
        """Load the store again and merge what other processes wrote to it since.

        For processes that share one SQLite file without a sync transport: a web worker can
        call it every few seconds, or after the CLI changed a flag. Returns the changed flags.
        """
        if self._store is None:
            return set()
        return self._merge_delta(self._store.load(), save=False)

    def digests(self) -> dict[str, bytes]:
        """Per flag, a hash of its replicated registers (equal hashes: equal flags)."""
        return self._replica.digests()

    def wait_synced(self, timeout: float = 5.0, *, peers: int | None = None) -> bool:
        """Wait until every known peer (or at least ``peers`` of them) has every local write.

        True at once without a transport. False if ``timeout`` seconds pass first.
        """
        if self._transport is None:
            return True
        return self._transport.wait_synced(timeout, peers)

    def members(self) -> list[dict[str, Any]]:
        """The nodes this one knows: address, node id, state, clock offset, last sync."""
        return self._transport.members() if self._transport is not None else []

    def _merge_delta(self, incoming: Delta, *, save: bool) -> set[str]:
        accepted: Delta = {}
        rejected = 0
        too_far_ahead = self._clock.too_far_ahead
        for name, registers in incoming.items():
            kept = {key: reg for key, reg in registers.items() if not too_far_ahead(reg.ts)}
            rejected += len(registers) - len(kept)
            if kept:
                accepted[name] = kept
        if rejected:
            self._counters["registers_rejected"] += rejected
            logger.warning(
                "rejected %d registers stamped more than %d ms ahead of this clock",
                rejected,
                self._clock.max_offset_ms,
            )
        if not accepted:
            return set()
        with self._write_lock:
            if save and self._store is not None:
                self._store.save(accepted)
            self._clock.observe(max(r.ts for regs in accepted.values() for r in regs.values()))
            changed = self._replica.apply(accepted)
            self._counters["merges"] += 1
        self._notify(changed)
        return changed

    # SyncHost: what a transport asks of its replica ---------------------------------------------

    @property
    def node_id(self) -> int:
        return self._clock.node

    @property
    def max_offset_ms(self) -> int:
        return self._clock.max_offset_ms

    def physical_ms(self) -> int:
        return self._clock.physical_ms()

    def replicated(self, names: Iterable[str] | None = None) -> Delta:
        return self._replica.delta(set(names) if names is not None else None)

    def merge_remote(self, delta: Delta, *, store: bool = True) -> set[str]:
        return self._merge_delta(delta, save=store)

    def set_clock_skew(self, problem: str | None) -> None:
        self._clock_skew = problem

    # Fork safety --------------------------------------------------------------------------------

    def _guard_fork(self) -> None:
        """Make ``os.fork()`` safe: no lock held across it, replication restarted in the child."""
        _FORK_GUARDED.add(self)

    def _before_fork(self) -> None:
        # Held across the fork so the child never inherits them locked by a thread it lacks.
        self._write_lock.acquire()
        self._replica.lock.acquire()

    def _after_fork_in_parent(self) -> None:
        self._replica.lock.release()
        self._write_lock.release()

    def _after_fork_in_child(self) -> None:
        self._replica.lock.release()
        self._write_lock.release()
        if self._transport is not None:
            self._transport.after_fork_in_child()


_FORK_GUARDED: weakref.WeakSet[ReplicationAPI] = weakref.WeakSet()


def _before() -> None:
    for replica in list(_FORK_GUARDED):
        replica._before_fork()


def _parent() -> None:
    for replica in list(_FORK_GUARDED):
        replica._after_fork_in_parent()


def _child() -> None:
    for replica in list(_FORK_GUARDED):
        replica._after_fork_in_child()


os.register_at_fork(before=_before, after_in_parent=_parent, after_in_child=_child)
