"""A store that keeps registers in this process's memory: nothing survives a restart."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from .._core.keys import is_history
from .._core.quarantine_book import QuarantineBook
from .._core.register_merge import merge_indexed
from .._core.state import Delta, Register
from ..errors import ClosedError
from ..stores._base import Store

if TYPE_CHECKING:
    from .._core.quarantined import Judged, QuarantinedRegister, QuarantineState

__all__ = ["MemoryStore"]


class MemoryStore(Store):
    """Registers in a dict. One instance may back several ``Rollout`` objects."""

    url = "memory://"

    def __init__(self) -> None:
        #: Per flag, its registers but the history events, which are in ``_events``: a write's
        #: event then costs lookups in a dict of a few hundred, not in a flag's million users.
        self._flags: dict[str, dict[str, Register]] = {}
        self._events: dict[str, dict[str, Register]] = {}
        # Per flag, its history keys, sorted: trimming history to its bound then costs the same
        # on a flag of a million users as on an empty one (merge_indexed).
        self._history: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._quarantine = QuarantineBook()

    def load(self) -> Delta:
        with self._lock:
            self._check_open()
            return {name: self._held(name) for name in self._flags}

    def save(self, delta: Delta) -> None:
        with self._lock:
            self._check_open()
            for name, registers in delta.items():
                merge_indexed(
                    self._flags.setdefault(name, {}),
                    self._events.setdefault(name, {}),
                    self._history.setdefault(name, []),
                    registers,
                    self.history_limit,
                )

    def discard(self, delta: Delta) -> None:
        with self._lock:
            self._check_open()
            for name, registers in delta.items():
                if name not in self._flags:
                    continue
                for key, register in registers.items():
                    history = is_history(key)
                    held = self._events[name] if history else self._flags[name]
                    current = held.get(key)
                    if current is not None and current.ts == register.ts:
                        del held[key]
                        if history:
                            self._history[name].remove(key)

    def quarantine(self, entries: Sequence[QuarantinedRegister]) -> None:
        with self._lock:
            self._book().hold(entries)

    def quarantined(self) -> QuarantineState:
        with self._lock:
            return self._book().state()

    def release(self, registers: Iterable[Judged]) -> None:
        with self._lock:
            self._book().release(registers)

    def _book(self) -> QuarantineBook:
        self._check_open()
        self._quarantine.limit = self.quarantine_limit
        self._quarantine.verdicts_kept = self.verdicts_kept
        return self._quarantine

    def registers(self, name: str) -> dict[str, Register]:
        """The registers held for one flag (for tests and tools)."""
        with self._lock:
            return self._held(name) if name in self._flags else {}

    def _held(self, name: str) -> dict[str, Register]:
        held = dict(self._flags[name])
        held.update(self._events[name])
        return held

    def close(self) -> None:
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("this MemoryStore is closed")
