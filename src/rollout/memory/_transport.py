"""The in-memory transport: one replica's end of a :class:`~rollout.memory.MemoryNetwork`.

It speaks the peer transport's protocol without the framing, so that it fails the way a
network does, not the way a function call does:

* a local write goes to every member as a DELTA;
* every ``anti_entropy_interval`` seconds (with jitter) a transport sends a DIGEST (a hash per
  flag, and its write sequence number) to one member it can reach. The receiver pushes the
  registers that differ and that it holds (STATE), and PULLs the ones that differ and the sender
  holds; the sender answers with a STATE carrying the DIGEST's sequence number, which the
  receiver ACKs once it merged it. That ack proves the receiver holds every write up to that
  number: it is what ``wait_synced`` waits for (and asks for);
* everything crosses the network encoded in the export format, so replicas never share a
  mutable object and every register goes through the codec, as it would over TCP.

The transport reaches its replica only through the :class:`~rollout.sync.SyncHost` given to
``start()``, and only on the network's delivery thread; it reaches the network only through
:class:`Hub`. Threads, locks and faults are the network's (``rollout.memory._network``).
"""

from __future__ import annotations

import collections
import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeAlias

from .._core.codec import decode, encode
from .._core.state import Delta
from ..errors import ClosedError, RolloutError
from ..sync._base import SyncHost, Transport
from ..sync._clock import ClockJudge, OffsetSample, agrees

__all__ = ["Hub", "MemoryTransport"]

logger = logging.getLogger("rollout.sync")

_COUNTERS = (
    "deltas_sent",
    "deltas_received",
    "digests_sent",
    "digests_compared",
    "states_sent",
    "states_received",
    "acks_received",
    "messages_dropped",  # counted by the network: lost to a fault on the way here
    "merge_errors",
    "errors",  # counted by the network: an unexpected exception in this transport's work
)

_Kind: TypeAlias = Literal["delta", "digest", "pull", "state", "ack"]


@dataclass(frozen=True, slots=True)
class _Message:
    """One message in flight. Immutable: it sits in an inbox while both ends go on working."""

    kind: _Kind
    sender: MemoryTransport
    #: DIGEST, PULL, ACK, and the STATE that answers a PULL: the sender's write sequence number
    #: being synchronised. None on a STATE pushed unasked (nothing to acknowledge).
    seq: int | None = None
    #: DELTA and STATE: registers in the export format (bytes: nothing shared, nothing mutable).
    payload: bytes = b""
    #: DIGEST: the sender's per-flag hashes.
    digests: Mapping[str, bytes] = field(default_factory=dict)
    #: PULL: the flags the sender wants.
    names: tuple[str, ...] = ()
    #: DIGEST: the sender's wall clock, and when (time.monotonic()) it was read.
    clock_ms: int = 0
    sent_at: float = 0.0
    refused: int = 0  #: ACK: how many registers the receiver refused (quarantined)


class Hub(Protocol):
    """What a transport may ask of its network (a :class:`~rollout.memory.MemoryNetwork`).

    The names are private because they are not for the network's users. ``_lock`` guards all
    state shared between the network and its transports, the transports' own included; methods
    marked *lock held* expect the caller to hold it.
    """

    name: str
    anti_entropy_interval: float
    _lock: threading.Lock
    #: Notified when an ack arrives, a transport leaves, or a piece of work ends.
    _progress: threading.Condition
    _closed: bool

    # A unique name (generated for None); ClosedError once the network is closed.
    def _register(self, transport: MemoryTransport, name: str | None) -> str: ...

    # *Lock held.* The other started, open transports: whom it replicates with.
    def _members(self, transport: MemoryTransport) -> list[MemoryTransport]: ...

    # *Lock held.* Whether no partition separates the two transports named.
    def _reachable(self, a: str, b: str) -> bool: ...

    # *Lock held.* Queue a message; faults apply when it is delivered.
    def _send(self, message: _Message, to: MemoryTransport) -> None: ...

    # *Lock held.* Run ``action`` (which may call ``owner``'s host) on the delivery thread.
    def _call_soon(self, owner: MemoryTransport, action: Callable[[], None]) -> None: ...

    # *Lock held.* Make a started transport a member; its ``_hello()`` runs next.
    def _join(self, transport: MemoryTransport) -> None: ...

    # *Lock held.* Forget a closed transport, and wait (until ``deadline``) for the delivery
    # thread to be done with its host. Returns the thread if it is ending, to be joined.
    def _leave(self, transport: MemoryTransport, deadline: float) -> threading.Thread | None: ...

    # Whether the caller is the delivery thread (which cannot wait for itself).
    def _delivering(self) -> bool: ...

    # Forget the parent's thread, lock and queues, once per child process.
    def _after_fork_in_child(self) -> None: ...


