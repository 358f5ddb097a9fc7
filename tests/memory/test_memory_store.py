"""The memory store passes the shared store conformance suite."""

from __future__ import annotations

from rollout import MemoryStore, Store
from rollout.testing import StoreConformance


class TestMemoryStore(StoreConformance):
    def make_store(self) -> Store:
        return MemoryStore()
