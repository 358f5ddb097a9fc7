"""``rollout quarantine``: list, accept and drop what a clock that ran ahead left in a store."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from rollout import Rollout
from rollout._core.clock import system_clock_ms
from rollout.cli import main
from rollout.sqlite import SQLiteStore
from rollout.testing import FakeClock

HOUR = 3_600_000


@pytest.fixture(autouse=True)
def _no_rollout_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ROLLOUT_"):
            monkeypatch.delenv(name)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """A store written by a process whose clock ran an hour ahead."""
    db = tmp_path / "flags.db"
    with Rollout(f"sqlite:///{db}", clock=FakeClock(system_clock_ms() + HOUR)) as ahead:
        ahead.activate_users("chat", [1, 2])
    return db


def cli(path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["--store", f"sqlite:///{path}", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def held(path: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    status, out, err = cli(path, capsys, "quarantine", "--json")
    assert (status, err) == (0, "")
    result: list[dict[str, Any]] = json.loads(out)
    return result


def test_list_shows_what_the_store_holds_from_the_future(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = cli(path, capsys, "quarantine")
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["FLAG", "KEY", "VALUE", "STAMPED", "BY", "FROM", "AHEAD"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["chat", "exists", "true"],
        ["chat", "user:1", "true"],
        ["chat", "user:2", "true"],
    ]
    assert all(line.split()[4] == "store" for line in lines[1:])
    assert [e["key"] for e in held(path, capsys)] == ["exists", "user:1", "user:2"]
    assert "chat" not in cli(path, capsys, "list")[1]  # not applied


def test_accept_writes_the_values_now_and_records_who(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = cli(
        path, capsys, "quarantine", "accept", "chat", "user:1", "--as", "bob", "--reason", "ntp"
    )
    assert (status, err) == (0, "")
    assert out == "chat: 1 quarantined register accepted (written again, stamped now)\n"
    # exists was rewritten by the accept too: only user:2 is left.
    assert [e["key"] for e in held(path, capsys)] == ["user:2"]
    status, out, _ = cli(path, capsys, "show", "chat", "--json")
    assert json.loads(out)["users"] == ["1"]
    status, out, _ = cli(path, capsys, "history", "chat", "--json")
    event = json.loads(out)[0]
    assert (event["action"], event["actor"], event["reason"]) == ("quarantine_accept", "bob", "ntp")
    store = SQLiteStore(path)
    try:
        registers = store.load()["chat"]
    finally:
        store.close()
    assert registers["user:1"].ts.wall < system_clock_ms() + 60_000  # stamped now, not +1 h


def test_drop_forgets_them_for_good(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = cli(path, capsys, "quarantine", "drop", "chat", "--json")
    assert (status, err) == (0, "")
    assert json.loads(out) == {"flag": "chat", "action": "drop", "registers": 3}
    assert held(path, capsys) == []
    empty = cli(path, capsys, "quarantine")[1]
    # And where else held registers may be: a memory-store node's memory, asked through its API.
    assert empty.startswith(
        "nothing is quarantined here; a `rollout serve` node on a memory:// store"
    )
    assert "rollout quarantine --url http://HOST:PORT" in empty
    # Gone from the store too: a later run finds nothing to hold.
    with Rollout(f"sqlite:///{path}") as flags:
        assert flags.quarantined() == []
        assert flags.exists("chat") is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("quarantine", "accept"), "needs a FLAG"),
        (("quarantine", "drop", "other"), "nothing is quarantined for flag 'other'"),
        (("quarantine", "accept", "chat", "user:9"), "nothing is quarantined for flag 'chat' key"),
        (("quarantine", "list", "chat", "user:1"), "list takes a FLAG only"),
    ],
)
def test_mistakes_are_one_line_and_status_2_and_change_nothing(
    path: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    status, out, err = cli(path, capsys, *args)
    assert (status, out) == (2, "")
    assert err.startswith("rollout: error: ")
    assert message in err
    assert len(held(path, capsys)) == 3


def test_an_unknown_action_is_a_usage_error(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = cli(path, capsys, "quarantine", "release", "chat")
    assert status == 2
    assert "invalid choice: 'release'" in err
