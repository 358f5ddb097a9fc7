"""Who the cluster is: the members a node knows, their state, backoff and clock offsets."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

from ._messages import MAX_MEMBERS

__all__ = ["Backoff", "Member", "Members", "parse_address"]

logger = logging.getLogger("rollout.sync")


def parse_address(address: str, argument: str = "address") -> tuple[str, int]:
    """``"host:port"`` or ``"[v6]:port"`` as (host, port); ValueError naming the argument."""
    if not isinstance(address, str):
        raise TypeError(f"{argument} must be a 'host:port' string, got {address!r}")
    host, sep, port_text = address.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{argument} must look like 'host:port', got {address!r}")
    return host, int(port_text)


@dataclass
class Backoff:
    """Exponential backoff with jitter, capped: cheap for a dead peer, quick for a live one."""

    first: float = 0.05
    cap: float = 2.0
    attempts: int = 0

    def next_delay(self) -> float:
        delay: float = min(self.cap, self.first * 2.0**self.attempts)
        self.attempts += 1
        return delay * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.attempts = 0


@dataclass
class Member:
    address: str  # how this node reaches it (a configured peer, or what it advertised)
    seed: bool  # configured in `peers`: retried forever, never dropped
    node: int | None = None
    state: str = "connecting"  # connecting | connected | down | self
    backoff: Backoff = field(default_factory=Backoff)
    down_since: float | None = None
    offset_ms: int | None = None  # their clock minus ours, from the last hello or digest
    last_sync: float | None = None  # time.time() of the last completed exchange
    #: A connection to it completed its handshake once: it is a real member, not just an
    #: address someone gossiped (see Mesh: such an address gets only a few tries).
    ever_connected: bool = False

    def describe(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "node": f"{self.node:016x}" if self.node is not None else None,
            "state": self.state,
            "seed": self.seed,
            "clock_offset_ms": self.offset_ms,
            "last_sync": self.last_sync,
        }


class Members:
    """The member table. Used only on the transport's loop thread (no lock needed)."""

    def __init__(self, seeds: list[str], member_timeout: float) -> None:
        self.by_address: dict[str, Member] = {a: Member(a, seed=True) for a in seeds}
        self.member_timeout = member_timeout
        self._full_logged = False

    def learn(self, address: str) -> Member | None:
        """Add a member heard of from a peer; None if it was known already, or the table is full.

        Full at ``MAX_MEMBERS``: what peers tell us cannot grow the table (and the dialling)
        without end, whatever they send.
        """
        if address in self.by_address:
            return None
        if len(self.by_address) >= MAX_MEMBERS:
            if not self._full_logged:
                logger.warning(
                    "not learning %s: %d members known already (the most a node keeps)",
                    address,
                    len(self.by_address),
                )
                self._full_logged = True
            return None
        member = self.by_address[address] = Member(address, seed=False)
        return member

    def mark_down(self, member: Member) -> None:
        if member.state != "self":
            member.state = "down"
            if member.down_since is None:
                member.down_since = time.monotonic()

    def mark_connected(self, member: Member, node: int) -> None:
        member.node, member.state, member.down_since = node, "connected", None
        member.ever_connected = True
        member.backoff.reset()

    def expired(self, member: Member) -> bool:
        """A non-seed member down for longer than member_timeout is forgotten."""
        return (
            not member.seed
            and member.down_since is not None
            and time.monotonic() - member.down_since > self.member_timeout
        )

    def forget(self, member: Member) -> None:
        self.by_address.pop(member.address, None)

    def connected_addresses(self) -> list[str]:
        return sorted(a for a, m in self.by_address.items() if m.state == "connected")

    def describe(self, connected: dict[int, str]) -> list[dict[str, Any]]:
        """Every member, plus connected nodes that are not members (they dialled in without
        advertising an address), given as node id -> how the connection is labelled."""
        described = [m.describe() for m in self.by_address.values() if m.state != "self"]
        known = {m["node"] for m in described}
        for node, label in connected.items():
            if f"{node:016x}" not in known:
                described.append(
                    {
                        "address": label,
                        "node": f"{node:016x}",
                        "state": "connected",
                        "seed": False,
                        "clock_offset_ms": None,
                        "last_sync": None,
                    }
                )
        return sorted(described, key=lambda m: m["address"])
