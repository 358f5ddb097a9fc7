"""The write pipeline: the one path every change takes into this replica.

A local write (``flags.activate_user(...)``) is checked by the write hooks, stamped with one HLC
timestamp, recorded in history, saved to the store (a big one in parts on Redis), applied,
published to the transport, then handed to the hooks and the subscribers. A merge of registers from
elsewhere (a peer, Redis, ``flags.merge()``, ``refresh()``, the store at start) has those stamped
too far in the future refused and held in the quarantine (rollout._client.quarantine); the rest are
saved (unless they came from the store), observed by the clock, applied, and the subscribers told.
But a peer's delta (committed by its writer before it was sent; never acknowledged) is applied and
announced, then committed right after: rollout._client.uncommitted says why that is safe.

It also keeps this node's own clock honest: when the wall clock steps back so far that the HLC
is more than ``max_offset`` ahead of it (:meth:`WritePipeline.check_clock_step`), the registers
stamped in that future leave the replica and the store for the quarantine and the HLC is
re-based, rather than every later write being stamped where the cluster refuses it.

Keeping both in one object is what makes "store first, then apply, then publish, in the order
applied" true for every local write and every acknowledged merge, and gives the three seams
their one home: the transport (through :class:`~rollout._client.sync_port.SyncPort`), write
hooks (the Ruby mirror) and subscribers (the dashboard, the OpenFeature provider).
"""

from __future__ import annotations

import operator
import threading

from .._core.clock import HybridClock
from .._core.history import current_context
from .._core.keys import EXISTS, RULES_ENTITY, history_key, is_history
from .._core.state import Delta, Register, stamped
from ..errors import ClockSkewError, ClosedError, RolloutError, StoreError, StoreUnavailableError
from . import fork_guard
from .clock_trust import ClockTrust
from .log import logger
from .own_writes import OwnWrites
from .quarantine import Quarantine
from .replica import Replica
from .uncommitted import Uncommitted

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, Protocol, TypeAlias

    from ..stores._base import Store
    from ..sync._base import Transport

__all__ = ["Changes", "Subscriber", "WriteHook", "WritePipeline"]

_TS = operator.attrgetter("ts")

#: ``{flag name: {register key: value}}``: what one local write changes.
Changes: TypeAlias = "Mapping[str, Mapping[str, Any]]"
Subscriber: TypeAlias = "Callable[[set[str]], object]"
#: Builds a write's history event: ``(flag, values, action, actor, reason) -> event``, or None
#: when it changes nothing visible: no event then, but the write is still stamped and stored
#: (a re-add must beat an older concurrent removal elsewhere).
Event: TypeAlias = "dict[str, Any] | None"
EventBuilder: TypeAlias = "Callable[[str, Mapping[str, Any], str, str | None, str | None], Event]"

