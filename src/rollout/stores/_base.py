"""The store interface: where a replica's registers are kept between runs.

A store does three things: hand back every register it holds (:meth:`Store.load`), merge a
delta into what it holds, keeping per key the register that wins the last-writer-wins rule
(:meth:`Store.save`), and remove given registers if still there (:meth:`Store.discard`: how a
register stamped in the future leaves the store; docs/operations.md, "Quarantine"). Because save
merges rather than overwrites, any number of processes can save into one store concurrently
without losing an edit.

Every implementation passes :class:`rollout.testing.StoreConformance`.

Errors: :class:`~rollout.errors.StoreUnavailableError` when the backend cannot be reached or is
busy for too long (nothing was written), :class:`~rollout.errors.StoreError` for anything else the
backend reports, :class:`~rollout.errors.ClosedError` after :meth:`close`.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

from .._core.history import DEFAULT_HISTORY_LIMIT
from .._core.state import Delta

if TYPE_CHECKING:
    from ..sync import Transport

__all__ = ["Store"]


class Store(abc.ABC):
    """Abstract base class of stores. Methods are synchronous and thread-safe."""

    #: A short description for logs and ``stats()``, e.g. ``"sqlite:///flags.db"``.
    url: str = ""

    #: How many history events to keep per flag (the newest). ``Rollout`` raises it to its own
    #: ``history_limit``; keeping more than a replica does is harmless.
    history_limit: int = DEFAULT_HISTORY_LIMIT

    @abc.abstractmethod
    def load(self) -> Delta:
        """Every register held, as one delta. A consistent snapshot, even during writes."""

    @abc.abstractmethod
    def save(self, delta: Delta) -> None:
        """Merge ``delta`` in, atomically: all of it is durable when this returns, or none.

        A register replaces the stored one for its key only if it wins (newer timestamp).
        Registers hidden by a newer watermark may be dropped.
        """

    @abc.abstractmethod
    def discard(self, delta: Delta) -> None:
        """Remove exactly these registers, atomically, where they are still held: a register
        goes only if its flag, key and timestamp all match (a compare-and-delete), so a newer
        register saved since under that key stays. Others' replicas are not told (nothing they
        hold changes: this removes registers stamped too far ahead, which they refused too).
        """

    def default_transport(self) -> Transport | None:
        """The transport that gives replicas on this store live updates, if it has one.

        ``Rollout`` starts it when no other transport is configured (Redis: its pub/sub).
        """
        return None

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release connections. Idempotent."""
