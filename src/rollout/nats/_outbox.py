"""The local writes on their way to the stream, shared by the caller's threads and the loop.

``publish()`` adds a change and returns at once; the loop takes everything waiting in one go
and publishes it. While NATS is away the changes wait here, merged register by register (last
writer wins, as everywhere), so what waits is never larger than the flags themselves, and
nothing written while disconnected is lost: it goes out after the reconnect.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .._core.state import Delta, wins

__all__ = ["Outbox"]


class Outbox:
    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._waiting: Delta = {}
        self._queued = 0  # changes put so far
        self._sent = 0  # of those, how many the stream has acknowledged
        self._connected = False
        #: Wakes the loop's publisher; set by the loop once it runs (thread-safe).
        self.wake: Callable[[], None] = lambda: None

    def put(self, delta: Delta) -> None:
        with self._lock:
            _merge_into(self._waiting, delta)
            self._queued += 1
        self.wake()

    def take(self) -> tuple[Delta, int]:
        """Everything waiting, and the number of changes it covers (for :meth:`sent`)."""
        with self._lock:
            delta, self._waiting = self._waiting, {}
            return delta, self._queued

    def put_back(self, delta: Delta) -> None:
        """Changes taken but not acknowledged: they wait for the next connection."""
        with self._lock:
            _merge_into(self._waiting, delta)

    def sent(self, upto: int) -> None:
        with self._lock:
            self._sent = max(self._sent, upto)
            self._lock.notify_all()

    def set_connected(self, connected: bool) -> None:
        with self._lock:
            self._connected = connected
            self._lock.notify_all()

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def waiting(self) -> int:
        with self._lock:
            return self._queued - self._sent

    def wait_sent(self, timeout: float) -> bool:
        """Until every change put so far is in the stream and the loop is caught up with it."""
        with self._lock:
            target = self._queued
            return self._lock.wait_for(
                lambda: self._connected and self._sent >= target, max(timeout, 0.0)
            )


def _merge_into(into: Delta, delta: Delta) -> None:
    for name, registers in delta.items():
        mine = into.setdefault(name, {})
        for key, register in registers.items():
            if wins(register, mine.get(key)):
                mine[key] = register
