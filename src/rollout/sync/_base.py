"""The transport interface: how a replica exchanges deltas and digests with others.

A transport moves three things: a delta after every local write (``publish``), digests to find
differences (anti-entropy), and pulls of what differs. It talks to its replica only through
:class:`SyncHost`, a narrow port the ``Rollout`` hands it at ``start()`` (never the ``Rollout``
itself), so a transport never sees the facade's API and the replica never sees sockets.

Every transport passes :class:`rollout.testing.TransportConformance`.

Errors: ``publish`` never raises for a network problem (the change is already durable locally;
peers catch up by anti-entropy); ``close`` is idempotent and bounded in time.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import Any, Protocol

from .._core.clock import Timestamp
from .._core.state import Delta

__all__ = ["SyncHost", "Transport"]


class SyncHost(Protocol):
    """What a transport may ask of its replica. Called from the transport's own thread."""

    @property
    def node_id(self) -> int: ...

    def physical_ms(self) -> int:
        """This machine's wall clock in milliseconds (the injectable one)."""
        ...

    @property
    def max_offset_ms(self) -> int: ...

    def replicated(self, names: Iterable[str] | None = None) -> Delta:
        """The registers of the named flags (all when None) that other replicas should have."""
        ...

    def digests(self) -> dict[str, bytes]: ...

    def loaded_version(self, store: object) -> int | None:
        """The version of ``store`` this replica was loaded at when it started, if it was
        loaded from that store and the store numbers its changes; answered once (then None)."""
        ...

    def merge_remote(self, delta: Delta, *, store: bool = True) -> set[str]:
        """Merge registers from elsewhere (future ones rejected and counted), then notify.

        ``store=False`` when they came from the store itself (a shared Redis).
        """
        ...

    def merge_from_peer(self, delta: Delta, *, store_first: bool = True) -> int:
        """Merge a peer's registers like ``merge_remote``; returns how many were refused (held
        in the quarantine as stamped too far ahead), which the peer is told in its ACK so its
        ``wait_synced`` does not report registers this replica refused as delivered.

        ``store_first=True`` (registers whose receipt is acknowledged): they, and any applied
        earlier and not stored yet, are stored before it returns (an empty ``delta`` stores
        just those), else the store's error is raised. ``store_first=False`` (a peer's own
        write, sent as it committed it and never acknowledged): applied and announced first,
        then stored before it returns; a failed store is logged and retried by the next merge.
        """
        ...

    def applied_own_write(self, ts: Timestamp) -> bool:
        """Whether ``ts`` stamps one of this replica's latest local writes, already stored and
        applied here (waits for a write in progress). A transport whose store echoes each write
        back to its writer (Redis) skips such an echo: merging it again would change nothing."""
        ...

    def produced_versions(self, first: int, last: int) -> bool:
        """Whether the versions ``first`` to ``last`` of this replica's store were all produced
        by its own ``merge()`` and are applied here (waits for a merge in progress): a transport
        following that store skips them rather than reading back what it holds."""
        ...

    def forget_produced_versions(self, through: int | None = None) -> None:
        """Stop answering yes for the store versions up to ``through`` (None: every one): the
        transport has seen them, or the store may be numbering its changes from the start again
        (restarted empty, failed over, restored), when an old number names another's change."""
        ...

    def check_clock_step(self) -> None:
        """Called every anti-entropy round: recover if this machine's wall clock stepped back
        far behind the timestamps this node issued (rollout._client.pipeline)."""
        ...

    def set_clock_skew(self, problem: str | None) -> None:
        """Refuse local writes with ClockSkewError while ``problem`` is set (None clears it)."""
        ...


class Transport(abc.ABC):
    """Moves deltas between replicas. Methods other than ``start`` may be called from any thread."""

    @abc.abstractmethod
    def start(self, host: SyncHost) -> None:
        """Begin replicating ``host``; returns at once (connections are made in the background)."""

    @abc.abstractmethod
    def publish(self, delta: Delta) -> None:
        """Send a local write to every peer. Never blocks on the network, never raises for it."""

    @abc.abstractmethod
    def wait_synced(self, timeout: float, peers: int | None = None) -> bool:
        """Until every local write so far is where every other replica gets it.

        The peer transport: every known peer (or at least ``peers`` of them) holds it. A
        transport through a shared store (Redis): the store holds it and this replica is
        connected. Returns False if ``timeout`` seconds pass first, and at once when a peer
        answers, during the wait, that it refused registers the wait covers (quarantined).
        """

    @abc.abstractmethod
    def stats(self) -> dict[str, Any]:
        """Counters for ``Rollout.stats()``."""

    def members(self) -> list[dict[str, Any]]:
        """The nodes this one knows, with their state (empty for transports without members)."""
        return []

    @property
    def awaits_clock_confirmation(self) -> bool:
        """Whether peers must confirm this node's clock before it writes (a node configured
        with peers): until then the replica keeps aside what its store holds from "the future".
        """
        return False

    def after_fork_in_child(self) -> None:  # noqa: B027 - optional hook
        """Called in a forked child: drop the parent's sockets and thread, start anew."""

    @abc.abstractmethod
    def close(self, timeout: float = 5.0) -> None:
        """Leave cleanly: idempotent, and returns within about ``timeout`` seconds."""
