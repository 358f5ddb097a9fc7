"""Drive a real interactive bash, zsh or fish in a pseudo-terminal, as a user at a keyboard.

``complete_line`` types a line, presses Tab, then Ctrl-A and ``echo RESULT:`` in front of it
and Enter: the shell prints the line as completion left it. ``rollout`` on the shell's PATH is a
script running this Python on the code under test.
"""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

#: How long a shell may take to start or answer before the test fails (not a measurement).
PATIENCE = 60.0
_ESCAPES = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\x1b[=>]|\x1b\][^\x07]*\x07")


def rollout_on_path(tmp_path: Path) -> Path:
    """A folder with a ``rollout`` script for this checkout (PYTHONPATH made absolute)."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    script = folder / "rollout"
    script.write_text(f'#!/bin/sh\nexec {sys.executable} -m rollout "$@"\n')
    script.chmod(0o755)
    return folder


def shell_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    src = str(Path(__file__).resolve().parents[2] / "src")
    paths = [src, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local"),
        TERM="xterm",
        PATH=f"{rollout_on_path(tmp_path)}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=os.pathsep.join(str(Path(p).resolve()) for p in paths),
    )
    return env


def need(shell: str) -> str:
    """The shell's path; a clear failure under CI=true when missing, else a skip."""
    found = shutil.which(shell)
    if found is None:
        message = f"{shell} is not installed (apt-get install -y {shell})"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


_START = {
    "bash": (["bash", "--norc", "--noprofile", "-i"], "source <(rollout completion bash)"),
    "zsh": (
        ["zsh", "-f", "-i"],
        "autoload -U compinit && compinit -u && source <(rollout completion zsh)",
    ),
    "fish": (["fish", "--no-config", "-i"], "rollout completion fish | source"),
}


class Shell:
    """One interactive shell in a pseudo-terminal, in ``cwd``."""

    def __init__(self, name: str, cwd: Path, env: dict[str, str]) -> None:
        argv, load = _START[name]
        need(name)
        # pty.fork(): the terminal is the shell's controlling one (fish insists on it).
        self.pid, self._fd = pty.fork()
        if self.pid == 0:  # the child
            try:
                os.chdir(cwd)
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        self.status: int | None = None
        self._seen = b""
        self.run(load)

    def _read_until(self, pattern: re.Pattern[bytes]) -> re.Match[bytes]:
        deadline = time.monotonic() + PATIENCE
        while True:
            text = _ESCAPES.sub(b"", self._seen).replace(b"\r", b"")
            found = pattern.search(text)
            if found:
                self._seen = b""
                return found
            if time.monotonic() > deadline or self._exited():
                raise AssertionError(f"the shell did not print {pattern.pattern!r}: {text!r}")
            ready, _, _ = select.select([self._fd], [], [], 0.2)
            if ready:
                with contextlib.suppress(OSError):  # the shell exited
                    self._seen += os.read(self._fd, 65536)

    def run(self, command: str) -> None:
        """Run a command line and wait until it is done."""
        os.write(self._fd, f"{command}; echo 'DONE''-MARK'\r".encode())
        self._read_until(re.compile(rb"\nDONE-MARK\n"))

    def complete_line(self, typed: str) -> str:
        """Type ``typed``, press Tab, and return the line as the completion left it."""
        os.write(self._fd, typed.encode() + b"\t")
        # Ctrl-A: to the start of the line, where `echo RESULT:` turns it into output.
        os.write(self._fd, b"\x01echo 'RESULT'':' \r")
        found = self._read_until(re.compile(rb"\nRESULT: ([^\n]*)\n"))
        return found.group(1).decode().rstrip()

    def _exited(self) -> bool:
        if self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = status
        return self.status is not None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._fd, b"exit\r")
        deadline = time.monotonic() + PATIENCE
        while not self._exited() and time.monotonic() < deadline:
            select.select([self._fd], [], [], 0.1)
            with contextlib.suppress(OSError):
                os.read(self._fd, 65536)  # drain, so the shell is never blocked writing
        if not self._exited():
            os.kill(self.pid, signal.SIGKILL)  # the shell this test started, by its pid
            os.waitpid(self.pid, 0)
        os.close(self._fd)
