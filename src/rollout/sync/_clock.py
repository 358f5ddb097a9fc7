"""Whose clock is wrong: a node's clock judged by the majority of its connected peers.

Both replicating transports (the peer mesh and the in-memory network) measure, for each peer
they are connected to, an *offset*: the peer's wall clock minus this node's, in milliseconds. The
offset is read from a clock the peer put in a message and this node's clock when it arrived, so
it also contains the one-way network delay (the peer looks behind by that much); on a LAN that is
well under a millisecond against a ``max_offset`` of seconds.

The rule (:func:`judge`), with ``n`` = this node plus every peer whose offset is known and
``agree`` = this node plus the peers within ``max_offset / 2`` of it (half, so that any two nodes
that both write are within ``max_offset`` of each other: their majorities share a node, and each
is within half of it; so a writing node's registers never look like the future to another
writing node, and the quarantine holds only what a node outside the majority stamped):

* ``2·agree > n``: this node is in the majority and writes. Peers that disagree are named as
  outliers, but never stop it: one bad clock cannot stop the healthy nodes.
* ``2·agree < n``: this node is the outlier (ahead or behind), and refuses local writes: its
  writes would be refused by the others (ahead) or lose to older ones (behind).
* ``2·agree == n``: no majority (two nodes that disagree; two against two). Safety first: both
  sides refuse writes and say so loudly. Checks keep answering either way.
* Confirmation: a node configured with peers refuses writes until one peer has confirmed its
  clock (a verdict of "majority" with at least one peer heard). Once confirmed, a node left
  alone (``n == 1``) keeps writing.

The judgement has no hysteresis (the verdict is recomputed from the current offsets every
time), but :class:`ClockJudge` logs only when the verdict changes, not on every digest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

__all__ = ["ClockJudge", "ClockState", "ClockVerdict", "OffsetSample", "judge"]

logger = logging.getLogger("rollout.sync")

ClockState: TypeAlias = Literal["ok", "outlier", "no_majority", "unconfirmed"]


@dataclass(frozen=True)
class ClockVerdict:
    """What one node concludes about its own clock from its peers' offsets."""

    state: ClockState
    #: Why local writes are refused (None: they are not). What ClockSkewError says.
    problem: str | None
    max_offset_ms: int
    #: Peer label -> its clock minus ours (ms), for every connected peer heard so far.
    offsets: Mapping[str, int] = field(default_factory=dict)
    #: The peers whose clocks disagree with this node's (|offset| > max_offset / 2), sorted.
    disagreeing: tuple[str, ...] = ()

    @property
    def writable(self) -> bool:
        return self.problem is None

    @property
    def voters(self) -> int:
        """n: this node plus every peer whose offset is known."""
        return 1 + len(self.offsets)

    @property
    def agreeing(self) -> int:
        """This node plus the peers within max_offset / 2 of it."""
        return self.voters - len(self.disagreeing)

    def describe(self) -> dict[str, Any]:
        """The ``clock`` section of a transport's ``stats()``."""
        values = sorted(self.offsets.values())
        return {
            "state": self.state,
            "writable": self.writable,
            "problem": self.problem,
            "max_offset_ms": self.max_offset_ms,
            "voters": self.voters,
            "agreeing": self.agreeing,
            "disagreeing": list(self.disagreeing),
            "offsets_ms": dict(sorted(self.offsets.items())),
            "offset_min_ms": values[0] if values else None,
            "offset_max_ms": values[-1] if values else None,
            "offset_median_ms": int(_median(values)) if values else None,
        }


@dataclass(frozen=True)
class OffsetSample:
    """A peer's clock minus ours as measured when its message arrived, kept so that it stays true
    if *our* wall clock jumps before the peer's next message.

    Without it a node whose clock NTP steps by an hour would go on judging itself by the offsets
    measured before the step (they looked fine) until every peer had sent a fresh clock. Our
    wall clock's drift against the monotonic clock since the sample is our own jump, so it is
    taken off the offset at once; the peer's own jumps show in its next message.
    """

    offset_ms: int
    #: Our wall clock minus the monotonic clock (ms) when the sample was taken.
    wall_minus_monotonic_ms: int

    @classmethod
    def taken(cls, their_ms: int, our_ms: int) -> OffsetSample:
        return cls(their_ms - our_ms, our_ms - _monotonic_ms())

    def now(self, our_ms: int) -> int:
        """The offset now, given our wall clock now (the same clock as at :meth:`taken`)."""
        our_jump = (our_ms - _monotonic_ms()) - self.wall_minus_monotonic_ms
        return self.offset_ms - our_jump


def _monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


def agrees(offset_ms: int, max_offset_ms: int) -> bool:
    """Whether a peer this far from our clock agrees with it: within half of ``max_offset``
    (see the module's docstring for why half)."""
    return 2 * abs(offset_ms) <= max_offset_ms