if TYPE_CHECKING:  # a type only: typing is not loaded at run time

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
        #: Told the names of the named rules that changed (never mixed with flag names).
        self.rule_subscribers: list[Subscriber] = []
        self.counters = dict.fromkeys(
            (
                "writes",
                "merges",
                "registers_rejected",
                "group_errors",
                "rule_errors",
                "subscriber_errors",
                "quarantine_accepted",
                "quarantine_dropped",
                "quarantine_superseded",
                "clock_steps_back",
                "store_reloads",
                "peer_commits_failed",
            ),
            0,
        )
        self.quarantine = Quarantine(store)
        self.trust = ClockTrust(clock)
        #: Set before the store is loaded when peers will judge this clock (a node configured
        #: with peers): registers of the store that look like the future are then kept aside
        #: until the verdict, rather than quarantined by a clock that may be the wrong one.
        self.defer_future_store = False
        #: Registers of the store from "the future", kept aside until peers confirm this clock.
        self._deferred: Delta = {}
        self._loaded_version: int | None = None  # the store's, at start: see take_loaded_version
        self.closed = False
        self._history_limit = history_limit
        self._event = event
        self._lock = threading.Lock()
        self.uncommitted = Uncommitted()  # used under _lock, as every save is
        #: The latest local writes, stored and applied: a transport skips their echoes.
        self.own_writes = OwnWrites(self._lock)

    # Local writes -------------------------------------------------------------------------------

    def write(
        self, changes: Changes, action: str, *, mark_exists: bool = True, must_exist: bool = False
    ) -> None:
        """Stamp ``changes`` with one timestamp, store, apply and publish them.

        ``action`` names the change in each flag's history (the public method's name). Raises
        before anything is applied or published: ClosedError, ClockSkewError, a hook's refusal,
        or the store's error. The store's error means nothing was stored, except
        StoreOutcomeUnknownError (the store may yet carry it out: its change notification or the
        next load then brings it here, never this call) and PartlyStoredError (raised once the
        parts it stored are applied). ``mark_exists=False``: do not (re)create the flag (an
        event only). ``must_exist=True`` (a removal): UnknownFlagError when a flag does not
        exist, checked under the lock so that a removal never undoes a concurrent delete.
        """
        if self.closed:
            raise ClosedError("this Rollout is closed; writes are refused (checks still answer)")
        problem = self.clock_problem()
        if problem is not None:
            raise ClockSkewError(problem)
        for hook in self.hooks:
            hook.before_write(changes)
        self.check_clock_step()
        with self._lock:
            if must_exist:
                self.replica.require(changes)
            ts = self.clock.tick()
            delta: Delta = {}
            actor, reason = current_context()
            for name, values in changes.items():
                registers = stamped(values, ts)
                if mark_exists and name != RULES_ENTITY:  # never a flag (keys.RULES_ENTITY)
                    registers.setdefault(EXISTS, Register(ts, True))
                if self._history_limit:
                    event = self._event(name, values, action, actor, reason)
                    if event is not None:
                        registers[history_key(ts)] = Register(ts, event)
                delta[name] = registers
            superseded = self.quarantine.superseded_by(delta) if self.quarantine else {}
            if superseded and self.store is not None:
                self.store.discard(superseded)  # else the held register would win in the store
            # With the peers' registers not yet committed, if any: all it may have seen. Of a
            # big write failed midway, the parts stored (applied like a write, then raised).
            delta, partly = self.uncommitted.save_write(self.store, delta, self.own_writes)
            if superseded:
                self._supersede(superseded, action)
            changed = self.replica.apply(delta)
            rules = self.replica.take_changed_rules()
            self.counters["writes"] += 1
            if self.transport is not None:
                self.own_writes.add(ts)
                # Inside the lock, so peers receive deltas in the order they were applied.
                self.transport.publish(delta)
        for hook in self.hooks:
            hook.after_write(delta)
        self.notify(changed, rules)
        if partly is not None:
            raise partly

    # Changes from elsewhere ---------------------------------------------------------------------

    def merge(self, incoming: Delta, *, save: bool, origin: str = "merge") -> set[str]:
        """Merge registers from elsewhere; returns the flags whose visible state changed."""
        return self.merge_counting(incoming, save=save, origin=origin)[0]

    def merge_counting(
        self, incoming: Delta, *, save: bool, origin: str, store_first: bool = True
    ) -> tuple[set[str], int]:
        """Merge registers from elsewhere: ``(flags whose visible state changed, refused)``.

        Registers stamped more than ``max_offset`` ahead of this clock, and registers refused
        before (the same flag, key and timestamp), are refused: held in the quarantine with
        ``origin``, counted, and leave the replica, the store and the clock unchanged.
        ``save=False`` for registers that came from the store itself.

        ``store_first`` (with ``save``): stored with what waits before anything is applied (the
        store's error raised, nothing changed). ``store_first=False``, a peer's delta: applied
        and announced, then stored; a failure is retried later (rollout._client.uncommitted).
        """
        self.check_clock_step()
        accepted, refused = self._screen(incoming, origin)
        commit_after = save and not store_first and self.store is not None
        if not accepted:
            if save and store_first:
                self.commit_uncommitted()  # the caller acknowledges after this: stored by then
            return set(), refused
        with self._lock:
            if commit_after:
                self.uncommitted.wait(accepted)
            elif save and self.store is not None:
                # flags.merge() (Store.merge may save it in parts): the transport skips its versions
                store, save_with, join = self.store, self.uncommitted.save_with, origin == "merge"
                self.own_writes.record_merge(lambda: save_with(store, accepted, join=join))
            self.clock.observe(max(max(map(_TS, regs.values())) for regs in accepted.values()))
            changed = self.replica.apply(accepted)
            rules = self.replica.take_changed_rules()
            self.counters["merges"] += 1
        self.notify(changed, rules)
        if commit_after:
            try:
                self.commit_uncommitted()
            except RolloutError as exc:  # the store's, or ClosedError (closed meanwhile)
                self.counters["peer_commits_failed"] += 1
                logger().warning("a peer's change is applied, not stored yet (retried): %s", exc)
        return changed, refused

    def commit_uncommitted(self) -> None:
        """Store the peers' registers applied and not stored yet (or raise; they keep waiting)."""
        with self._lock:
            if self.uncommitted and self.store is not None:
                self.uncommitted.save_with(self.store, {})

    def _screen(self, incoming: Delta, origin: str) -> tuple[Delta, int]:
        """Split ``incoming`` into the registers to merge and the ones refused (held)."""
        now = self.clock.physical_ms()
        accepted, refused, count = self.quarantine.screen(incoming, now + self.clock.max_offset_ms)
        if not count:
            return accepted, 0
        self.counters["registers_rejected"] += count
        # While this node's own clock is in question (an outlier, no majority, not yet judged,
        # or it jumped since), "from the future" may only mean "this clock is behind": then a
        # peer's registers are refused but not held (anti-entropy offers them again, and they
        # are judged once the clock is trusted), and the store's are kept aside until then.
        # Held, they would wait for an operator although nothing is wrong with them.
        in_question = self.clock_problem() is not None
        if origin == "store" and (in_question or self.defer_future_store):
            for name, registers in refused.items():
                self._deferred.setdefault(name, {}).update(registers)
            logger().warning(
                "%d registers of the store are stamped more than %d ms ahead of this clock; "
                "kept aside until the peers have judged this clock",
                count,
                self.clock.max_offset_ms,
            )
        elif not (origin == "peer" and in_question) and self.quarantine.hold(refused, origin, now):
            logger().error(
                "quarantined registers from %s stamped more than %d ms ahead of this clock "
                "(see `rollout quarantine`): %s",
                origin,
                self.clock.max_offset_ms,
                ", ".join(sorted(refused)[:10]),
            )
        return accepted, count

    def load_store(self, *, can_wait: bool) -> None:
        """Apply everything the store holds (at start). ``can_wait``: a transport will load it
        later, so an unreachable store is logged instead of raised."""
        if self.store is None:
            return
        try:
            loaded, version = self.store.load_numbered()
        except StoreUnavailableError as exc:
            if not can_wait:
                raise
            # A service must be able to start while Redis is briefly away: it starts from its
            # defaults, checks answer, and the transport loads everything once it connects.
            logger().warning("starting without the store's flags for now: %s", exc)
            return
        # Registers stamped beyond max_offset (this node once ran ahead, or wrote them before
        # an NTP step back) are held in the quarantine, neither applied nor observed: else the
        # clock would stamp every new write that far ahead too, and the cluster refuse them all.
        accepted, _ = self._screen(loaded, "store")
        self.replica.apply(accepted)
        self.replica.take_changed_rules()  # the starting state: nobody is told of it
        # Stamp new writes after everything stored, even if this clock went back since.
        self.clock.observe(self.replica.latest_timestamp())
        self._loaded_version = version

    def take_loaded_version(self, store: object) -> int | None:
        """``store``'s version at the load at start, once (else None): its transport's first
        connection then skips re-seeding and reloading what the replica holds already."""
        version, self._loaded_version = self._loaded_version, None
        return version if store is self.store else None

    # This node's own clock --------------------------------------------------------------------

    def clock_problem(self) -> str | None:
        """Why this node's clock cannot be trusted now (None: it can): local writes are refused
        while it is set (rollout._client.clock_trust)."""
        return self.trust.problem()

    def set_clock_verdict(self, problem: str | None) -> None:
        """The transport's verdict on this clock (None: its peers agree with it)."""
        self.trust.judged(problem)
        if problem is None:
            self.defer_future_store = False
            deferred, self._deferred = self._deferred, {}
            if deferred:
                # Judged by a trusted clock now: merged if they were only ahead of a slow one,
                # held in the quarantine if they are still ahead.
                self.merge(deferred, save=False, origin="store")

    @property
    def deferred(self) -> int:
        """Registers of the store kept aside until the peers have judged this clock."""
        return sum(len(registers) for registers in self._deferred.values())

    def check_clock_step(self) -> None:
        """Recover when the wall clock stepped back far behind this node's HLC (on every write
        and merge, and every anti-entropy round through the transport).

        Without this, the HLC keeps stamping at its old, future time (it never goes back), and
        the cluster refuses every write this node acknowledges.
        """
        if not self.clock.runs_ahead() or self.clock_problem() is not None:
            # With peers, only once they say this clock is right: a clock that stepped back
            # to a wrong time must not throw away the majority's writes (it is refused as an
            # outlier instead, and its HLC, which followed the majority, stays where it is).
            return
        with self._lock:
            if not self.clock.runs_ahead():
                return
            now = self.clock.physical_ms()
            removed, changed = self.replica.remove_after(now + self.clock.max_offset_ms)
            rules = self.replica.take_changed_rules()
            # Only this node's own registers leave the store: another writer's, in a shared
            # store, are not this node's to delete (its clock may be the wrong one); they stay
            # there and are screened again at the next load.
            own = {
                name: mine
                for name, registers in removed.items()
                if (mine := {k: r for k, r in registers.items() if r.ts.node == self.clock.node})
            }
            # Another node's register is held only without peers; with peers it just leaves the
            # replica: anti-entropy offers it again and the trusted clock judges it then.
            held = removed if not self.trust.judged_by_peers else own
            if own and self.store is not None:
                try:
                    self.store.discard(own)
                except StoreError as exc:
                    # Still quarantined here; the store screens them again at the next start.
                    logger().warning("could not remove future registers from the store: %s", exc)
            self.quarantine.hold(held, "own clock", now)
            # Safe, though an HLC never goes back otherwise: every timestamp above the new base
            # was just removed from this replica (this node's own from its store too, and the
            # others' there are screened at every load), and no healthy peer accepted any of them
            # (too far ahead), so nothing this node stamps later can lose to one it holds.
            self.clock.rebase(self.replica.latest_timestamp())
            self.own_writes.clear()  # some may have left the replica just now
            self.counters["clock_steps_back"] += 1
        logger().error(
            "this node's clock is more than %d ms behind timestamps it issued (did the wall "
            "clock step back?): %d registers moved to the quarantine, clock re-based; peers "
            "repair the replica (see `rollout quarantine`)",
            self.clock.max_offset_ms,
            sum(len(r) for r in removed.values()),
        )
        self.notify(changed, rules)

    # Resolving the quarantine -----------------------------------------------------------------

    def resolve(self, flag: str, key: str | None, *, accept: bool) -> int:
        """Accept (write the values again, stamped now) or drop held registers of ``flag``
        (only ``key`` when given). Returns how many were resolved; ValueError if none is held.

        Either way they also leave the store (compare-and-delete), where one left behind would
        win every later write to its key in the store's own merge. Both are recorded in the
        flag's history, and refused like any write (closed, clock skew) before anything changes.
        """
        held = self.quarantine.peek(flag, key).get(flag, {})
        if not held:
            what = f"flag {flag!r}" + (f" key {key!r}" if key is not None else "")
            raise ValueError(f"nothing is quarantined for {what} (see `rollout quarantine`)")
        values = {k: r.value for k, r in held.items() if not is_history(k)}
        if accept and values:
            # The fresh write supersedes the held registers it rewrites (_supersede).
            self.write({flag: values}, "quarantine_accept")
            return len(values)
        self.write({flag: {}}, "quarantine_drop", mark_exists=False)
        if self.store is not None:
            self.store.discard({flag: held})
        self.quarantine.take(flag, key)
        self.counters["quarantine_dropped"] += len(values)
        return len(values)

    def _supersede(self, superseded: Delta, action: str) -> None:
        count = self.quarantine.take_superseded(superseded)
        accepted = action == "quarantine_accept"
        self.counters["quarantine_accepted" if accepted else "quarantine_superseded"] += count

    # Subscribers --------------------------------------------------------------------------------

    def subscribe(self, callback: Subscriber, *, rules: bool = False) -> Callable[[], None]:
        """``callback(names)`` after each change of flags (``rules``: of named rules)."""
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {callback!r}")
        attribute = "rule_subscribers" if rules else "subscribers"
        # Copy-on-write: notify() iterates a list no subscriber can change under it.
        setattr(self, attribute, [*getattr(self, attribute), callback])

        def unsubscribe() -> None:
            setattr(self, attribute, [s for s in getattr(self, attribute) if s is not callback])

        return unsubscribe

    def notify(self, changed: set[str], rules: set[str] | frozenset[str] = frozenset()) -> None:
        """Tell the subscribers: named rules to the rules' subscribers, then flags to theirs.

        Rules first: one who hears both (a page drawn from rules and flags) may act on the first
        it hears at once, and should then read flags after the rules they use.
        """
        for names, callbacks in ((rules, self.rule_subscribers), (changed, self.subscribers)):
            if not names:
                continue
            for callback in callbacks:
                try:
                    callback(set(names))
                except Exception:
                    self.counters["subscriber_errors"] += 1
                    logger().exception("subscriber %r raised", callback)

    # Fork safety (rollout._client.fork_guard) ---------------------------------------------------

    def guard_fork(self) -> None:
        """Make ``os.fork()`` safe: no lock held across it, replication restarted in the child."""
        fork_guard.guard(self)

    def fork_locks(self) -> tuple[threading.Lock, threading.RLock]:
        return self._lock, self.replica.lock
