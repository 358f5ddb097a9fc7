"""The in-memory network: replicas in one process replicate through it, without sockets.

Why it exists: replication should be testable end to end without sockets or Redis, fast, and
with faults a test can switch on and off exactly (a partition, held messages, lost messages).
Each replica gets its own transport (the protocol is :mod:`rollout.memory._transport`)::

    net = MemoryNetwork()
    a = Rollout(transport=net.transport("a"))
    b = Rollout(transport=net.transport("b"))
    net.partition("b")      # b can no longer reach a, nor a reach b
    net.heal()              # anti-entropy brings both sides together again

Threads: one delivery thread per network does all the receiving and every anti-entropy round,
and so makes every call into every :class:`~rollout.sync.SyncHost`. ``publish`` only appends to
inboxes: it runs on the writer's thread while the writer holds its write lock, so running the
receiver's merge there would take a second replica's lock under the first (a lock-order
deadlock as soon as two replicas write at once) and re-enter the writer's own lock when a
subscriber writes back.
"""

from __future__ import annotations

import collections
import functools
import itertools
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeAlias

from ..errors import ClosedError
from ._transport import MemoryTransport, _Message

__all__ = ["MemoryNetwork"]

logger = logging.getLogger("rollout.sync")

#: A piece of work for the delivery thread: whose host it calls, and what to do.
_Work: TypeAlias = tuple[MemoryTransport, Callable[[], None]]


