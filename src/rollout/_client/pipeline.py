"""The write pipeline: the one path every change takes into this replica.

Two kinds of change reach a replica, and both go through here:

* a local write (``flags.activate_user(...)``): checked by the write hooks, stamped with one
  HLC timestamp, recorded in history, saved to the store, applied to the replica, published to
  the transport, then handed to the hooks and the subscribers;
* a merge of registers from elsewhere (a peer, Redis, ``flags.merge()``, ``refresh()``): those
  stamped too far in the future are rejected and counted, the rest are saved (unless they came
  from the store), observed by the clock, applied, and the subscribers told.

Keeping both in one object is what makes "store first, then apply, then publish, in the order
applied" true for every change, and gives the three seams their one home: the transport (through
:class:`~rollout._client.sync_port.SyncPort`), write hooks (the Ruby mirror) and subscribers
(the dashboard, the OpenFeature provider).
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from .._core.clock import HybridClock
from .._core.history import current_context
from .._core.keys import EXISTS, history_key
from .._core.state import Delta, Register
from ..errors import ClockSkewError, ClosedError, StoreUnavailableError
from .replica import Replica

if TYPE_CHECKING:
    from ..stores._base import Store
    from ..sync._base import Transport

__all__ = ["Changes", "Subscriber", "WriteHook", "WritePipeline"]

logger = logging.getLogger("rollout")

#: ``{flag name: {register key: value}}``: what one local write changes.
Changes = Mapping[str, Mapping[str, Any]]
Subscriber = Callable[[set[str]], object]
#: Builds a write's history event: ``(flag, values, action, actor, reason) -> event``.
EventBuilder = Callable[[str, Mapping[str, Any], str, str | None, str | None], dict[str, Any]]


class WriteHook(Protocol):
    """Something that must see every local write (the Ruby mirror is one).

    ``before_write`` runs before anything is stamped or stored and may raise to refuse the whole
    write (a ``ValueError`` naming what is wrong); ``after_write`` runs after the write is
    stored, applied and published, outside the write lock, and must not raise.
    """

    def before_write(self, changes: Changes) -> None: ...

    def after_write(self, delta: Delta) -> None: ...


class WritePipeline:
    """Stamps, stores, applies and publishes every change of one replica."""

    def __init__(
        self,
        replica: Replica,
        clock: HybridClock,
        store: Store | None,
        *,
        history_limit: int,
        event: EventBuilder,
    ) -> None:
        self.replica = replica
        self.clock = clock
        self.store = store
        self.transport: Transport | None = None
        self.hooks: list[WriteHook] = []
        self.subscribers: list[Subscriber] = []
        self.counters = dict.fromkeys(
            ("writes", "merges", "registers_rejected", "group_errors", "subscriber_errors"), 0
        )
        #: Set by the transport while this node's clock disagrees with its peers' (None: fine).
        self.clock_skew: str | None = None
        self.closed = False
        self._history_limit = history_limit
        self._event = event
        self._lock = threading.Lock()

    # Local writes -------------------------------------------------------------------------------

    def write(self, changes: Changes, action: str) -> None:
        """Stamp ``changes`` with one timestamp, store, apply and publish them.

        ``action`` names the change in each flag's history (the public method's name). Raises
        before anything is stored or applied: ClosedError, ClockSkewError, a hook's refusal, or
        the store's error.
        """
        if self.closed:
            raise ClosedError("this Rollout is closed; writes are refused (checks still answer)")
        if self.clock_skew is not None:
            raise ClockSkewError(self.clock_skew)
        for hook in self.hooks:
            hook.before_write(changes)
        with self._lock:
            ts = self.clock.tick()
            delta: Delta = {}
            actor, reason = current_context()
            for name, values in changes.items():
                registers = {key: Register(ts, value) for key, value in values.items()}
                registers.setdefault(EXISTS, Register(ts, True))
                if self._history_limit:
                    registers[history_key(ts)] = Register(
                        ts, self._event(name, values, action, actor, reason)
                    )
                delta[name] = registers
            if self.store is not None:
                self.store.save(delta)  # raises before anything changes here
            changed = self.replica.apply(delta)
            self.counters["writes"] += 1
            if self.transport is not None:
                # Inside the lock, so peers receive deltas in the order they were applied.
                self.transport.publish(delta)
        for hook in self.hooks:
            hook.after_write(delta)
        self.notify(changed)

    # Changes from elsewhere ---------------------------------------------------------------------

    def merge(self, incoming: Delta, *, save: bool) -> set[str]:
        """Merge registers from elsewhere; returns the flags whose visible state changed.

        Registers stamped more than ``max_offset`` ahead of this clock are rejected and counted,
        leaving the replica and the clock unchanged. ``save=False`` for registers that came from
        the store itself.
        """
        accepted: Delta = {}
        rejected = 0
        too_far_ahead = self.clock.too_far_ahead
        for name, registers in incoming.items():
            kept = {key: reg for key, reg in registers.items() if not too_far_ahead(reg.ts)}
            rejected += len(registers) - len(kept)
            if kept:
                accepted[name] = kept
        if rejected:
            self.counters["registers_rejected"] += rejected
            logger.warning(
                "rejected %d registers stamped more than %d ms ahead of this clock",
                rejected,
                self.clock.max_offset_ms,
            )
        if not accepted:
            return set()
        with self._lock:
            if save and self.store is not None:
                self.store.save(accepted)
            self.clock.observe(max(r.ts for regs in accepted.values() for r in regs.values()))
            changed = self.replica.apply(accepted)
            self.counters["merges"] += 1
        self.notify(changed)
        return changed

    def load_store(self, *, can_wait: bool) -> None:
        """Apply everything the store holds (at start). ``can_wait``: a transport will load it
        later, so an unreachable store is logged instead of raised."""
        if self.store is None:
            return
        try:
            loaded = self.store.load()
        except StoreUnavailableError as exc:
            if not can_wait:
                raise
            # A service must be able to start while Redis is briefly away: it starts from its
            # defaults, checks answer, and the transport loads everything once it connects.
            logger.warning("starting without the store's flags for now: %s", exc)
            return
        self.replica.apply(loaded)
        # Stamp new writes after everything already stored, even if this machine's clock
        # went backwards since those were written.
        self.clock.observe(self.replica.latest_timestamp())

    # Subscribers --------------------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {callback!r}")
        # Copy-on-write: notify() iterates a list no subscriber can change under it.
        self.subscribers = [*self.subscribers, callback]

        def unsubscribe() -> None:
            self.subscribers = [s for s in self.subscribers if s is not callback]

        return unsubscribe

    def notify(self, changed: set[str]) -> None:
        if not changed:
            return
        for callback in self.subscribers:
            try:
                callback(set(changed))
            except Exception:
                self.counters["subscriber_errors"] += 1
                logger.exception("subscriber %r raised", callback)

    # Fork safety --------------------------------------------------------------------------------

    def guard_fork(self) -> None:
        """Make ``os.fork()`` safe: no lock held across it, replication restarted in the child."""
        _FORK_GUARDED.add(self)

    def _before_fork(self) -> None:
        # Held across the fork so the child never inherits them locked by a thread it lacks.
        self._lock.acquire()
        self.replica.lock.acquire()

    def _after_fork_in_parent(self) -> None:
        self.replica.lock.release()
        self._lock.release()

    def _after_fork_in_child(self) -> None:
        self.replica.lock.release()
        self._lock.release()
        if self.transport is not None:
            self.transport.after_fork_in_child()


_FORK_GUARDED: weakref.WeakSet[WritePipeline] = weakref.WeakSet()


def _before() -> None:
    for pipeline in list(_FORK_GUARDED):
        pipeline._before_fork()


def _parent() -> None:
    for pipeline in list(_FORK_GUARDED):
        pipeline._after_fork_in_parent()


def _child() -> None:
    for pipeline in list(_FORK_GUARDED):
        pipeline._after_fork_in_child()


os.register_at_fork(before=_before, after_in_parent=_parent, after_in_child=_child)
