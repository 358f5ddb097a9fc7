"""The README's shell sessions, run verbatim: every ``$`` line of a block marked for it.

A block is marked by the line ``<!-- readme-test -->`` right before its fence. Each marked block
runs in a fresh folder, in one bash (so ``export`` carries over to the next line), with
``rollout`` on PATH being this checkout. Rules:

- ``$ COMMAND`` lines are run; a line ending in ``\\`` continues on the next one. The lines
  after a command, up to the next ``$``, are its output (stdout and stderr together).
- A command must exit 0, unless its output shows ``rollout: error:`` (then it must fail).
- Its output must match the lines shown, with runs of spaces equal, and what differs on every
  run stands for any value: a node id (16 hex digits), a clock offset (``-1 ms``).
- A command ending in ``&`` runs in the background (stopped with SIGTERM at the end of the
  block); the lines shown must appear in its output, in order (a server logs more besides).
- Ports (``127.0.0.1:7946``) are replaced by free ones, the same in commands and output, so
  the test runs beside anything else.
- ``make`` is not run here (tests/admin/test_make_run.py runs ``make run``): a marked block
  must not call it.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rollout.testing.cluster import free_port

from .shells import shell_env

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- readme-test -->"
#: How long a background command may take to print what the README shows (not a measurement).
STARTUP_TENTHS = 600
_PORT = re.compile(r"\b(?:127\.0\.0\.1|localhost|0\.0\.0\.0):(\d{4,5})\b")
#: What differs on every run: a node id, a clock offset.
_VARYING = re.compile(r"\b[0-9a-f]{16}\b|[-+]?\d+ ms\b")


@dataclass
class Command:
    text: str
    output: list[str] = field(default_factory=list)

    @property
    def background(self) -> bool:
        return self.text.rstrip().endswith("&") and not self.text.rstrip().endswith("&&")


@dataclass
class Block:
    line: int  # of the fence in README.md, for messages
    commands: list[Command]


def marked_blocks(text: str) -> list[Block]:
    blocks: list[Block] = []
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if line.strip() != MARKER:
            continue
        fence = lines[number + 1]
        assert fence.startswith("```"), f"README.md:{number + 1}: {MARKER} not before a fence"
        body: list[str] = []
        for inner in lines[number + 2 :]:
            if inner.startswith("```"):
                break
            body.append(inner)
        blocks.append(Block(number + 2, parse(body)))
    return blocks


def parse(body: list[str]) -> list[Command]:
    commands: list[Command] = []
    continuing = False
    for line in body:
        if continuing:
            commands[-1].text += "\n" + line
        elif line.startswith("$ "):
            commands.append(Command(line[2:]))
        elif commands:
            commands[-1].output.append(line)
        continuing = bool(commands) and line.endswith("\\") and not commands[-1].output
    return commands


def with_free_ports(block: Block) -> Block:
    ports: dict[str, str] = {}

    def replace(found: re.Match[str]) -> str:
        host = found.group(0)[: found.start(1) - found.start(0)]
        return host + ports.setdefault(found.group(1), str(free_port()))

    commands = [
        Command(_PORT.sub(replace, c.text), [_PORT.sub(replace, line) for line in c.output])
        for c in block.commands
    ]
    return Block(block.line, commands)


def pattern(line: str) -> re.Pattern[str]:
    """A line of shown output as a regex: runs of spaces equal, varying values any value."""
    line = " ".join(line.split())
    parts, done = [], 0
    for varying in _VARYING.finditer(line):
        parts.append(re.escape(line[done : varying.start()]))
        parts.append(r"[-+]?\d+ ms" if varying.group().endswith(" ms") else r"[0-9a-f]{16}")
        done = varying.end()
    parts.append(re.escape(line[done:]))
    return re.compile("".join(parts))


def matches(shown: list[str], output: str) -> bool:
    got = [" ".join(line.split()) for line in output.splitlines()]
    while got and not got[-1]:
        got.pop()
    return len(got) == len(shown) and all(
        pattern(want).fullmatch(line) for want, line in zip(shown, got, strict=True)
    )


def in_order(shown: list[str], output: str) -> bool:
    got = iter(" ".join(line.split()) for line in output.splitlines())
    return all(any(pattern(want).fullmatch(line) for line in got) for want in shown)


def script(block: Block, folder: Path) -> str:
    """One bash script: each command's output and status to files of its own."""
    lines = ["set +e"]
    for n, command in enumerate(block.commands):
        out = folder / f"out.{n}"
        if command.background:
            run = command.text.rstrip()[:-1].rstrip()
            lines.append(f"{run} > {out} 2>&1 &")
            lines.append(f"echo $! > {folder / f'pid.{n}'}")
            # Until it printed as many lines as the README shows (or gave up).
            wanted = len(command.output)
            lines.append(
                f"for _ in $(seq {STARTUP_TENTHS}); do "
                f'[ "$(wc -l < {out})" -ge {wanted} ] && break; sleep 0.1; done'
            )
        else:
            lines.append(f"{{ {command.text}\n}} > {out} 2>&1")
            lines.append(f"echo $? > {folder / f'status.{n}'}")
    lines.append("kill $(jobs -p) 2>/dev/null; wait")  # this script's own background commands
    return "\n".join(lines) + "\n"


def run_block(block: Block, tmp_path: Path) -> list[str]:
    """Run a block in a fresh folder; the problems found, one line each."""
    work = tmp_path / f"block-{block.line}"
    results = tmp_path / f"results-{block.line}"
    work.mkdir()
    results.mkdir()
    block = with_free_ports(block)
    subprocess.run(
        ["bash", "-c", script(block, results)], cwd=work, env=shell_env(tmp_path),
        timeout=300, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    problems = []
    for n, command in enumerate(block.commands):
        where = f"README.md:{block.line}: $ {command.text}"
        output = (results / f"out.{n}").read_text()
        if command.background:
            if not in_order(command.output, output):
                problems.append(f"{where}\n  shown: {command.output}\n  got: {output!r}")
            continue
        status = int((results / f"status.{n}").read_text())
        fails = any(line.startswith("rollout: error:") for line in command.output)
        if (status != 0) != fails:
            problems.append(f"{where}\n  exit status {status}: {output!r}")
        if not matches(command.output, output):
            problems.append(f"{where}\n  shown: {command.output}\n  got: {output!r}")
    return problems


BLOCKS = marked_blocks(README.read_text())


def test_the_readme_marks_its_shell_sessions_and_none_runs_make() -> None:
    assert len(BLOCKS) >= 2, f"no {MARKER} blocks in README.md"
    for block in BLOCKS:
        assert block.commands, f"README.md:{block.line}: a marked block with no $ command"
        for command in block.commands:
            assert shlex.split(command.text.replace("\\\n", " "))[0] != "make", (
                f"README.md:{block.line}: `make` is tested by tests/admin/test_make_run.py"
            )


@pytest.mark.parametrize("block", BLOCKS, ids=[f"README.md:{b.line}" for b in BLOCKS])
def test_a_readme_session_runs_as_shown(block: Block, tmp_path: Path) -> None:
    problems = run_block(block, tmp_path)
    assert not problems, "\n".join(problems)
