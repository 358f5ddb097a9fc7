"""Rollout: feature flags for Python services.

A check is a local, in-memory read; changes replicate as last-writer-wins registers stamped with
hybrid logical clocks, so no edit is ever lost. Start with :class:`Rollout`.
"""

from __future__ import annotations

from ._client.rollout import Rollout
from ._core.clock import Timestamp
from ._core.feature import Feature
from ._core.lazy import lazy_names
from ._core.targeting import Resolution, RuleError
from .errors import (
    ClockSkewError,
    ClosedError,
    FormatError,
    MissingExtraError,
    PartlyStoredError,
    RolloutError,
    StoreError,
    StoreOutcomeUnknownError,
    StoreUnavailableError,
    UnknownFlagError,
)
from .stores import Store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._core.explain import Explanation
    from ._core.history_event import HistoryEvent
    from .memory import MemoryStore
    from .sqlite import SQLiteStore

__all__ = [
    "ClockSkewError",
    "ClosedError",
    "Explanation",
    "Feature",
    "FormatError",
    "HistoryEvent",
    "MemoryStore",
    "MissingExtraError",
    "PartlyStoredError",
    "Resolution",
    "Rollout",
    "RolloutError",
    "RuleError",
    "SQLiteStore",
    "Store",
    "StoreError",
    "StoreOutcomeUnknownError",
    "StoreUnavailableError",
    "Timestamp",
    "UnknownFlagError",
]

__version__ = "0.1.0"


#: Public names loaded when first asked for (issue 15: a Rollout in memory never needs them):
#: SQLiteStore loads sqlite3, pathlib and urllib.parse; the two result types are dataclasses,
#: and dataclasses loads inspect and ast; Rollout() with no store needs no MemoryStore.
_LAZY = {
    "MemoryStore": "rollout.memory",
    "SQLiteStore": "rollout.sqlite",
    "Explanation": "rollout._core.explain",
    "HistoryEvent": "rollout._core.history_event",
}


__getattr__ = lazy_names(globals(), _LAZY)
