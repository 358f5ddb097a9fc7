"""Each command's ``--help`` lists exactly the options it uses, a one-line description and an
example; an option a command would ignore is refused, after the command or before it."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from rollout.cli import build_parser, main

COMMANDS = sorted(
    next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
)
#: The shared options, and what each is for: a command lists one only if it does that.
SHARED = ("--store", "--json", "--peers", "--secret", "--insecure", "--timeout")
#: Commands that need no store (an HTTP client, or printing a random secret or a script).
STANDALONE = {"check-on", "secret", "token", "completion"}
_POSITIONAL = {"NAME": "chat", "FLAG": "chat", "ID": "42", "GROUP": "admins", "PERCENTAGE": "20",
               "KEY=VALUE": "a=1", "FILE": "flags.export", "KEY": "user:42", "JSON": "{}",
               "VARIANT": "red", "VALUE": "1", "RULE": "pro"}  # fmt: skip
_VALUE = {"URL": "memory://", "HOST:PORT": "127.0.0.1:1", "HOST:PORT,...": "127.0.0.1:1",
          "N": "3", "SECONDS": "5", "S": "5", "RANGE": "90:"}  # fmt: skip


def help_of(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    # check-on is a monitoring plugin: its --help did no check, so UNKNOWN (3), not OK.
    assert main([command, "--help"]) == (3 if command == "check-on" else 0)
    return capsys.readouterr().out


def sections(text: str) -> dict[str, list[str]]:
    """ "positional arguments" and "options": the first column of each entry."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.endswith(":") and not line.startswith(" "):
            current = found.setdefault(line[:-1], [])
        elif current is not None and re.match(r"  \S", line):
            current.append(re.split(r"\s{2,}", line.strip())[0])
    return found


def listed_options(text: str) -> dict[str, str | None]:
    """Each option string in the help -> its metavar (None for a switch)."""
    options: dict[str, str | None] = {}
    for entry in sections(text).get("options", []):
        for part in entry.split(", "):
            option, _, metavar = part.partition(" ")
            options[option] = metavar or None
    return options


def positionals(text: str) -> list[str]:
    """Values for the arguments a command requires: its positionals and required options."""
    usage = text.split("\n\n", maxsplit=1)[0]
    while re.search(r"\[[^][]*\]", usage):
        usage = re.sub(r"\[[^][]*\]", "", usage)  # optional parts, innermost first
    values = [
        word
        for option, metavar in re.findall(r"(--[\w-]+) (\S+)", usage)
        for word in (option, _VALUE.get(metavar, "x"))
    ]
    for entry in sections(text).get("positional arguments", []):
        if entry.startswith("{"):
            values.append(entry[1:-1].split(",")[0])  # a choice
        else:
            values.append(_POSITIONAL[entry])
    return values


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_in_a_commands_help_is_accepted_by_it(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = help_of(command, capsys)
    description, example = text.split("\n\n")[1], text.split("example:\n")[1]
    assert description.strip(), text
    assert f"rollout {command}" in example, text
    fillers = positionals(text)
    for option, metavar in listed_options(text).items():
        if option in ("-h", "--help", "-V", "--version"):
            continue
        given = [option] if metavar is None else [option, _VALUE.get(metavar, "x")]
        parser = build_parser()
        try:
            args, unknown = parser.parse_known_args([command, *fillers, *given])
        except SystemExit as exc:
            raise AssertionError(f"rollout {command} {option}: {capsys.readouterr().err}") from exc
        assert unknown == [], (command, option)
        assert args.command == command


@pytest.mark.parametrize("command", COMMANDS)
def test_a_shared_option_is_listed_only_by_the_commands_that_use_it(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = set(listed_options(help_of(command, capsys))) & set(SHARED)
    expected: set[str] = set()
    if command not in STANDALONE:
        expected = {"--store", "--peers", "--secret", "--timeout", "--json"}
        if command == "serve":  # it prints no JSON and waits for nobody; it alone listens
            expected = expected - {"--json", "--timeout"} | {"--insecure"}
        if command in ("export", "export-flagd"):  # they write their formats themselves
            expected.remove("--json")
    if command == "check-on":
        expected = {"--timeout"}  # its own: the whole check's
    assert listed == expected


@pytest.mark.parametrize("command", COMMANDS)
def test_an_option_a_command_does_not_list_is_refused_where_it_is_given(
    command: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = help_of(command, capsys)
    fillers = positionals(text)
    store = tmp_path / "never.db"
    for option in ("--json", "--insecure", "--store"):
        if option in listed_options(text):
            continue
        given = [option, f"sqlite:///{store}"] if option == "--store" else [option]
        # Before the command (the shared form) and after it: a usage error naming it.
        assert main([*given, command, *fillers]) == 2
        err = capsys.readouterr().err
        assert f"rollout {command} does not take {option}" in err, err
        assert main([command, *fillers, *given]) == (3 if command == "check-on" else 2)
        err = "".join(capsys.readouterr())  # check-on, a plugin, says it on stdout
        assert "unrecognized arguments: " + option in err, err
    assert not store.exists()


@pytest.mark.parametrize(
    "args",
    [["list"], ["show", "chat"], ["check", "chat"], ["activate", "beta"], ["history", "chat"],
     ["data", "chat", "a=1"], ["members"], ["quarantine"], ["delete", "chat"], ["export"]],
)  # fmt: skip
def test_json_is_listed_where_it_turns_the_output_into_json(
    args: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'flags.db'}"

    def run(*more: str) -> tuple[int, str]:
        # Each run on the same flag (a removal from a flag `delete` took is an error).
        assert main(["--store", store, "activate-user", "chat", "42"]) == 0
        capsys.readouterr()
        status = main([*args, "--store", store, *more])
        return status, capsys.readouterr().out

    plain = run()
    if "--json" in listed_options(help_of(args[0], capsys)):
        status, out = run("--json")
        assert status == plain[0]  # check says off with 1, either way
        assert out != plain[1]
        json.loads(out)
    else:  # export's output is its own format whatever: --json is refused, not ignored
        assert run("--json")[0] == 2
