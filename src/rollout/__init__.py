"""Rollout: feature flags for Python services.

A check is a local, in-memory read; changes replicate as last-writer-wins registers stamped with
hybrid logical clocks, so no edit is ever lost. Start with :class:`Rollout`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._client.rollout import Rollout
from ._core.clock import Timestamp
from ._core.explain import Explanation
from ._core.feature import Feature
from ._core.history import HistoryEvent
from ._core.targeting import Resolution, RuleError
from .errors import (
    ClockSkewError,
    ClosedError,
    FormatError,
    MissingExtraError,
    RolloutError,
    StoreError,
    StoreOutcomeUnknownError,
    StoreUnavailableError,
    UnknownFlagError,
)
from .stores import MemoryStore, Store

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    # SQLiteStore loads when first asked for: sqlite3, pathlib and urllib.parse are a fifth of
    # `import rollout`, and Rollout() with no store, or a Redis one, never opens a file.
    if name == "SQLiteStore":
        from .sqlite import SQLiteStore

        return SQLiteStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
