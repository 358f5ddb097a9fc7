"""``rollout completion bash|zsh|fish``: a real interactive shell completes commands, options
and flag names (from the store on the line, never creating one)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollout import Rollout

from .shells import Shell, shell_env


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder with rollout.db holding `chat` and `beta` (and the rule `paying`), and other.db
    holding `gamma`."""
    work = tmp_path / "work"
    work.mkdir()
    for name, flags in (("rollout.db", ("chat", "beta")), ("other.db", ("gamma",))):
        with Rollout(f"sqlite:///{work / name}") as replica:
            for flag in flags:
                replica.activate(flag)
            if name == "rollout.db":
                replica.define_rule("paying", {"in": [{"var": "plan"}, ["pro"]]})
    return work


@pytest.fixture(params=["bash", "zsh", "fish"])
def shell(request: pytest.FixtureRequest, folder: Path, tmp_path: Path) -> Iterator[Shell]:
    running = Shell(request.param, folder, shell_env(tmp_path))
    try:
        yield running
    finally:
        running.close()


@pytest.mark.parametrize(
    ("typed", "completed"),
    [
        ("rollout perc", "rollout percentage"),  # percentage and percentage-of-time
        ("rollout quaran", "rollout quarantine"),
        ("rollout check --wh", "rollout check --why"),
        ("rollout check c", "rollout check chat"),
        ("rollout activate-user b", "rollout activate-user beta"),
        ("rollout quarantine acc", "rollout quarantine accept"),
        ("rollout completion fi", "rollout completion fish"),
        # The store on the line, before the command or after it (its URL has colons).
        ("rollout --store sqlite:///other.db show g",
         "rollout --store sqlite:///other.db show gamma"),
        ("rollout history --store sqlite:///other.db g",
         "rollout history --store sqlite:///other.db gamma"),
        # A rule's name where a command takes one; a flag's where it takes that.
        ("rollout define-rule p", "rollout define-rule paying"),
        ("rollout rule-history pa", "rollout rule-history paying"),
        ("rollout set-targeting c", "rollout set-targeting chat"),
    ],
)  # fmt: skip
def test_the_shell_completes_commands_options_and_flag_names(
    shell: Shell, typed: str, completed: str
) -> None:
    assert shell.complete_line(typed) == completed


def test_an_option_takes_the_next_word_so_no_flag_name_is_offered_there(shell: Shell) -> None:
    # --user's value is a user id: no flag name (chat) is offered in its place.
    assert shell.complete_line("rollout check --user c") == "rollout check --user c"


def test_completing_from_a_missing_store_offers_nothing_and_creates_nothing(
    shell: Shell, folder: Path
) -> None:
    typed = "rollout --store sqlite:///typo.db show c"
    assert shell.complete_line(typed) == typed
    assert not (folder / "typo.db").exists()


def test_each_script_is_printed_for_its_shell_and_a_bad_shell_is_a_usage_error(
    tmp_path: Path,
) -> None:
    env = shell_env(tmp_path)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "rollout", *args], capture_output=True, text=True,
            env=env, cwd=tmp_path, timeout=60, check=False,
        )  # fmt: skip

    assert "complete -F _rollout rollout" in run("completion", "bash").stdout
    assert run("completion", "zsh").stdout.startswith("autoload -U +X bashcompinit")
    assert "complete -c rollout" in run("completion", "fish").stdout
    wrong = run("completion", "tcsh")
    assert wrong.returncode == 2
    assert "argument shell: invalid choice: 'tcsh'" in wrong.stderr
    assert wrong.stdout == ""


def test_the_hidden_command_prints_flag_names_of_the_store_named(folder: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rollout", "__complete", "flags", "check", "--store",
         f"sqlite:///{folder / 'rollout.db'}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stdout.split(), done.stderr) == (0, ["beta", "chat"], "")
