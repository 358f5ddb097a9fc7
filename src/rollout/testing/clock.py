"""A wall clock for tests that moves only when told."""

from __future__ import annotations

import threading

__all__ = ["FakeClock"]


class FakeClock:
    """A wall clock in milliseconds that moves only when told: pass it as ``Rollout(clock=...)``."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self.now_ms = start_ms
        self._lock = threading.Lock()

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> None:
        with self._lock:
            self.now_ms += ms

    def set(self, ms: int) -> None:
        with self._lock:
            self.now_ms = ms
