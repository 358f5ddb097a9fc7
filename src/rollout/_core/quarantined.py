"""What the quarantine holds, as plain data: shared by the client and the stores.

A quarantined register is one refused because it was stamped too far in the future; it is
*held* (one per flag and register key: the latest, the one that would win) until an operator
resolves it. Every register refused once is *judged*: the same flag, key and timestamp offered
again is refused, however late. The rules are rollout._core.quarantine_book's
:class:`~rollout._core.quarantine_book.QuarantineBook`, apart from these types because they are
dataclasses (:mod:`dataclasses` loads :mod:`inspect` and :mod:`ast`) and every ``Rollout()``
makes a book, while these load with the first register held or state read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .clock import Timestamp

__all__ = ["Judged", "QuarantineState", "QuarantinedRegister"]

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
