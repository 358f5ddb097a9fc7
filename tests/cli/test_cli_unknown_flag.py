"""The installed ``rollout`` command on a real SQLite file: a removal from a flag that does not
exist exits 2 with one line naming the flag, and creates nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).parent / "rollout"

REMOVALS = [
    ("deactivate",),
    ("delete",),
    ("deactivate-user", "42", "7"),
    ("include-user", "42"),
    ("deactivate-group", "admins"),
    ("clear-data",),
]


def rollout(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
    return subprocess.run(
        [str(SCRIPT), "--store", f"sqlite:///{tmp_path / 'flags.db'}", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("command", REMOVALS, ids=[c[0] for c in REMOVALS])
def test_a_removal_from_a_missing_flag_exits_2_naming_it(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    rollout(tmp_path, "activate", "other")
    result = rollout(tmp_path, command[0], "ghost", *command[1:])
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "rollout: error: no flag named 'ghost' (nothing was changed)\n"
    listed = rollout(tmp_path, "list")
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["NAME", "other"]
    history = rollout(tmp_path, "history", "ghost")  # nothing was recorded either
    assert history.stderr == "rollout: error: no flag named 'ghost' and no history for it\n"


def test_delete_json_answers_as_the_api_does(tmp_path: Path) -> None:
    # DELETE /api/v1/flags/{name} answers {"deleted": name}; `--json delete` printed the shape of
    # a flag that no longer exists ("state": "off", as if it were still there).
    rollout(tmp_path, "activate", "gone")
    result = rollout(tmp_path, "--json", "delete", "gone")
    assert (result.returncode, result.stderr) == (0, "")
    assert json.loads(result.stdout) == {"deleted": "gone"}
    assert rollout(tmp_path, "--json", "list").stdout.strip() == "[]"
