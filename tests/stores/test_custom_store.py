"""A store written only against public names (tests/stores/json_store.py) passes the
conformance suite and backs a Rollout."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from rollout import Rollout, Store, StoreError
from rollout.testing import StoreConformance

from .json_store import JSONFileStore


class TestJSONFileStore(StoreConformance):
    @pytest.fixture(autouse=True)
    def _folder(self, tmp_path: Path) -> None:
        self.path = tmp_path / "flags.json"

    def make_store(self) -> Store:
        return JSONFileStore(self.path)

    def reopen(self, store: Store) -> Store:
        return JSONFileStore(self.path)


def test_the_store_uses_public_names_only() -> None:
    source = (Path(__file__).parent / "json_store.py").read_text()
    imported = [
        node.module
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.module
    ]
    ours = [name for name in imported if name.split(".")[0] == "rollout"]
    assert ours == ["rollout", "rollout.stores"]
    assert not any(part.startswith("_") for name in ours for part in name.split("."))


def test_two_rollouts_share_the_file(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    with Rollout(JSONFileStore(path)) as first:
        first.activate_percentage("chat", 20)
        first.set_feature_data("chat", {"owner": "web"})
        with Rollout(JSONFileStore(path)) as second:
            assert second.get("chat").percentage == 20
            second.activate_user("chat", 42)
            first.refresh()
            assert first.active("chat", 42)
            assert first.get("chat").data == {"owner": "web"}


def test_a_damaged_file_is_a_store_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    path.write_bytes(b'{"format": "rollout", "version": 1, "flags": {"chat": 7}}')
    with pytest.raises(StoreError, match=r"flags\.json is damaged: .*'chat'"):
        JSONFileStore(path).load()
