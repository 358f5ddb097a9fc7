"""One recorded change, as :meth:`Rollout.history` returns it: :class:`HistoryEvent`.

Apart from rollout._core.history (which writes and bounds the events as registers) because it
is a dataclass with a datetime: loading :mod:`dataclasses` loads :mod:`inspect` and :mod:`ast`,
and a process that never reads its history should not pay for them at import (issue 15).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .clock import Timestamp

__all__ = ["HistoryEvent"]


@dataclass(frozen=True)
class HistoryEvent:
    """One change to one flag.

    ``action`` is the method that made it (``activate_user``, ``delete``, ``degraded`` ...);
    ``before`` and ``after`` hold only what it changed (``{"percentage": 20.0}`` →
    ``{"percentage": 50.0}``; ``{"user:42": False}`` → ``{"user:42": True}``). ``node`` is the
    name of the process that made the change (``Rollout(node_name=...)``, by default
    ``host:pid``); ``actor`` who (``with_context(user=...)``, the API token's name, ``--as``).
    """

    flag: str
    action: str
    before: Mapping[str, Any]
    after: Mapping[str, Any]
    at: datetime.datetime
    node: str
    actor: str | None = None
    reason: str | None = None
    timestamp: Timestamp = field(default=Timestamp(0, 0, 0), repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """As plain JSON data (``at`` in ISO 8601, UTC)."""
        return {
            "flag": self.flag,
            "action": self.action,
            "before": dict(self.before),
            "after": dict(self.after),
            "at": self.at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "node": self.node,
            "actor": self.actor,
            "reason": self.reason,
        }

    @classmethod
    def from_register(cls, flag: str, ts: Timestamp, value: Mapping[str, Any]) -> HistoryEvent:
        return cls(
            flag=flag,
            action=str(value.get("action", "")),
            before=value.get("before") or {},
            after=value.get("after") or {},
            at=datetime.datetime.fromtimestamp(ts.wall / 1000, datetime.UTC),
            node=str(value.get("node", "")),
            actor=value.get("actor"),
            reason=value.get("reason"),
            timestamp=ts,
        )
