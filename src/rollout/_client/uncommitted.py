"""Peers' changes this replica applied before committing them to its store.

A peer's delta is a write its node committed to its own store before sending it, and nobody
acknowledges it. So the receiver applies it, tells its subscribers, and only then commits it
(:meth:`rollout._client.pipeline.WritePipeline.merge_counting` with ``store_first=False``):
propagation no longer waits for the receiver's disk. A crash between the two loses nothing the
cluster needs:

* the writer, and every other peer that committed it, still hold it;
* nothing this node persists claims to hold it: digests are computed from the replica, which a
  restart rebuilds from the store, and the peer transport keeps no version or sequence on disk;
  so the first digest exchange after the restart finds the difference and pulls it back;
* the clock is safe too: a local write stamped after the lost change commits that change with
  it (below), and a restarted clock observes the newest timestamp it finds in the store.

Until committed, the registers wait here. The commit normally follows on the same thread right
after the subscribers are told; only a failed commit leaves them waiting longer, and then every
later save of the pipeline takes them along: the next delta, an acknowledged exchange (a STATE,
which is stored before its ACK, so an ACK always means "on this node's disk") and a local write
(stored with everything it may have seen). ``close()`` makes a last attempt.
"""

from __future__ import annotations

from .._core.state import Delta, wins
from ..errors import PartlyStoredError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..stores import Store
    from .own_writes import OwnWrites

__all__ = ["Uncommitted"]


class Uncommitted:
    """Registers applied to the replica and not committed to the store yet. Not thread-safe:
    the pipeline uses it under its write lock, under which every save happens."""

    __slots__ = ("_delta",)

    def __init__(self) -> None:
        self._delta: Delta = {}

    def __bool__(self) -> bool:
        return bool(self._delta)

    def __len__(self) -> int:
        """How many registers wait."""
        return sum(len(registers) for registers in self._delta.values())

    def joined(self, delta: Delta) -> Delta:
        """``delta`` with every waiting register (per key, the later of two wins, as in the
        store): what to save now. ``delta`` itself when nothing waits, the hot case."""
        waiting = self._delta
        if not waiting:
            return delta
        joined: Delta = {name: dict(registers) for name, registers in waiting.items()}
        for name, registers in delta.items():
            held = joined.setdefault(name, {})
            for key, register in registers.items():
                if wins(register, held.get(key)):
                    held[key] = register
        return joined

    def wait(self, delta: Delta) -> None:
        """``delta`` was applied; it waits for its commit."""
        self._delta = self.joined(delta)

    def save_write(
        self, store: Store | None, delta: Delta, own: OwnWrites
    ) -> tuple[Delta, PartlyStoredError | None]:
        """Save a local write with everything waiting: one atomic save, or, when it holds more
        registers than the store saves atomically (``Store.atomic_write_limit``: Redis would
        be held for seconds), a join saved in parts, as a merge is, whose versions ``own``
        records (this replica's transport skips them: it holds the write). Returns what was
        stored: ``(delta, None)``, or the parts stored before one failed with that error, for
        the replica to apply like a write before raising it: else it would lack what the store
        holds, and its transport, skipping those parts as its own, would not read them.
        Without a store, nothing is saved."""
        if store is None:
            return delta, None
        limit = store.atomic_write_limit
        if limit is not None and sum(map(len, delta.values())) > limit:
            return self._save_in_parts(store, delta, own)
        store.save(self.joined(delta))  # save_with's, without a call more on every write
        self._delta = {}
        return delta, None

    def _save_in_parts(
        self, store: Store, delta: Delta, own: OwnWrites
    ) -> tuple[Delta, PartlyStoredError | None]:
        # Apart from save_write: its closure would cost every small write three cells.
        try:
            own.record_merge(lambda: self.save_with(store, delta, join=True), keep_partial=True)
        except PartlyStoredError as exc:
            return exc.stored, exc
        return delta, None

    def save_with(self, store: Store, delta: Delta, *, join: bool = False) -> list[int]:
        """Save ``delta`` with everything waiting, which then waits no more (unless the store
        raises: then nothing was saved and it all still waits). ``join``: registers from
        elsewhere, which the store may save in parts (``Store.merge``); returns the versions
        the store says that merge produced, if it numbers its changes (else none)."""
        numbered = getattr(store, "merge_numbered", None) if join else None
        produced: list[int] = []
        if numbered is not None:
            produced = list(numbered(self.joined(delta)))
        else:
            (store.merge if join else store.save)(self.joined(delta))
        self._delta = {}
        return produced
