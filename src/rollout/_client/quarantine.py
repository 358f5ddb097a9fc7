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
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .._core.clock import Timestamp
from .._core.keys import is_history
from .._core.state import Delta, Register

__all__ = ["QUARANTINE_LIMIT", "Quarantine", "QuarantinedRegister"]

#: Registers held at most (a 1,000-user write from a bad clock is 1,000 of them).
QUARANTINE_LIMIT = 10_000
#: Resolved registers remembered, so that a peer offering one again is still refused.
_VERDICTS_KEPT = 10_000


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


class Quarantine:
    """The held registers of one replica, keyed by (flag, register key). Thread-safe."""

    def __init__(self, limit: int = QUARANTINE_LIMIT) -> None:
        self.limit = limit
        self._held: dict[tuple[str, str], QuarantinedRegister] = {}
        self._verdicts: OrderedDict[tuple[str, str, Timestamp], None] = OrderedDict()
        #: Registers refused but not held because the quarantine was full.
        self.overflow = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Every held register, history events included (what the limit bounds)."""
        return len(self._held)

    def count(self) -> int:
        """The held registers an operator resolves: history events left out."""
        with self._lock:
            return sum(1 for _, key in self._held if not is_history(key))

    def judged(self, flag: str, key: str, ts: Timestamp) -> bool:
        """Whether this exact register was refused before (held, or resolved since)."""
        if not self._held and not self._verdicts:
            return False  # the common case: one check per register merged, kept cheap
        with self._lock:
            held = self._held.get((flag, key))
            return (held is not None and held.timestamp == ts) or (
                flag,
                key,
                ts,
            ) in self._verdicts

    def hold(self, refused: Delta, origin: str, now_ms: int) -> int:
        """Hold refused registers; returns how many are newly held (the rest: known or over the
        limit). Of two future registers under one key, the later one is held (it would win)."""
        added = 0
        with self._lock:
            for flag, registers in refused.items():
                for key, register in registers.items():
                    if (flag, key, register.ts) in self._verdicts:
                        continue  # resolved already: refused, and not held again
                    slot = (flag, key)
                    current = self._held.get(slot)
                    if current is not None:
                        if register.ts <= current.timestamp:
                            if register.ts < current.timestamp:
                                self._remember(flag, key, register.ts)
                            continue
                        self._remember(flag, key, current.timestamp)
                    elif len(self._held) >= self.limit:
                        self.overflow += 1
                        continue
                    self._held[slot] = QuarantinedRegister(
                        flag, key, register.value, register.ts, origin, now_ms
                    )
                    added += current is None
        return added

    def entries(self, flag: str | None = None) -> list[QuarantinedRegister]:
        """The held registers (of one flag), history events left out, by flag and key."""
        with self._lock:
            held = list(self._held.values())
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
            for register_key, register in chosen.get(flag, {}).items():
                del self._held[(flag, register_key)]
                self._remember(flag, register_key, register.ts)
            return chosen

    def _select(self, flag: str, key: str | None) -> Delta:
        of_flag = {k: e for (f, k), e in self._held.items() if f == flag}
        if key is not None:
            state_left = [k for k in of_flag if not is_history(k) and k != key]
            of_flag = {
                k: e for k, e in of_flag.items() if k == key or (is_history(k) and not state_left)
            }
        if not of_flag:
            return {}
        return {flag: {k: Register(e.timestamp, e.value) for k, e in of_flag.items()}}

    def _remember(self, flag: str, key: str, ts: Timestamp) -> None:
        self._verdicts[(flag, key, ts)] = None
        while len(self._verdicts) > _VERDICTS_KEPT:
            self._verdicts.popitem(last=False)

    def __iter__(self) -> Iterator[QuarantinedRegister]:
        return iter(self.entries())
