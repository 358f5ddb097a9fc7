"""The command line says PERCENTAGE in usage, and its errors say percentage, word for word what
the library and the HTTP API say for the same value."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollout.cli import main


@pytest.fixture(autouse=True)
def _no_store_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROLLOUT_STORE", raising=False)


@pytest.mark.parametrize("command", ["percentage", "percentage-of-time"])
def test_usage_and_errors_say_percentage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    store = f"sqlite:///{tmp_path / 'flags.db'}"
    assert main(["--store", store, command, "--help"]) == 0
    usage = capsys.readouterr().out
    assert "NAME PERCENTAGE" in usage
    assert "PCT" not in usage
    assert main(["--store", store, command, "chat", "lots"]) == 2
    assert capsys.readouterr().err == (
        "rollout: error: percentage must be a number from 0 to 100, got 'lots'\n"
    )  # as the API answers {"percentage": "lots"}: one word for one thing, whatever was typed
    assert main(["--store", store, command, "chat", "150"]) == 2
    assert capsys.readouterr().err == (
        "rollout: error: percentage must be a number from 0 to 100, got 150\n"
    )
