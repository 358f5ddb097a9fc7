"""Hybrid logical clock (HLC) timestamps, as in Kulkarni et al., "Logical Physical Clocks".

A timestamp is ``(wall_ms, counter, node)`` compared as a tuple. Local events tick the clock;
timestamps received from other replicas are merged into it (:meth:`HybridClock.observe`), which is
what makes a write that causally follows another always carry a larger timestamp, whatever the two
machines' wall clocks say.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NamedTuple

__all__ = ["MIN_TIMESTAMP", "HybridClock", "Timestamp", "new_node_id", "system_clock_ms"]

#: Default tolerance for timestamps from the future. Generous on purpose: a receiver
#: whose own clock lags by more than this would refuse every fresh write from healthy peers.
DEFAULT_MAX_OFFSET_MS = 30_000


if TYPE_CHECKING:  # the type; at run time the same named tuple, without loading typing

    class Timestamp(NamedTuple):
        wall: int
        counter: int
        node: int
else:
    Timestamp = namedtuple("Timestamp", ["wall", "counter", "node"])


#: Below every real timestamp (real ones have wall > 0); defaults declared in code carry it.
MIN_TIMESTAMP = Timestamp(0, 0, 0)


def system_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def new_node_id() -> int:
    # 63 bits, not 64: node ids are stored in SQLite's signed 64-bit INTEGER, and 63 random bits
    # still make a collision between live writers vanishingly unlikely. Never 0 (MIN_TIMESTAMP).
    # os.urandom, as secrets.randbits does (secrets would load hmac and hashlib at import).
    return int.from_bytes(os.urandom(8)) >> 1 | 1


_CLOCKS_TO_RENEW_AFTER_FORK: weakref.WeakSet[HybridClock] = weakref.WeakSet()


def _renew_clocks_in_child() -> None:
    for clock in list(_CLOCKS_TO_RENEW_AFTER_FORK):
        clock._after_fork()


os.register_at_fork(after_in_child=_renew_clocks_in_child)


class HybridClock:
    """A thread-safe HLC for one process.

    ``clock`` returns the wall time in milliseconds; tests inject skewed ones. The node id is
    redrawn in a forked child so parent and child never stamp the same timestamp.
    """

    def __init__(
        self,
        clock: Callable[[], int] | None = None,
        *,
        max_offset_ms: int = DEFAULT_MAX_OFFSET_MS,
        node: int | None = None,
    ) -> None:
        self._wall_clock = clock or system_clock_ms
        self.max_offset_ms = max_offset_ms
        self.node = node if node is not None else new_node_id()
        self._wall = 0
        self._counter = 0
        self._lock = threading.Lock()
        if node is None:
            _CLOCKS_TO_RENEW_AFTER_FORK.add(self)

    def _after_fork(self) -> None:
        self.node = new_node_id()
        self._lock = threading.Lock()

    def physical_ms(self) -> int:
        return int(self._wall_clock())

    def last(self) -> Timestamp:
        return Timestamp(self._wall, self._counter, self.node)

    def tick(self) -> Timestamp:
        """A timestamp for a local event, larger than every one seen or issued before."""
        with self._lock:
            now = self.physical_ms()
            if now > self._wall:
                self._wall, self._counter = now, 0
            else:
                # The wall clock stood still or went backwards: the HLC never does.
                self._counter += 1
            return Timestamp(self._wall, self._counter, self.node)

    def too_far_ahead(self, ts: Timestamp) -> bool:
        """True when ``ts`` is further in the future than ``max_offset_ms`` allows."""
        return ts.wall - self.physical_ms() > self.max_offset_ms

    def runs_ahead(self) -> bool:
        """True when this clock's last timestamp is more than ``max_offset_ms`` past the wall
        clock: the wall clock stepped back (NTP), or a far-future timestamp got in before. Every
        timestamp it issued next would be refused by healthy peers."""
        return self._wall - self.physical_ms() > self.max_offset_ms

    def rebase(self, floor: Timestamp) -> None:
        """Move this clock back to ``floor`` (the newest timestamp this node still holds).

        The one backwards step an HLC may take, and only when the caller has removed every
        timestamp above ``floor`` from this node (replica and store): monotonicity matters only
        against timestamps that still exist somewhere, and none above ``floor`` does here. Peers
        never accepted them either (they were more than ``max_offset`` ahead of every healthy
        clock), so no causal successor of them exists in the cluster.
        """
        with self._lock:
            self._wall, self._counter = min(
                (self._wall, self._counter), (floor.wall, floor.counter)
            )

    def observe(self, remote: Timestamp) -> bool:
        """Merge a timestamp received from another replica into this clock (the HLC receive rule).

        Returns False, leaving the clock unchanged, for a timestamp more than ``max_offset_ms``
        ahead of the wall clock: the caller should have refused it (:meth:`too_far_ahead`), and
        observing it would make every later local write look like the future to healthy peers
        (a poisoned clock). Defence in depth: the clock never moves past that bound this way.
        """
        with self._lock:
            now = self.physical_ms()
            if remote.wall - now > self.max_offset_ms:
                return False
            last_wall, last_counter = self._wall, self._counter
            wall = max(last_wall, remote.wall, now)
            if wall == last_wall and wall == remote.wall:
                counter = max(last_counter, remote.counter) + 1
            elif wall == last_wall:
                counter = last_counter + 1
            elif wall == remote.wall:
                counter = remote.counter + 1
            else:
                counter = 0
            self._wall, self._counter = wall, counter
            return True
