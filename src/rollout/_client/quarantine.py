"""The quarantine: registers refused because they were stamped too far in the future.

A register stamped more than ``max_offset`` ahead of this node's wall clock cannot be trusted: it
comes from a clock that ran ahead (or from someone forging timestamps), and under
last-writer-wins it would beat every honest write made to its key until real time caught up with
it. Refusing it once is not enough: anti-entropy offers it again every round, and it would be
accepted as soon as this clock came within ``max_offset`` of it (a time bomb).

So a refused register is *held* here with where it came from, and judged once: the same
register (flag, key and timestamp) offered again stays refused, however late, until an operator
resolves it: *accept* (its value is written again as a fresh local write, stamped now) or *drop*
(it is forgotten). Resolved registers are remembered (a bounded list) so a peer still holding one
cannot bring it back either.

The quarantine is fed by the network, so it is bounded: past :data:`QUARANTINE_LIMIT` registers,
new ones are refused without being held, and counted.

It is kept by the store (``Store.quarantine``/``quarantined``/``release``), so it survives a
restart: a peer still offering a held or judged register after this node restarts is refused as
before, and this node's own registers moved here after a clock step back are not lost. This
object loads the store's quarantine at start and writes every change through; its in-memory
index answers :meth:`Quarantine.judged`, which runs for every register merged.
"""

from __future__ import annotations

import operator
import threading
import time

from .._core.clock import Timestamp
from .._core.keys import is_history
from .._core.quarantine_book import QUARANTINE_LIMIT, QuarantineBook
from .._core.state import Delta, Register
from ..errors import ClosedError, StoreError
from .log import logger

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from .._core.quarantined import Judged, QuarantinedRegister
    from ..stores._base import Store

__all__ = ["QUARANTINE_LIMIT", "Quarantine"]

#: How often a store that could not be read at start is tried again (seconds).
_RELOAD_EVERY_S = 1.0
_WALL = operator.attrgetter("ts.wall")