def judge(
    offsets: Mapping[str, int],
    max_offset_ms: int,
    *,
    confirmed: bool,
    needs_confirmation: bool,
) -> ClockVerdict:
    """The verdict on this node's clock. Pure: the same inputs give the same verdict.

    ``offsets``: peer label -> their clock minus ours (ms), for the connected peers heard from.
    ``confirmed``: a peer has confirmed this clock before. ``needs_confirmation``: peers are
    configured, so a node that was never confirmed must not write yet.
    """
    offsets = dict(offsets)
    disagreeing = tuple(sorted(p for p, o in offsets.items() if not agrees(o, max_offset_ms)))
    n = 1 + len(offsets)
    agree = n - len(disagreeing)
    limit = f"clocks agree within half of max_offset, {max_offset_ms // 2} ms"

    def verdict(state: ClockState, problem: str | None) -> ClockVerdict:
        return ClockVerdict(state, problem, max_offset_ms, offsets, disagreeing)

    if n == 1:
        if needs_confirmation and not confirmed:
            return verdict(
                "unconfirmed",
                "this node's clock is not confirmed yet: no peer is connected to compare it "
                "with, so local writes are refused until one is (check that the peers are "
                "running and reachable)",
            )
        return verdict("ok", None)
    if 2 * agree > n:
        return verdict("ok", None)
    if 2 * agree < n:
        return verdict("outlier", _outlier_problem(offsets, disagreeing, n, limit))
    listed = ", ".join(f"{p} ({offsets[p]:+d} ms)" for p in disagreeing)
    return verdict(
        "no_majority",
        f"no majority of clocks: this node's clock agrees with {agree} of {n} nodes "
        f"(itself included) and disagrees with {listed} ({limit}); local writes are refused "
        "on both sides until a majority agrees. Correct the wrong clock (NTP), or add a node "
        "so that a majority can decide",
    )


def _median(values: list[int]) -> float:
    """``statistics.median``, the same answer: that module loads decimal and fractions, about
    0.75 MB of a replicating process for one median of a few offsets."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def _outlier_problem(
    offsets: Mapping[str, int], disagreeing: tuple[str, ...], n: int, limit: str
) -> str:
    theirs = [offsets[p] for p in disagreeing]
    median = int(_median(theirs))
    if all(o < 0 for o in theirs):
        where = f"{-median} ms ahead of"
    elif all(o > 0 for o in theirs):
        where = f"{median} ms behind"
    else:
        where = f"out of range of (median offset {median:+d} ms)"
    return (
        f"this node's clock is {where} the majority of its peers: {len(disagreeing)} of the "
        f"{n} nodes disagree with it ({limit}); local writes are refused until it is back in "
        "range. Correct this machine's clock (NTP)"
    )


class ClockJudge:
    """The verdict over time for one transport: remembers confirmation, logs changes.

    Not thread-safe: called from the transport's own thread. ``verdict`` is replaced whole, so
    other threads may read it.
    """

    def __init__(self, max_offset_ms: int, *, needs_confirmation: bool) -> None:
        self.needs_confirmation = needs_confirmation
        self.confirmed = False
        self.verdict = judge(
            {}, max_offset_ms, confirmed=False, needs_confirmation=needs_confirmation
        )
        self._logged: tuple[ClockState, tuple[str, ...]] | None = None

    def update(self, offsets: Mapping[str, int], max_offset_ms: int) -> ClockVerdict:
        verdict = judge(
            offsets,
            max_offset_ms,
            confirmed=self.confirmed,
            needs_confirmation=self.needs_confirmation,
        )
        if verdict.state == "ok" and verdict.voters > 1:
            self.confirmed = True
        self._log_change(verdict)
        self.verdict = verdict
        return verdict

    def _log_change(self, verdict: ClockVerdict) -> None:
        key = (verdict.state, verdict.disagreeing)
        previous, self._logged = self._logged, key
        if key == previous:
            return
        if verdict.state == "unconfirmed":
            # Every node with peers starts so, for the few ms until a digest arrives; a write
            # refused meanwhile says why.
            logger.info("%s", verdict.problem)
        elif verdict.problem is not None:
            logger.error("%s", verdict.problem)
        elif previous is not None and previous[0] == "unconfirmed":
            logger.info("this node's clock is confirmed by its peers: writes accepted")
        elif previous is not None and previous[0] != "ok":
            logger.warning("this node's clock agrees with the majority again: writes accepted")
        if verdict.state == "ok" and verdict.disagreeing:
            listed = ", ".join(f"{p} ({verdict.offsets[p]:+d} ms)" for p in verdict.disagreeing)
            logger.warning(
                "clock outliers among the peers (%d of %d nodes agree with this one, "
                "max_offset %d ms): %s; this node keeps writing, they refuse",
                verdict.agreeing,
                verdict.voters,
                verdict.max_offset_ms,
                listed,
            )