class MemoryNetwork:
    """The hub that carries messages between its transports, on one delivery thread.

    The thread starts with the first transport and ends when the last one closes, so a test
    that forgets :meth:`close` leaves nothing running once its replicas are closed.

    Faults act when a message would be delivered, so once a fault method returns, nothing
    crosses it, including what was already in flight:

    * :meth:`partition` splits the network into sides; messages between sides are lost, and the
      transports notice (``members()`` shows the others as ``down``);
    * :meth:`drop` loses every message to some transports silently (they still look connected);
    * :meth:`pause` holds messages to some transports, in order, until :meth:`resume`;
    * :meth:`heal` ends partitions and drops, and has every pair of transports compare digests
      at once, as a reconnecting peer would.
    """

    def __init__(self, *, anti_entropy_interval: float = 0.2, name: str = "memory") -> None:
        if (
            isinstance(anti_entropy_interval, bool)
            or not isinstance(anti_entropy_interval, int | float)
            or anti_entropy_interval <= 0
        ):
            raise ValueError(
                "anti_entropy_interval must be a positive number of seconds, "
                f"got {anti_entropy_interval!r}"
            )
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        self.name = name
        self.anti_entropy_interval = float(anti_entropy_interval)
        self._numbers = itertools.count(1)
        self._closed = False
        #: Every transport not closed, by name (started or not: a fault may name one early).
        self._transports: dict[str, MemoryTransport] = {}
        # Faults, by transport name, so that they also apply to a transport that restarts
        # under the same name. A name absent from _side is on side 0.
        self._side: dict[str, int] = {}
        self._dropping: set[str] = set()
        self._drop_all = False
        self._paused: set[str] = set()
        self._pause_all = False
        self._delivered = 0
        self._dropped = 0
        self._new_process_state()

    def _new_process_state(self) -> None:
        """The state that belongs to one process: its lock, its thread, its queues."""
        self._pid = os.getpid()
        # One lock for everything the network and its transports share. Invariant: nobody
        # calls into a SyncHost while holding it, and publish() (called under a writer's write
        # lock) takes nothing else, so the lock order is always write lock -> network lock.
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # the delivery thread waits on it
        self._progress = threading.Condition(self._lock)  # wait_synced() and close() wait on it
        self._thread: threading.Thread | None = None
        #: The transport whose host the delivery thread is calling (None between two pieces of
        #: work). close() waits for it to be another, so that after close() returns nothing
        #: calls that host again (its replica may close its store next).
        self._busy: MemoryTransport | None = None
        self._tasks: collections.deque[_Work] = collections.deque()
        self._turn = 0  # round-robin over the inboxes, so one busy replica starves no other

    # Transports ---------------------------------------------------------------------------------

    def transport(self, name: str | None = None) -> MemoryTransport:
        """A new transport on this network; ``name`` (unique among open ones) is for faults."""
        return MemoryTransport(self, name=name)

    def _register(self, transport: MemoryTransport, name: str | None) -> str:
        with self._lock:
            if self._closed:
                raise ClosedError(f"the MemoryNetwork {self.name!r} is closed")
            if name is None:
                name = f"node-{next(self._numbers)}"
                while name in self._transports:  # taken by an explicitly named one
                    name = f"node-{next(self._numbers)}"
            elif not isinstance(name, str) or not name:
                raise ValueError(f"name must be a non-empty string, got {name!r}")
            elif name in self._transports:
                raise ValueError(f"a transport named {name!r} is open on this network already")
            self._transports[name] = transport
            return name

    def _members(self, transport: MemoryTransport) -> list[MemoryTransport]:
        """The other started, open transports (lock held): whom ``transport`` replicates with."""
        return [t for t in self._transports.values() if t is not transport and t._joined]

    def _reachable(self, a: str, b: str) -> bool:
        return self._side.get(a, 0) == self._side.get(b, 0)

    def _join(self, transport: MemoryTransport) -> None:
        """Make a started transport a member (lock held) and sync it with everyone."""
        if self._closed:
            raise ClosedError(f"the MemoryNetwork {self.name!r} is closed")
        transport._joined = True
        transport._next_round = time.monotonic() + self._jitter()
        self._call_soon(transport, transport._hello)
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"rollout-memory-{self.name}", daemon=True
            )
            self._thread.start()  # it waits for the lock we hold

    def _leave(self, transport: MemoryTransport, deadline: float) -> threading.Thread | None:
        """Forget a closed transport (lock held); wait until the thread is done with its host."""
        if self._transports.get(transport.name) is transport:
            del self._transports[transport.name]
        self._work.notify()
        self._progress.notify_all()  # its wait_synced() ends now
        if self._delivering():
            return None  # closed from a subscriber: the work item running is its last
        while self._busy is transport and (remaining := deadline - time.monotonic()) > 0:
            self._progress.wait(remaining)
        if any(t._joined for t in self._transports.values()):
            return None
        return self._thread  # no member left: it is ending

    def _call_soon(self, owner: MemoryTransport, action: Callable[[], None]) -> None:
        self._tasks.append((owner, action))
        self._work.notify()

    def _delivering(self) -> bool:
        return threading.current_thread() is self._thread

    def _send(self, message: _Message, to: MemoryTransport) -> None:
        """Queue a message (lock held). Faults are applied on delivery, not here."""
        if to._joined:
            to._inbox.append(message)
            self._work.notify()

    def _jitter(self) -> float:
        # Spread the rounds so that replicas started together do not digest in lockstep.
        return self.anti_entropy_interval * random.uniform(0.5, 1.5)

    # Faults -------------------------------------------------------------------------------------

    def partition(self, *groups: str | Iterable[str]) -> None:
        """Split the network: each group (a name, or several) is one side, and every transport
        named in no group (including ones that join later) is together on one more side.

        Messages between sides are lost until :meth:`heal`. ``partition("c")`` cuts ``c`` off
        from everyone; ``partition(["a", "b"], ["c"])`` also cuts ``a`` and ``b`` off from any
        others. Each call replaces the previous partition.
        """
        side: dict[str, int] = {}
        for number, group in enumerate(groups, start=1):
            for name in [group] if isinstance(group, str) else list(group):
                if name in side:
                    raise ValueError(f"{name!r} cannot be on two sides of a partition")
                side[name] = number
        with self._lock:
            self._check_names(side)
            self._side = side

    def drop(self, *names: str) -> None:
        """Lose every message to the named transports (to all, when none is named) until
        :meth:`heal`, without their noticing: they still look connected, as behind a firewall
        that swallows packets. Anti-entropy repairs what was lost once healed."""
        with self._lock:
            self._check_names(names)
            if names:
                self._dropping.update(names)
            else:
                self._drop_all = True

    def heal(self) -> None:
        """End every partition and drop; then every pair of transports compares digests at once,
        as reconnecting peers do, so nothing waits for the next anti-entropy round."""
        with self._lock:
            self._side = {}
            self._dropping.clear()
            self._drop_all = False
            for transport in self._transports.values():
                if transport._joined:
                    self._call_soon(transport, transport._sync_with_all)

    def pause(self, *names: str) -> None:
        """Hold every message to the named transports (to all, when none is named) until
        :meth:`resume`. Nothing is lost and per-link order is kept; they keep sending."""
        with self._lock:
            self._check_names(names)
            if names:
                self._paused.update(names)
            else:
                self._pause_all = True

    def resume(self, *names: str) -> None:
        """Deliver what :meth:`pause` held, in order (all of it, when no name is given)."""
        with self._lock:
            if not names:
                self._paused.clear()
                self._pause_all = False
            elif self._pause_all:
                raise ValueError("the whole network is paused: resume() it without names")
            else:
                self._paused.difference_update(names)
            self._work.notify()

    def _check_names(self, names: Iterable[str]) -> None:
        # A typo in a test would otherwise make a fault that silently does nothing.
        unknown = sorted(set(names) - set(self._transports))
        if unknown:
            raise KeyError(f"no open transport named {', '.join(map(repr, unknown))}")

    # Lifecycle ----------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """The network as a whole: its transports, faults in force, and message counts."""
        with self._lock:
            partition: dict[int, list[str]] = {}
            for name in self._transports:
                partition.setdefault(self._side.get(name, 0), []).append(name)
            return {
                "name": self.name,
                "closed": self._closed,
                "running": self._thread is not None,
                "transports": sorted(self._transports),
                "partition": sorted(partition.values()) if len(partition) > 1 else [],
                "dropping": "all" if self._drop_all else sorted(self._dropping),
                "paused": "all" if self._pause_all else sorted(self._paused),
                "queued": sum(len(t._inbox) for t in self._transports.values()),
                "delivered": self._delivered,
                "dropped": self._dropped,
            }

    def close(self, timeout: float = 5.0) -> None:
        """Close every transport and stop the delivery thread. Idempotent; about ``timeout``
        seconds at most. Their replicas keep answering checks; writes stay local."""
        deadline = time.monotonic() + timeout
        with self._lock:
            if self._closed:
                return
            self._closed = True
            transports = list(self._transports.values())
        for transport in transports:
            transport.close(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> MemoryNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _after_fork_in_child(self) -> None:
        """Forget the parent's thread and queues; once per child, however many transports ask.

        The lock is replaced, not released: the parent's delivery thread may have held it at
        the fork, and that thread does not exist here. Every transport is detached; each one
        whose replica lives on in the child rejoins from its own ``after_fork_in_child``, so
        the child's replicas replicate among themselves (never with the parent's).
        """
        if self._pid == os.getpid():
            return
        self._new_process_state()
        for transport in self._transports.values():
            transport._detach()

    # The delivery thread ------------------------------------------------------------------------

    def _run(self) -> None:
        me = threading.current_thread()
        while True:
            with self._lock:
                work = self._next_work(me)
                if work is None:
                    return
                owner, action = work
                self._busy = owner
            try:
                action()
            except Exception:  # a bug, or a host failing oddly: never let it end the thread
                with self._lock:
                    owner._counters["errors"] += 1
                logger.exception("memory transport %r: unexpected error", owner.name)
            finally:
                with self._lock:
                    self._busy = None
                    self._progress.notify_all()

    def _next_work(self, me: threading.Thread) -> _Work | None:
        """The next thing to do (lock held, waits while there is none); None: stop."""
        while True:
            if self._thread is not me:
                return None  # replaced (never in practice: a fork leaves no thread behind)
            members = [t for t in self._transports.values() if t._joined]
            if not members:
                self._thread = None  # the next transport to join starts a new one
                self._progress.notify_all()
                return None
            # Due anti-entropy rounds first: they are rare, and a stream of writes must not
            # postpone them forever. Then tasks (wait_synced asking for acks, joins, heals),
            # then messages.
            now = time.monotonic()
            due = min(members, key=lambda t: t._next_round)
            if due._next_round <= now:
                due._next_round = now + self._jitter()
                return due, due._anti_entropy_round
            while self._tasks:
                owner, action = self._tasks.popleft()
                if owner._joined:
                    return owner, action
            delivery = self._next_delivery(members)
            if delivery is not None:
                return delivery
            self._work.wait(due._next_round - now)

    def _next_delivery(self, members: list[MemoryTransport]) -> _Work | None:
        count = len(members)
        for step in range(count):
            receiver = members[(self._turn + step) % count]
            if self._pause_all or receiver.name in self._paused:
                continue  # held: its inbox keeps its order until resume()
            while receiver._inbox:
                message = receiver._inbox.popleft()
                lost = (
                    self._drop_all
                    or receiver.name in self._dropping
                    or not self._reachable(message.sender.name, receiver.name)
                )
                if lost:
                    receiver._counters["messages_dropped"] += 1
                    self._dropped += 1
                    continue
                self._turn = (self._turn + step + 1) % count
                self._delivered += 1
                return receiver, functools.partial(receiver._receive, message)
        return None