class Quarantine:
    """The held registers of one replica, keyed by (flag, register key). Thread-safe.

    ``store``: where the quarantine is kept (None: in memory only). Its state is loaded now;
    if the store cannot be read yet (Redis away at start), loading is retried at most once a
    second while registers are screened, and merged with what was held meanwhile.
    """

    def __init__(self, store: Store | None = None, limit: int | None = None) -> None:
        self.store = store
        if limit is None:
            limit = store.quarantine_limit if store is not None else QUARANTINE_LIMIT
        self.limit = limit
        self._book = QuarantineBook(limit)
        if store is not None:
            self._book.verdicts_kept = store.verdicts_kept
        #: Registers refused but not held because the quarantine was full.
        self.overflow = 0
        self._lock = threading.Lock()
        self._loaded = store is None
        self._next_load = 0.0
        self._load()

    def _load(self) -> None:
        """Read the store's quarantine into the index (until it has been read once)."""
        if self._loaded or time.monotonic() < self._next_load or self.store is None:
            return
        with self._lock:
            if self._loaded:
                return
            try:
                state = self.store.quarantined()
            except (StoreError, ClosedError) as exc:
                self._next_load = time.monotonic() + _RELOAD_EVERY_S
                logger().warning("cannot read the quarantine from the store yet: %s", exc)
                return
            # What was held meanwhile (in memory only) joins what the store kept, and is
            # written through now.
            meanwhile = self._book
            self._book = QuarantineBook(meanwhile.limit, meanwhile.verdicts_kept)
            for judged in state.judged:
                self._book.judge(*judged)
            self._book.hold(state.held)
            self._loaded = True
            self._write_through(meanwhile.held.values(), list(meanwhile.judged))
            self._book.release(meanwhile.judged)
            self._book.hold(meanwhile.held.values())

    def reload(self) -> None:
        """Read the store's quarantine again (``Rollout.refresh()``): what other processes on
        the store held or resolved since. What only this process holds (a write-through that
        failed) is kept, and written through again, unless the store judged it meanwhile."""
        if self.store is None:
            return
        if not self._loaded:
            self._load()
            return
        try:
            state = self.store.quarantined()
        except (StoreError, ClosedError) as exc:
            logger().warning("cannot read the quarantine from the store: %s", exc)
            return
        with self._lock:
            mine = self._book
            self._book = QuarantineBook(mine.limit, mine.verdicts_kept)
            for judged in state.judged:
                self._book.judge(*judged)
            self._book.hold(state.held)
            stored = {(e.flag, e.key, e.timestamp) for e in state.held}
            only_here = [
                e
                for e in mine.held.values()
                if (e.flag, e.key, e.timestamp) not in stored
                and (e.flag, e.key, e.timestamp) not in self._book.judged
            ]
            if only_here:
                self._write_through(self._book.hold(only_here).added, [])

    def __len__(self) -> int:
        """Every held register, history events included (what the limit bounds)."""
        return len(self._book.held)

    @property
    def distrusted_nodes(self) -> int:
        """Nodes whose registers are refused up to a watermark (the quarantine overflowed)."""
        return len(self._book.distrusted)

    def count(self) -> int:
        """The held registers an operator resolves: history events left out."""
        with self._lock:
            return sum(1 for _, key in self._book.held if not is_history(key))

    def judges_nothing(self) -> bool:
        """Whether no register is held or judged: then :meth:`judged` is False for every one."""
        if not self._loaded:
            self._load()
        book = self._book
        return not book.held and not book.judged and not book.distrusted

    def judged(self, flag: str, key: str, ts: Timestamp) -> bool:
        """Whether this exact register was refused before (held, or resolved since)."""
        if not self._loaded:
            self._load()
        book = self._book
        if not book.held and not book.judged and not book.distrusted:
            return False  # the common case: one check per register merged, kept cheap
        with self._lock:
            return book.refuses(flag, key, ts)

    def screen(self, incoming: Delta, latest_allowed: int) -> tuple[Delta, Delta, int]:
        """``incoming`` split into ``(accepted, refused, how many refused)``: a register is
        refused when stamped after ``latest_allowed`` (wall ms) or judged before."""
        accepted: Delta = {}
        refused: Delta = {}
        count = 0
        judged = self.judged
        judges_nothing = self.judges_nothing()
        for name, registers in incoming.items():
            # The common case, a whole flag of a store or an export taken as it is, is found
            # without a Python step per register (a flag may list a million users).
            if judges_nothing and max(map(_WALL, registers.values()), default=0) <= latest_allowed:
                if registers:
                    accepted[name] = registers
                continue
            kept: dict[str, Register] = {}
            for key, register in registers.items():
                if register.ts.wall > latest_allowed or judged(name, key, register.ts):
                    refused.setdefault(name, {})[key] = register
                    count += 1
                else:
                    kept[key] = register
            if kept:
                accepted[name] = kept
        return accepted, refused, count

    def hold(self, refused: Delta, origin: str, now_ms: int) -> int:
        """Hold refused registers; returns how many are newly held (the rest: known or over the
        limit). Of two future registers under one key, the later one is held (it would win)."""
        # Imported here: a dataclass, loaded with the first register held (quarantined.py).
        from .._core.quarantined import QuarantinedRegister

        self._load()
        entries = [
            QuarantinedRegister(flag, key, register.value, register.ts, origin, now_ms)
            for flag, registers in refused.items()
            for key, register in registers.items()
        ]
        with self._lock:
            slots = set(self._book.held)
            result = self._book.hold(entries)
            self.overflow += result.overflow
            if result.overflow:
                logger().error(
                    "the quarantine is full (%d registers): %d more refused, and every register "
                    "their nodes stamped up to them is refused from now on (see `rollout "
                    "quarantine`; restart a node once its clock is fixed: it gets a new node id)",
                    self._book.limit,
                    result.overflow,
                )
            if result.added or result.judged:
                # The store applies the same rules: those judged here are judged there too.
                self._write_through([*result.added, *result.judged], [])
        return sum(1 for e in result.added if (e.flag, e.key) not in slots)

    def entries(self, flag: str | None = None) -> list[QuarantinedRegister]:
        """The held registers (of one flag), history events left out, by flag and key."""
        with self._lock:
            held = list(self._book.held.values())
        return sorted(
            (e for e in held if (flag is None or e.flag == flag) and not is_history(e.key)),
            key=lambda e: (e.flag, e.key),
        )

    def peek(self, flag: str, key: str | None = None) -> Delta:
        """What :meth:`take` would take, without taking it."""
        with self._lock:
            return self._select(flag, key)

    def take(self, flag: str, key: str | None = None) -> Delta:
        """Remove and return the held registers of ``flag`` (only ``key``, when given).

        A flag's held history events go with its last held register: they describe writes
        whose other registers are now resolved.
        """
        with self._lock:
            chosen = self._select(flag, key)
            taken = [(flag, k, r.ts) for k, r in chosen.get(flag, {}).items()]
            self._book.release(taken)
            if taken:
                self._write_through([], taken)
            return chosen

    def superseded_by(self, delta: Delta) -> Delta:
        """The held registers a local write rewrites: it wins over them, being later in real
        time (docs/operations.md, "Quarantine"), so they leave the quarantine and the store."""
        superseded: Delta = {}
        for name, registers in delta.items():
            for key in registers:
                if not is_history(key):
                    held = self.peek(name, key).get(name)
                    if held:
                        superseded.setdefault(name, {}).update(held)
        return superseded

    def take_superseded(self, superseded: Delta) -> int:
        """Take what :meth:`superseded_by` found; returns how many (history events aside)."""
        count = 0
        for name, registers in superseded.items():
            for key in registers:
                if not is_history(key):
                    taken = self.take(name, key).get(name, {})
                    count += sum(1 for k in taken if not is_history(k))
        return count

    def _select(self, flag: str, key: str | None) -> Delta:
        of_flag = {k: e for (f, k), e in self._book.held.items() if f == flag}
        if key is not None:
            state_left = [k for k in of_flag if not is_history(k) and k != key]
            of_flag = {
                k: e for k, e in of_flag.items() if k == key or (is_history(k) and not state_left)
            }
        if not of_flag:
            return {}
        return {flag: {k: Register(e.timestamp, e.value) for k, e in of_flag.items()}}

    def _write_through(self, held: Iterable[QuarantinedRegister], judged: list[Judged]) -> None:
        """Tell the store (called under the lock, so the store sees changes in their order)."""
        if self.store is None or not self._loaded:
            return  # in memory until the store has been read: _load writes it all then
        try:
            if judged:
                self.store.release(judged)
            held = list(held)
            if held:
                self.store.quarantine(held)
        except (StoreError, ClosedError) as exc:
            # Still held here, and refused as before until this process stops.
            logger().warning("could not keep the quarantine in the store: %s", exc)

    def __iter__(self) -> Iterator[QuarantinedRegister]:
        return iter(self.entries())
