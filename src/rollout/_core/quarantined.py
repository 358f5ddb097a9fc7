"""What the quarantine holds, and its rules, as plain data: shared by the client and the stores.

A quarantined register is one refused because it was stamped too far in the future; it is
*held* (one per flag and register key: the latest, the one that would win) until an operator
resolves it. Every register refused once is *judged*: the same flag, key and timestamp offered
again is refused, however late. :class:`QuarantineBook` applies those rules to dicts; the
client's in-memory index and the memory store use it, and the SQLite and Redis stores apply the
same rules in their own transactions (rollout.testing.StoreConformance checks all of them).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .clock import Timestamp

__all__ = [
    "QUARANTINE_LIMIT",
    "VERDICTS_KEPT",
    "Held",
    "Judged",
    "QuarantineBook",
    "QuarantineState",
    "QuarantinedRegister",
]

#: Registers held at most (a 1,000-user write from a bad clock is 1,000 of them).
QUARANTINE_LIMIT = 10_000
#: Judged registers remembered (the newest), so that a peer offering one again is still refused.
VERDICTS_KEPT = 10_000

#: A register judged once: ``(flag, register key, timestamp)``.
Judged = tuple[str, str, Timestamp]


@dataclass(frozen=True)
class QuarantinedRegister:
    """One register held in the quarantine (``Rollout.quarantined()``)."""

    flag: str
    key: str
    value: Any
    timestamp: Timestamp
    #: Where it came from: ``peer``, ``store``, ``merge`` (``Rollout.merge``), or ``own clock``
    #: (this node stamped it before its wall clock stepped back).
    origin: str
    #: This node's wall clock (ms since the epoch) when it was refused.
    quarantined_at_ms: int

    @property
    def node(self) -> str:
        """The node that stamped it (from its timestamp), as 16 hex digits."""
        return f"{self.timestamp.node:016x}"

    @property
    def ahead_ms(self) -> int:
        """How far ahead of this node's clock it was stamped, when it was refused."""
        return self.timestamp.wall - self.quarantined_at_ms

    def to_dict(self) -> dict[str, Any]:
        return {
            "flag": self.flag,
            "key": self.key,
            "value": self.value,
            "timestamp": list(self.timestamp),
            "node": self.node,
            "origin": self.origin,
            "quarantined_at_ms": self.quarantined_at_ms,
            "ahead_ms": self.ahead_ms,
        }


@dataclass
class QuarantineState:
    """Everything a store keeps of the quarantine: the held registers, and the judged ones
    (oldest verdict first)."""

    held: list[QuarantinedRegister] = field(default_factory=list)
    judged: list[Judged] = field(default_factory=list)


@dataclass
class Held:
    """What :meth:`QuarantineBook.hold` did."""

    #: The entries now held (a new key, or a later register under a held key).
    added: list[QuarantinedRegister]
    #: The entries judged without being held (earlier than the one held under their key).
    judged: list[QuarantinedRegister]
    #: How many were not held because the quarantine was full.
    overflow: int


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
        return QuarantineState(list(self.held.values()), list(self.judged))
