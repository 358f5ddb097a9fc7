"""The in-memory backend: a store for one process (and for tests) and an in-process transport."""

from __future__ import annotations

from ._store import MemoryStore

__all__ = ["MemoryStore"]
