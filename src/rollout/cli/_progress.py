"""A progress line on stderr for what may take a while (waiting for peers, a big import).

On a terminal the line is rewritten in place as things move and erased at the end, so a quick
command leaves nothing behind. Elsewhere (a pipe, a log file, CI) live updates would be a line
per tick: only the stages a caller marks with :meth:`Progress.step` are written, one line each.
"""

from __future__ import annotations

import sys
from typing import TextIO

__all__ = ["Progress"]


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
