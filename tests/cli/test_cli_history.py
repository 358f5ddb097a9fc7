"""``rollout history`` and ``--as`` / ``--reason``: who changed what, from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rollout import Rollout
from rollout.cli import main

SCRIPT = Path(sys.executable).parent / "rollout"


@pytest.fixture(autouse=True)
def _no_rollout_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ROLLOUT_"):
            monkeypatch.delenv(name)


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'flags.db'}"


def cli(store: str, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["--store", store, *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def events(store: str, capsys: pytest.CaptureFixture[str], name: str) -> list[dict[str, Any]]:
    status, out, err = cli(store, capsys, "history", name, "--json")
    assert (status, err) == (0, "")
    result: list[dict[str, Any]] = json.loads(out)
    return result


def test_as_and_reason_name_who_made_a_change_and_why(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(store, capsys, "activate", "chat", "--as", "alice", "--reason", "launch")[0] == 0
    [event] = events(store, capsys, "chat")
    assert (event["actor"], event["reason"], event["action"]) == ("alice", "launch", "activate")
    assert event["after"] == {"exists": True, "percentage": 100.0}


def test_without_as_the_actor_is_the_login_name(
    store: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGNAME", "carol")  # what getpass.getuser() reads first
    assert cli(store, capsys, "percentage", "chat", "20")[0] == 0
    assert events(store, capsys, "chat")[0]["actor"] == "carol"


@pytest.mark.parametrize(
    "command",
    [
        ["activate", "f"],
        ["deactivate", "f"],
        ["activate-user", "f", "2"],
        ["deactivate-user", "f", "1"],
        ["exclude-user", "f", "2"],
        ["include-user", "f", "1"],
        ["activate-group", "f", "admins"],
        ["deactivate-group", "f", "all"],
        ["percentage", "f", "5"],
        ["percentage-of-time", "f", "5"],
        ["data", "f", "owner=ops"],
        ["clear-data", "f"],
        ["delete", "f"],
    ],
)
def test_every_write_command_takes_as(
    store: str, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    # A flag where every command changes something (a write that changes nothing records no
    # event), and where every removal finds a flag.
    with Rollout(store) as flags:
        flags.activate_percentage("f", 1)
        flags.activate_percentage_of_time("f", 1)
        flags.activate_user("f", 1)
        flags.exclude_user("f", 1)
        flags.activate_group("f", "all")
        flags.set_feature_data("f", {"owner": "web"})
    assert cli(store, capsys, *command, "--as", "dave")[0] == 0
    assert events(store, capsys, "f")[0]["actor"] == "dave"


def test_history_shows_when_where_who_what_and_why_newest_first(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with Rollout(store, node_name="web-1") as flags, flags.with_context(user="bob"):
        flags.activate_percentage("chat", 20)
    cli(store, capsys, "percentage", "chat", "50", "--as", "alice", "--reason", "more users")
    cli(store, capsys, "activate-user", "chat", "42", "--as", "alice")
    status, out, err = cli(store, capsys, "history", "chat")
    assert (status, err) == (0, "")
    header, *rows = out.splitlines()
    assert header.split() == ["WHEN", "(UTC)", "NODE", "ACTOR", "ACTION", "CHANGE", "REASON"]
    assert len(rows) == 3
    assert "alice" in rows[0]
    assert "activate_users" in rows[0]
    assert "added user 42" in rows[0]  # as the dashboard words it
    assert "percentage of users: 20% → 50%" in rows[1]
    assert rows[1].rstrip().endswith("more users")
    assert "web-1" in rows[2]
    assert "bob" in rows[2]
    assert "created, percentage of users: 0% → 20%" in rows[2]
    assert rows[2].split()[0].endswith("Z")  # ISO 8601, UTC


def test_history_limit_and_json(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    for pct in ("10", "20", "30"):
        cli(store, capsys, "percentage", "chat", pct, "--as", "ci")
    status, out, _ = cli(store, capsys, "history", "chat", "--limit", "2", "--json")
    assert status == 0
    shown = json.loads(out)
    assert [e["after"]["percentage"] for e in shown] == [30.0, 20.0]
    assert set(shown[0]) == {"flag", "action", "before", "after", "at", "node", "actor", "reason"}


def test_a_deleted_flag_keeps_its_history(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    cli(store, capsys, "activate", "old", "--as", "alice")
    cli(store, capsys, "delete", "old", "--as", "bob")
    status, out, _ = cli(store, capsys, "history", "old")
    assert status == 0
    assert "bob" in out.splitlines()[1]
    assert "deleted" in out.splitlines()[1]


def test_history_of_an_unknown_flag_is_an_error(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cli(store, capsys, "activate", "other")  # the store exists: reads open existing stores only
    status, out, err = cli(store, capsys, "history", "nope")
    assert (status, out) == (2, "")
    assert err == "rollout: error: no flag named 'nope' and no history for it\n"
    status, _, err = cli(store, capsys, "history", "x", "--limit", "-1")
    assert status == 2
    assert "limit must be an int >= 0" in err


def test_read_commands_do_not_take_as(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = cli(store, capsys, "list", "--as", "alice")
    assert status == 2
    assert "unrecognized arguments: --as" in err


def test_end_to_end_with_the_installed_command(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(SCRIPT), *args], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip

    assert run("activate-user", "beta", "7", "--as", "erin", "--reason", "pilot").returncode == 0
    shown = run("history", "beta")
    assert shown.returncode == 0, shown.stderr
    row = shown.stdout.splitlines()[1]
    assert "erin" in row
    assert "created, added user 7" in row
    assert row.rstrip().endswith("pilot")
    assert run("activate-user", "beta", "100", "9").returncode == 0
    newest = run("history", "beta").stdout.splitlines()[1]
    assert "added user 9, added user 100" in newest  # ids as people read them: 9 before 100
