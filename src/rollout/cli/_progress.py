"""A progress line on stderr for what may take a while (waiting for peers, a big import).

On a terminal the line is rewritten in place as things move and erased at the end, so a quick
command leaves nothing behind. Elsewhere (a pipe, a log file, CI) live updates would be a line
per tick: only the stages a caller marks with :meth:`Progress.step` are written, one line each.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from .._client.rollout import Rollout

__all__ = ["BIG_INPUT", "Progress", "merge_input", "read_input"]


class Progress:
    """``show()`` a state (terminal only), ``step()`` a stage (everywhere), then ``end()``."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self._label = label
        self._stream = sys.stderr if stream is None else stream
        try:
            self.live = self._stream.isatty()
        except (AttributeError, ValueError):  # a closed or odd stream: no live line
            self.live = False
        self._shown = False

    def show(self, text: str) -> None:
        """The current state, rewritten in place; nothing when stderr is not a terminal."""
        if self.live:
            self._write(f"\r\x1b[K{self._label}: {text}")
            self._shown = True

    def step(self, text: str) -> None:
        """A stage reached: on a terminal the live line, elsewhere a line of its own."""
        if self.live:
            self.show(text)
        else:
            self._write(f"{self._label}: {text}\n")

    def end(self) -> None:
        """Erase the live line (the command's own output or error follows)."""
        if self._shown:
            self._write("\r\x1b[K")
            self._shown = False

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):  # stderr gone: progress is not worth failing over
            self.live = False


# rollout import -------------------------------------------------------------------------------

#: An input this big (bytes) gets progress lines: reading and merging it takes seconds.
BIG_INPUT = 1 << 20
_CHUNK = 1 << 20


def _megabytes(size: int) -> str:
    return f"{size / (1 << 20):.1f} MB"


def read_input(file: str | None, progress: Progress) -> bytes:
    """FILE's bytes (stdin for None or ``-``), saying how far it got on a terminal."""
    stdin = file in (None, "-")
    source = "stdin" if stdin else str(file)
    with contextlib.ExitStack() as closing:
        stream = sys.stdin.buffer if stdin else closing.enter_context(open(str(file), "rb"))
        total = None if stdin else os.fstat(stream.fileno()).st_size
        chunks: list[bytes] = []
        read = 0
        while chunk := stream.read(_CHUNK):
            chunks.append(chunk)
            read += len(chunk)
            if read >= BIG_INPUT:
                of = f" of {_megabytes(total)}" if total else ""
                progress.show(f"reading {source}: {_megabytes(read)}{of}")
    return b"".join(chunks)


def merge_input(flags: Rollout, file: str | None) -> set[str]:
    """``rollout import``: merge FILE (or stdin); a big one says what is happening on stderr."""
    progress = Progress("rollout import")
    try:
        data = read_input(file, progress)
        big = len(data) >= BIG_INPUT
        if big:
            source = "stdin" if file in (None, "-") else file
            progress.step(
                f"merging {_megabytes(len(data))} from {source} (all of it is checked before "
                "anything is written)"
            )
        changed = set(flags.merge(data))
        if big:
            progress.step(f"merged: {len(changed)} flag{'s' * (len(changed) != 1)} changed")
        return changed
    finally:
        progress.end()