class MemoryTransport(Transport):
    """One replica's end of a :class:`~rollout.memory.MemoryNetwork`: ``network.transport(name)``
    (or ``MemoryTransport(network, name=...)``); ``name`` is what the network's faults use.

    ``wait_synced`` counts as peers the network's other started, open transports, including
    partitioned and paused ones (they are still members, just unreachable for now); a
    transport that closed has left. Called from a subscriber (that is, on the delivery thread),
    it cannot wait for the thread it blocks: it answers at once.
    """

    def __init__(self, network: Hub, *, name: str | None = None) -> None:
        self._network = network
        self._host: SyncHost | None = None
        # Written only by the delivery thread (from the host); read anywhere.
        self._node: int | None = None
        # A memory transport has no configured peers: like a node started alone, it writes
        # until it hears a clock. (The host, and so max_offset, is read on the delivery thread.)
        self._clock = ClockJudge(0, needs_confirmation=False)
        self._closed = False
        #: A member: started, not closed, and (after a fork) rejoined. Messages go only to
        #: members, and the delivery thread does work only for members.
        self._joined = False
        self._inbox: collections.deque[_Message] = collections.deque()
        #: The number of local writes published so far (a DIGEST carries it; acks refer to it).
        self._sequence = 0
        #: Per member: the highest sequence number it acknowledged, i.e. it holds every local
        #: write up to that one. Keyed by transport object: a restart under the same name is a
        #: new member that has acknowledged nothing yet.
        self._acked: dict[MemoryTransport, int] = {}
        #: Per member: the highest sequence number it acknowledged with registers refused.
        self._refused_at: dict[MemoryTransport, int] = {}
        self._refusals = 0  # acks with registers refused, ever: wait_synced looks for new ones
        self._last_sync: dict[MemoryTransport, float] = {}
        #: Per member: its wall clock minus ours, in ms, from its latest DIGEST.
        self._offsets: dict[MemoryTransport, OffsetSample] = {}
        self._judged_offsets: dict[MemoryTransport, int] = {}
        self._next_round = float("inf")
        self._counters = dict.fromkeys(_COUNTERS, 0)
        self.name = network._register(self, name)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "started" if self._host else "new"
        return f"<MemoryTransport {self.name!r} on {self._network.name!r} ({state})>"

    # Transport --------------------------------------------------------------------------------

    def start(self, host: SyncHost) -> None:
        network = self._network
        with network._lock:
            if self._closed:
                raise ClosedError(f"{self!r} is closed")
            if self._host is not None:
                raise RuntimeError(f"{self!r} was started already")
            self._host = host
            network._join(self)

    def publish(self, delta: Delta) -> None:
        """Queue a local write for every member: no host is called and nothing waits here."""
        # Encoded on the writer's thread, before the lock: pure, and the receivers then share
        # immutable bytes only.
        payload = encode(delta)
        network = self._network
        with network._lock:
            if not self._joined:
                return  # not started, closed, or not yet rejoined after a fork: local only
            # Numbered in publish order, which is apply order: the writer holds its write lock.
            self._sequence += 1
            for member in network._members(self):
                network._send(_Message("delta", self, payload=payload), member)
                self._counters["deltas_sent"] += 1

    def wait_synced(self, timeout: float, peers: int | None = None) -> bool:
        network = self._network
        on_delivery_thread = network._delivering()
        deadline = time.monotonic() + timeout
        with network._lock:
            if not self._joined:
                return False
            target = self._sequence
            seen = self._refusals  # refusals that arrive during this wait end it
            ask_at = 0.0
            while not self._is_synced(target, peers):
                now = time.monotonic()
                if now >= deadline or on_delivery_thread or not self._joined:
                    return False
                if self._refusals > seen and target <= max(self._refused_at.values(), default=-1):
                    return False  # a member refused registers this covers: waiting won't help
                if now >= ask_at:
                    # Acks come only from digest exchanges: start one with every member that
                    # has not acknowledged `target` yet, and again every interval, since a
                    # fault may have lost the last one.
                    network._call_soon(self, functools.partial(self._request_acks, target))
                    ask_at = now + network.anti_entropy_interval
                network._progress.wait(min(deadline, ask_at) - now)
            return True

    def _is_synced(self, target: int, peers: int | None) -> bool:
        members = self._network._members(self)
        done = sum(
            1
            for m in members
            if self._acked.get(m, -1) >= target and self._refused_at.get(m, -1) < target
        )
        return done >= (len(members) if peers is None else peers)

    def stats(self) -> dict[str, Any]:
        network = self._network
        with network._lock:
            members = network._members(self)
            return {
                "transport": "memory",
                "network": network.name,
                "name": self.name,
                "closed": self._closed,
                "members": len(members),
                "peers_connected": sum(1 for m in members if network._reachable(self.name, m.name)),
                "sequence": self._sequence,
                "queued": len(self._inbox),
                "clock_skew": self._clock.verdict.problem,
                "clock": self._clock.verdict.describe(),
                "last_sync": {m.name: self._last_sync.get(m) for m in members},
                **self._counters,
            }

    def members(self) -> list[dict[str, Any]]:
        network = self._network
        with network._lock:
            offsets = self._judged_offsets  # as of the last judgement, on the delivery thread
            described = [
                {
                    "address": f"memory://{network.name}/{m.name}",
                    "node": f"{m._node:016x}" if m._node is not None else None,
                    # A partition is noticed (as a dropped TCP connection is); a drop or a
                    # pause is not.
                    "state": "connected" if network._reachable(self.name, m.name) else "down",
                    "seed": False,
                    "clock_offset_ms": offsets.get(m),
                    "clock_agrees": (
                        agrees(offsets[m], self._clock.verdict.max_offset_ms)
                        if m in offsets and network._reachable(self.name, m.name)
                        else None
                    ),
                    "last_sync": self._last_sync.get(m),
                }
                for m in network._members(self)
            ]
        return sorted(described, key=lambda m: m["address"])

    def after_fork_in_child(self) -> None:
        """Rejoin the child's copy of the network (made anew: the parent's thread is gone)."""
        network = self._network
        network._after_fork_in_child()
        with network._lock:
            if self._host is not None and not self._closed and not network._closed:
                network._join(self)

    def close(self, timeout: float = 5.0) -> None:
        """Leave the network: idempotent, and bounded by ``timeout``.

        Messages already sent to others are still delivered (they are in flight); messages to
        this transport are discarded. When it returns, the delivery thread is not calling this
        transport's host and never will again (unless it was called from that very thread).
        """
        network = self._network
        deadline = time.monotonic() + timeout
        with network._lock:
            if self._closed:
                return
            self._closed = True
            for other in network._members(self):  # it has left: nobody waits for it
                other._acked.pop(self, None)
                other._refused_at.pop(self, None)
                other._last_sync.pop(self, None)
                other._offsets.pop(self, None)
                other._judged_offsets.pop(self, None)
            self._detach()
            ending = network._leave(self, deadline)
        if ending is not None:
            # With no member left the thread ends by itself: joined, so that a test that
            # closed every replica leaves no thread behind.
            ending.join(max(0.0, deadline - time.monotonic()))

    def _detach(self) -> None:
        """Stop being a member (lock held, or after a fork): nothing queued, nothing known."""
        self._joined = False
        self._inbox.clear()
        self._acked.clear()
        self._refused_at.clear()
        self._last_sync.clear()
        self._offsets.clear()
        self._judged_offsets.clear()
        self._next_round = float("inf")

    # On the delivery thread: the only place that calls the host -----------------------------

    @property
    def _replica(self) -> SyncHost:
        host = self._host
        assert host is not None, "work is only queued for started transports"
        return host

    def _hello(self) -> None:
        """Just joined: learn our node id, then compare digests with every member both ways."""
        self._node = self._replica.node_id
        self._sync_with_all()
        with self._network._lock:
            for member in self._reachable_members():
                self._network._call_soon(member, functools.partial(member._send_digest, self))

    def _reachable_members(self) -> list[MemoryTransport]:
        """The members no partition separates from this one (lock held)."""
        network = self._network
        return [m for m in network._members(self) if network._reachable(self.name, m.name)]

    def _sync_with_all(self) -> None:
        with self._network._lock:
            members = self._reachable_members()
        for member in members:
            self._send_digest(member)

    def _request_acks(self, target: int) -> None:
        with self._network._lock:
            acked, refused = self._acked, self._refused_at
            members = self._reachable_members()
            behind = [m for m in members if not refused.get(m, -1) < target <= acked.get(m, -1)]
        for member in behind:
            self._send_digest(member)

    def _anti_entropy_round(self) -> None:
        with self._network._lock:
            members = self._reachable_members()
        if members:
            self._send_digest(random.choice(members))
        self._check_clock()
        self._replica.check_clock_step()

    def _send_digest(self, to: MemoryTransport) -> None:
        host = self._replica
        with self._network._lock:
            # Read before the digests: a write is applied before it is published (numbered),
            # so every write up to `seq` is in the digests computed after this line.
            seq = self._sequence
        digests, clock_ms, now = dict(host.digests()), host.physical_ms(), time.monotonic()
        message = _Message("digest", self, seq, digests=digests, clock_ms=clock_ms, sent_at=now)
        self._send_to(to, message, "digests_sent")

    def _send_to(self, to: MemoryTransport, message: _Message, counter: str = "") -> None:
        with self._network._lock:
            self._network._send(message, to)
            if counter:
                self._counters[counter] += 1

    def _count(self, counter: str) -> None:
        with self._network._lock:
            self._counters[counter] += 1

    def _receive(self, message: _Message) -> None:
        host, sender, seq = self._replica, message.sender, message.seq
        if message.kind == "delta":
            self._count("deltas_received")
            self._merge(message.payload, store_first=False)  # as the peer transport does
        elif message.kind == "digest":
            self._heard_clock(sender, message)
            mine, theirs = host.digests(), message.digests
            differ = {n for n in mine.keys() | theirs.keys() if mine.get(n) != theirs.get(n)}
            self._count("digests_compared")
            push = sorted(n for n in differ if n in mine)
            if push:
                payload = encode(host.replicated(push))
                self._send_to(sender, _Message("state", self, payload=payload), "states_sent")
            # Always answered, even with nothing to pull: the answer completes the exchange
            # (and so the ack) the sender may be waiting for.
            pull = tuple(sorted(n for n in differ if n in theirs))
            self._send_to(sender, _Message("pull", self, seq, names=pull))
        elif message.kind == "pull":
            payload = encode(host.replicated(message.names))
            self._send_to(sender, _Message("state", self, seq, payload=payload), "states_sent")
        elif message.kind == "state":
            self._count("states_received")
            refused = self._merge(message.payload, store_first=True)  # stored before the ack
            if refused is not None and seq is not None:
                self._send_to(sender, _Message("ack", self, seq, refused=refused))
        else:  # "ack": the sender holds every write of ours up to seq
            assert seq is not None
            with self._network._lock:
                self._counters["acks_received"] += 1
                self._acked[sender] = max(self._acked.get(sender, -1), seq)
                if message.refused:
                    self._refused_at[sender] = max(self._refused_at.get(sender, -1), seq)
                    self._refusals += 1
                elif seq >= self._refused_at.get(sender, -1):
                    self._refused_at.pop(sender, None)  # a clean exchange since
                self._last_sync[sender] = time.time()
                self._network._progress.notify_all()

    def _merge(self, payload: bytes, *, store_first: bool) -> int | None:
        """Merge a member's registers: how many were refused, or None (no ack) if it failed."""
        try:
            delta = decode(payload)  # an empty STATE still stores what waits (SyncHost)
            skip = not delta and not store_first
            return 0 if skip else self._replica.merge_from_peer(delta, store_first=store_first)
        except RolloutError as exc:
            # Not acknowledged, so the sender does not count it as delivered; anti-entropy
            # offers it again.
            self._count("merge_errors")
            logger.warning("memory transport %r could not merge registers: %s", self.name, exc)
            return None

    def _heard_clock(self, sender: MemoryTransport, message: _Message) -> None:
        # Their clock now: as read when sent, plus the time the message spent queued (one
        # process, one monotonic clock), so a paused link does not look like a skewed clock.
        their_ms = round(message.clock_ms + (time.monotonic() - message.sent_at) * 1000)
        sample = OffsetSample.taken(their_ms, self._replica.physical_ms())
        with self._network._lock:
            if self._joined and sender._joined:
                self._offsets[sender] = sample
        self._check_clock()

    def _check_clock(self) -> None:
        """Judge this node's clock by the members it can reach (rollout.sync._clock)."""
        with self._network._lock:
            reachable = self._reachable_members()
            now_ms = self._replica.physical_ms()
            self._judged_offsets = {m: s.now(now_ms) for m, s in self._offsets.items()}
            offsets = {m.name: o for m, o in self._judged_offsets.items() if m in reachable}
        verdict = self._clock.update(offsets, self._replica.max_offset_ms)
        self._replica.set_clock_skew(verdict.problem)
