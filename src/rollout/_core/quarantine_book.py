"""The quarantine's rules over two dicts (:class:`QuarantineBook`), and its bounds.

The client's in-memory index and the memory store use the book, and the SQLite, Redis and
PostgreSQL stores apply the same rules in their own transactions (rollout.testing.
StoreConformance checks all of them). What the quarantine holds, the public
:class:`~rollout._core.quarantined.QuarantinedRegister` and
:class:`~rollout._core.quarantined.QuarantineState`, are dataclasses in
rollout._core.quarantined; this module names them for the type checker only and loads them
when it first builds a state, because :mod:`dataclasses` loads :mod:`inspect` and :mod:`ast`
and every ``Rollout()`` makes a book (issue 15: ``import rollout`` stays light).
"""

from __future__ import annotations

from collections import OrderedDict

from .clock import Timestamp

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from .quarantined import Judged, QuarantinedRegister, QuarantineState

__all__ = [
    "MAX_DISTRUSTED_NODES",
    "QUARANTINE_LIMIT",
    "VERDICTS_KEPT",
    "Held",
    "QuarantineBook",
]

#: Registers held at most (a 1,000-user write from a bad clock is 1,000 of them).
QUARANTINE_LIMIT = 10_000
#: Judged registers remembered (the newest), so that a peer offering one again is still refused.
VERDICTS_KEPT = 10_000


class Held:
    """What :meth:`QuarantineBook.hold` did. (A plain class: a NamedTuple costs about ten times
    as much to define, at import.)"""

    __slots__ = ("added", "judged", "overflow")

    def __init__(
        self, added: list[QuarantinedRegister], judged: list[QuarantinedRegister], overflow: int
    ) -> None:
        #: The entries now held (a new key, or a later register under a held key).
        self.added = added
        #: The entries judged without being held (earlier than the one held under their key).
        self.judged = judged
        #: How many were not held because the quarantine was full.
        self.overflow = overflow

    def __repr__(self) -> str:
        return f"Held(added={self.added!r}, judged={self.judged!r}, overflow={self.overflow!r})"


#: Nodes whose registers are refused up to a watermark (QuarantineBook.distrusted), at most.
MAX_DISTRUSTED_NODES = 10_000


class QuarantineBook:
    """The quarantine's rules over two dicts. Not thread-safe: the owner locks around it."""

    def __init__(self, limit: int = QUARANTINE_LIMIT, verdicts_kept: int = VERDICTS_KEPT) -> None:
        self.limit = limit
        self.verdicts_kept = verdicts_kept
        self.held: dict[tuple[str, str], QuarantinedRegister] = {}
        #: Insertion-ordered, oldest first: the oldest verdicts are forgotten first.
        self.judged: OrderedDict[Judged, None] = OrderedDict()
        #: Node id -> the latest timestamp of that node refused but not remembered one by one
        #: (over the limit, or a verdict forgotten): every register that node stamped up to it
        #: is refused. Coarse, so a flood (a bulk write from a bad clock, a hostile member)
        #: cannot turn what no longer fits into registers applied late.
        self.distrusted: dict[int, Timestamp] = {}

    def refuses(self, flag: str, key: str, ts: Timestamp) -> bool:
        """Whether this register was judged: held, resolved, or under its node's watermark."""
        held = self.held.get((flag, key))
        if held is not None and held.timestamp == ts:
            return True
        if (flag, key, ts) in self.judged:
            return True
        mark = self.distrusted.get(ts.node)
        return mark is not None and ts <= mark

    def _distrust(self, ts: Timestamp) -> None:
        mark = self.distrusted.get(ts.node)
        if mark is None or ts > mark:
            if mark is None and len(self.distrusted) >= MAX_DISTRUSTED_NODES:
                return  # bounded too; past it, only a member with the secret minting node ids
            self.distrusted[ts.node] = ts

    def hold(self, entries: Iterable[QuarantinedRegister]) -> Held:
        """Hold ``entries``: the ones now held, the ones judged instead, how many did not fit.

        A judged register is not held again. Of two registers under one key the later is held
        (it is the one that would win) and the earlier judged. Past the limit, new keys are
        refused (counted) rather than evicting what is held.
        """
        added: list[QuarantinedRegister] = []
        judged: list[QuarantinedRegister] = []
        overflow = 0
        for entry in entries:
            if (entry.flag, entry.key, entry.timestamp) in self.judged:
                continue
            slot = (entry.flag, entry.key)
            current = self.held.get(slot)
            if current is not None:
                if entry.timestamp <= current.timestamp:
                    if entry.timestamp < current.timestamp:
                        self.judge(entry.flag, entry.key, entry.timestamp)
                        judged.append(entry)
                    continue
                self.judge(current.flag, current.key, current.timestamp)
            elif len(self.held) >= self.limit:
                overflow += 1
                self._distrust(entry.timestamp)
                continue
            self.held[slot] = entry
            added.append(entry)
        return Held(added, judged, overflow)

    def release(self, registers: Iterable[Judged]) -> None:
        """Judge ``registers``: each leaves the held ones if it is still the one held there (the
        same timestamp), and is remembered as judged."""
        for flag, key, ts in registers:
            current = self.held.get((flag, key))
            if current is not None and current.timestamp == ts:
                del self.held[(flag, key)]
            self.judge(flag, key, ts)

    def judge(self, flag: str, key: str, ts: Timestamp) -> None:
        self.judged[(flag, key, ts)] = None
        self.judged.move_to_end((flag, key, ts))
        while len(self.judged) > self.verdicts_kept:
            forgotten, _ = self.judged.popitem(last=False)
            self._distrust(forgotten[2])

    def state(self) -> QuarantineState:
        from .quarantined import QuarantineState  # here: a dataclass (see above)

        return QuarantineState(list(self.held.values()), list(self.judged))
