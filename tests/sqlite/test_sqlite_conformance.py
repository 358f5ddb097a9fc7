"""The SQLite store passes the shared store conformance suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollout import SQLiteStore, Store
from rollout.testing import StoreConformance


class TestSQLiteStore(StoreConformance):
    @pytest.fixture(autouse=True)
    def _directory(self, tmp_path: Path) -> None:
        self.path = tmp_path / "flags.db"

    def make_store(self) -> Store:
        return SQLiteStore(self.path)

    def reopen(self, store: Store) -> Store:
        return SQLiteStore(self.path)
