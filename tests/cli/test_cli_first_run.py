"""A new user's first commands, run as they would be: the installed ``rollout`` command in a
fresh folder. Reads never create a store, mistakes in ``--store`` say what to write instead,
and a missing optional dependency is one line naming the extra to install."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import rollout
from rollout import Rollout
from rollout.errors import MissingExtraError, RolloutError

from ..admin.serve_process import clean_env
from ..admin.serve_process import rollout as run


def one_error_line(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """The single ``rollout: error:`` line of a failed command (exit status 2, no traceback)."""
    assert result.returncode == 2, result
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("rollout: error: "), line
    for needle in needles:
        assert needle in line, line
    return line


def files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


@pytest.mark.parametrize(
    "args",
    [
        ["list"],
        ["show", "chat"],
        ["check", "chat"],
        ["export"],
        ["history", "chat"],
        ["quarantine"],
        ["quarantine", "drop", "chat"],
        ["export-ruby", "--redis", "redis://127.0.0.1:1/0"],  # refused before Redis is asked
        ["delete", "chat"],
        ["deactivate", "chat"],
        ["deactivate-user", "chat", "42"],
        ["clear-data", "chat"],
        ["remove-rule", "pro"],
        ["disable-flag", "chat"],  # removals
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_a_read_in_an_empty_folder_creates_no_store(args: list[str], tmp_path: Path) -> None:
    result = run(*args, cwd=tmp_path)
    one_error_line(result, "no SQLite store at 'rollout.db'", "nothing was created")
    assert files(tmp_path) == []


def test_a_typo_in_the_store_is_an_error_not_off(tmp_path: Path) -> None:
    """A deploy gate reading `check`'s exit status 1 as "off" must not see a typo as off."""
    assert run("--store", "sqlite:///flags.db", "activate", "chat", cwd=tmp_path).returncode == 0
    assert run("--store", "sqlite:///flags.db", "check", "chat", cwd=tmp_path).returncode == 0
    typo = run("--store", "sqlite:///typo.db", "check", "chat", cwd=tmp_path)
    one_error_line(typo, "'typo.db'", "sqlite:///relative.db")
    assert files(tmp_path) == ["flags.db"]


def test_a_write_still_creates_the_store(tmp_path: Path) -> None:
    assert run("activate", "chat", cwd=tmp_path).returncode == 0
    assert "rollout.db" in files(tmp_path)
    listed = run("list", cwd=tmp_path)
    assert (listed.returncode, listed.stderr) == (0, "")
    assert "chat" in listed.stdout


def test_a_missing_folder_is_still_named(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'no-such-folder' / 'flags.db'}"
    one_error_line(run("--store", store, "list", cwd=tmp_path), "no-such-folder")
    assert files(tmp_path) == []


@pytest.mark.parametrize(
    ("given", "suggested"),
    [("/tmp/x.db", "'sqlite:////tmp/x.db'"), ("flags.db", "'sqlite:///flags.db'")],
)
def test_a_path_without_a_scheme_suggests_the_url(
    given: str, suggested: str, tmp_path: Path
) -> None:
    for command in (["list"], ["activate", "chat"]):
        one_error_line(run("--store", given, *command, cwd=tmp_path), "no scheme", suggested)
    assert files(tmp_path) == []
    with pytest.raises(ValueError, match="sqlite:///"):
        Rollout(given)


def test_memory_without_peers_warns_that_nothing_is_kept(tmp_path: Path) -> None:
    result = run("--store", "memory://", "activate", "chat", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "chat: on for everybody\n")
    [warning] = result.stderr.splitlines()
    assert warning.startswith("rollout: warning: memory:// keeps nothing")


# The redis extra ----------------------------------------------------------------------------


@pytest.fixture
def without_redis(tmp_path: Path) -> dict[str, str]:
    """An environment in which `import redis` fails, as it does without the redis extra: a
    path entry ahead of site-packages holds a `redis` package that raises ImportError."""
    hidden = tmp_path / "hide-redis" / "redis"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError(\"No module named 'redis'\")\n")
    path = [str(hidden.parent), os.environ.get("PYTHONPATH", "")]
    return clean_env(PYTHONPATH=os.pathsep.join(p for p in path if p))


def test_the_cli_names_the_redis_extra(without_redis: dict[str, str], tmp_path: Path) -> None:
    for url in ("redis://127.0.0.1:1/0", "redis+sentinel://127.0.0.1:1/mymaster"):
        result = run("--store", url, "list", cwd=tmp_path, env=without_redis)
        one_error_line(result, "pip install 'rollout[redis]'")
        assert "Traceback" not in result.stderr


def test_the_library_raises_an_import_error_naming_the_extra(
    without_redis: dict[str, str], tmp_path: Path
) -> None:
    code = (
        "import rollout\n"
        "try:\n"
        "    rollout.Rollout('redis://127.0.0.1:1/0')\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, isinstance(exc, rollout.RolloutError), exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=without_redis,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("MissingExtraError True "), result.stdout
    assert "pip install 'rollout[redis]'" in result.stdout


def test_missing_extra_error_is_both_kinds() -> None:
    assert issubclass(MissingExtraError, ImportError)
    assert issubclass(MissingExtraError, RolloutError)


# The front door -------------------------------------------------------------------------------


def test_version(tmp_path: Path) -> None:
    result = run("--version", cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        f"rollout {rollout.__version__}\n",
        "",
    )


def test_rollout_alone_lists_the_commands(tmp_path: Path) -> None:
    """A usage error as argparse has it (stderr, exit status 2), but with the command list."""
    result = run(cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    for command in ("list", "show", "check", "activate", "percentage", "serve", "history"):
        assert f"    {command}" in result.stderr
    assert files(tmp_path) == []


def test_show_sorts_numeric_ids_by_value_and_limits(tmp_path: Path) -> None:
    run("activate-user", "chat", "10", "2", "1", "abc", "300", "9", cwd=tmp_path)
    run("exclude-user", "chat", "20", "3", cwd=tmp_path)
    shown = run("show", "chat", cwd=tmp_path)
    values = [line.split()[-1] for line in shown.stdout.splitlines()]
    users = values.index("1")
    assert values[users : users + 6] == ["1", "2", "9", "10", "300", "abc"]
    assert values[values.index("3") + 1] == "20"
    limited = run("show", "chat", "--limit", "2", cwd=tmp_path)
    assert limited.returncode == 0, limited.stderr
    lines = [" ".join(line.split()) for line in limited.stdout.splitlines()]
    start = lines.index("users 1")
    assert lines[start : start + 3] == ["users 1", "2", "... and 4 more"]
    excluded = lines.index("excluded users 3")
    assert lines[excluded + 1] == "20"  # both fit: no count row
    refused = run("show", "chat", "--limit", "-1", cwd=tmp_path)
    assert refused.returncode == 2
    assert "--limit" in refused.stderr
    assert "'-1'" in refused.stderr
