"""How far this node may trust its own clock: the peers' latest verdict, and no jump since.

A replica stamps its writes with its hybrid clock, whose wall part is this machine's clock. With
peers that judge it (the peer and memory transports, :mod:`rollout.sync._clock`), that clock is
trusted only as far as their latest verdict: refused while they call it an outlier, a tie or not
yet confirmed, and, between two verdicts, refused again as soon as the wall clock jumps against
the monotonic clock (an NTP step), since a write made in that instant would be stamped by a clock
nobody has judged. A node without such peers trusts its own clock.
"""

from __future__ import annotations

import time

from .._core.clock import HybridClock

__all__ = ["ClockTrust"]


class ClockTrust:
    """The trust in one replica's clock. Written by the transport's thread, read by writers."""

    def __init__(self, clock: HybridClock) -> None:
        self._clock = clock
        #: The peers' latest verdict: why they refuse this clock (None: they agree with it).
        self.verdict: str | None = None
        #: True once a transport judges this clock against its peers' (peer, memory).
        self.judged_by_peers = False
        self._judged_at_ms: int | None = None  # our wall minus monotonic clock at the verdict

    def problem(self) -> str | None:
        """Why this node's clock cannot be trusted now (None: it can)."""
        if self.verdict is not None:
            return self.verdict
        if self.judged_by_peers and self._judged_at_ms is not None:
            jump = _wall_minus_monotonic_ms(self._clock.physical_ms()) - self._judged_at_ms
            if 2 * abs(jump) > self._clock.max_offset_ms:
                return (
                    f"this node's wall clock jumped {jump:+d} ms since its peers last judged it; "
                    "local writes are refused until they judge it again (within one "
                    "anti-entropy round)"
                )
        return None

    def judged(self, problem: str | None) -> None:
        """The peers' verdict (None: they agree with this clock), as of now."""
        self.judged_by_peers = True
        self._judged_at_ms = _wall_minus_monotonic_ms(self._clock.physical_ms())
        self.verdict = problem


def _wall_minus_monotonic_ms(wall_ms: int) -> int:
    """How far the wall clock is from the monotonic one: it changes only when the wall clock
    is stepped (NTP, an operator), which is how a jump is seen between two verdicts."""
    return wall_ms - time.monotonic_ns() // 1_000_000
