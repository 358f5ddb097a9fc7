"""What the Redis and PostgreSQL transports share: following a store that numbers its changes.

Both stores announce every change they save, numbered by a version that moves by one per change
(Redis publishes it from the saving script, PostgreSQL NOTIFYs it at commit). Announcements are
lost while a listener is away, so a transport that follows such a store:

* on start and after every reconnect, listens first, then saves this replica's whole state into
  the store (merge-if-newer: harmless when the store has it all, and it re-seeds a store that
  restarted empty), then loads the store's whole state: nothing announced after the load can be
  missed, and what was saved before it is in it. Except at the first connection of a replica
  just loaded from this store whose version has not moved since, or only by the replica's own
  merges: nothing to re-seed or load;
* skips an announcement of the replica's own merge (the store numbered it for the merge): it
  holds that change already. The numbers are forgotten once seen, loaded, or on a new
  connection: a store that restarted empty numbers from the start, and an old number of this
  replica's would pass another writer's change off as its own;
* reloads everything when an announcement's version is not the next one (one was missed);
* every ``check_interval`` seconds compares the store's version with the last one seen, and
  reloads when it is behind (a store that restarted) or when the announcements up to the
  version it read have not all arrived within :data:`IN_FLIGHT_SECONDS` (one was lost): under a
  steady stream of writes the store is nearly always a version or two ahead of its
  announcements, and reloading for that would read a million-register store every interval.

Subclasses say how to listen (:meth:`_subscribe`) and what an announcement holds
(:meth:`_receive`); the loop, the back-off, the counters and the waiting are here, once.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Protocol

from .._core.state import Delta
from ..errors import RolloutError
from ._base import SyncHost, Transport

__all__ = ["NumberedStore", "Poll", "VersionedFeedTransport"]

logger = logging.getLogger("rollout.sync")

#: Waits up to the given seconds for announcements and returns those that came.
Poll = Callable[[float], Iterable[Any]]

#: How long one wait for announcements lasts: the bound on how late close() is noticed.
_POLL_SECONDS = 0.5
#: How long the periodic check lets announcements it knows are coming arrive before it reloads.
IN_FLIGHT_SECONDS = 1.0
#: The least time between two reloads that messages asked for (a gap, a notice, bytes that are
#: no change), or the last reload's own length if longer. Whoever can publish on the channel
#: could otherwise make every replica read the whole store, again and again: a burst of such
#: messages costs one reload a spacing, and the last one comes after the burst.
RELOAD_SPACING_SECONDS = 1.0


class NumberedStore(Protocol):
    """What a followed store has: saving, a full snapshot with its version, the version alone."""

    def save(self, delta: Delta) -> None: ...

    def snapshot(self) -> tuple[Delta, int]:
        """Every register and the version of the last change, read together."""
        ...

    def version(self) -> int: ...


class VersionedFeedTransport(Transport):
    #: The backend's name: in stats() and the thread's name.
    kind: ClassVar[str]
    #: How logs name the listener ("Redis subscriber").
    listener_name: ClassVar[str]
    #: Counters of the backend's own, besides the shared ones.
    extra_counters: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self, store: NumberedStore, *, check_interval: float = 5.0, saves_writes: bool = True
    ) -> None:
        if isinstance(check_interval, bool) or not isinstance(check_interval, int | float):
            raise TypeError(f"check_interval must be a number of seconds, got {check_interval!r}")
        if check_interval <= 0:
            raise ValueError(f"check_interval must be positive, got {check_interval!r}")
        self.check_interval = check_interval
        #: Whether publish() saves local writes into the store (which announces them). False
        #: only when the replica's own store is this one: its writes are saved there already.
        self.saves_writes = saves_writes
        self._feed = store
        self._host: SyncHost | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._seen = 0
        #: The version of the last full load: announcements up to it are in it. One above it
        #: heard twice was not the store's change both times (see :meth:`_heard_before`).
        self._loaded = 0
        #: Behind the store since an announcement said "more follows" (a merge in chunks):
        #: reloaded at its last chunk's announcement, or by the periodic check.
        self._stale = False
        #: While stale: the version seen when it began, all of whose changes the replica holds
        #: (the chunks heard since are not read yet). stats() names it, not the last one heard.
        self._held = 0
        #: A reload a message asked for within the spacing of the last one: done when it ends.
        self._reload_pending = False
        self._next_reload_at = 0.0
        shared = (
            "messages_received",
            "reloads",
            "reconnects",
            "gaps",
            "errors",
            "own_merges_skipped",
        )
        self._counters = dict.fromkeys((*shared, *self.extra_counters), 0)
        self._last_error: str | None = None

    def start(self, host: SyncHost) -> None:
        self._host = host
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"rollout-{self.kind}", daemon=True)
        self._thread.start()

    def publish(self, delta: Any) -> None:
        """Save a local write into the store, which announces it (unless the replica already did).

        Never raises: the write is applied here already, and the next reconnect re-seeds the
        store with this replica's whole state.
        """
        if not self.saves_writes:
            return
        try:
            self._feed.save(delta)
        except RolloutError as exc:
            self._counters["errors"] += 1
            self._last_error = str(exc)
            logger.warning("could not publish a change to %s: %s", self.kind, exc)

    def wait_synced(self, timeout: float, peers: int | None = None) -> bool:
        # A write returns once the store has it, and every other replica gets it from there;
        # the store has no peers to count. What is left to wait for is this replica listening,
        # so that it hears the others.
        del peers
        return self._connected.wait(timeout)

    def stats(self) -> dict[str, Any]:
        return {
            "transport": self.kind,
            "connected": self._connected.is_set(),
            # Never a change the replica lacks: a merge's chunks heard are not held until read.
            "version_seen": self._held if self._stale else self._seen,
            "last_error": self._last_error,
            **self._counters,
        }

    def after_fork_in_child(self) -> None:
        if self._host is not None and self._thread is not None:
            self._connected.clear()
            self.start(self._host)

    def close(self, timeout: float = 5.0) -> None:
        thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # The listener thread ---------------------------------------------------------------------

    def _run(self) -> None:
        delay = 0.05
        while not self._stop.is_set():
            try:
                self._listen()
                delay = 0.05
            except Exception as exc:  # any failure: back off, reconnect, reload
                if self._connected.is_set():
                    delay = 0.05  # it had been listening: the first retry comes soon
                self._connected.clear()
                self._counters["errors"] += 1
                self._last_error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
                logger.warning("%s: %s; reconnecting in %.2f s", self.listener_name, exc, delay)
                self._stop.wait(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, 5.0)
                self._counters["reconnects"] += 1

    def _listen(self) -> None:
        host = self._host
        assert host is not None
        with self._subscribe() as poll:
            loaded = host.loaded_version(self._feed)  # at the first connection only
            current = self._feed.version() if loaded is not None else None
            if current is not None and (
                current == loaded or host.produced_versions(int(loaded or 0) + 1, current)
            ):
                # The replica was just loaded from this store, and the store has not changed
                # since (the version is read after subscribing), or only by this replica's own
                # merges (flags.merge() right after start): it holds nothing the store lacks,
                # and every later change is announced. Saving a million registers back and
                # reading them again would change nothing.
                self._seen = self._loaded = current
            else:
                # The store may be another since the last connection, numbering from the start
                # (restarted empty, failed over): the numbers of the replica's merges name
                # nothing now (forgetting them costs at most a read).
                host.forget_produced_versions()
                # Listening first, then re-seed and load (the module's docstring says why).
                # A Store's merge: a join, which the store may save in parts (Redis).
                getattr(self._feed, "merge", self._feed.save)(host.replicated())
                self._reload()
            self._connected.set()
            next_check = time.monotonic() + self.check_interval
            awaited = 0  # a version the store had at a check, not announced here yet
            awaited_until = 0.0
            while not self._stop.is_set():
                wait = _POLL_SECONDS
                if self._reload_pending:
                    wait = min(wait, max(0.0, self._next_reload_at - time.monotonic()))
                for announcement in poll(wait):
                    self._counters["messages_received"] += 1
                    self._receive(announcement)
                    if self._stop.is_set():
                        break
                now = time.monotonic()
                if self._reload_pending and now >= self._next_reload_at:
                    self._reload()
                if awaited and (self._seen >= awaited or now >= awaited_until):
                    if self._seen < awaited:
                        self._reload()  # an announcement was lost on the way
                    awaited = 0
                if now >= next_check:
                    next_check = now + self.check_interval
                    version = self._feed.version()
                    if self._stale or version < self._seen:
                        self._reload()
                    elif version > self._seen and not awaited:
                        awaited, awaited_until = version, now + IN_FLIGHT_SECONDS

    @abc.abstractmethod
    def _subscribe(self) -> contextlib.AbstractContextManager[Poll]:
        """Listen on the store's channel, on a connection of its own, until the block ends."""

    @abc.abstractmethod
    def _receive(self, announcement: Any) -> None:
        """Apply one announcement: by :meth:`_advance` to the next version, or :meth:`_reload`."""

    def _own_merge(self, version: int) -> bool:
        """Whether ``version``, the next one, is this replica's own merge (applied here): then
        it is skipped, counted, and seen. Another writer's version in between is not one."""
        host = self._host
        if (
            version != self._seen + 1
            or host is None
            or not host.produced_versions(version, version)
        ):
            return False
        self._seen = version
        host.forget_produced_versions(version)  # seen: its number may name another change later
        self._counters["own_merges_skipped"] += 1
        return True

    def _heard_before(self, version: int) -> None:
        """An announcement of a version already seen. Those up to the last load are in it; one
        above it was announced before, and the store numbers each change once: one of the two
        came from someone else on the channel, and if it came first it hid the store's change
        of that number. The store is read again (spaced: :meth:`_reload_soon`)."""
        if version > self._loaded:
            self._counters["gaps"] += 1
            self._reload_soon()

    def _behind(self, version: int) -> None:
        """A chunk of a merge announced, ``version``, not read: the store is read at the merge's
        end (or by the periodic check). Seen, so that the next chunk is no gap, but not held."""
        if not self._stale:
            self._stale = True
            self._held = self._seen
        self._seen = max(self._seen, version)

    def _merge(self, delta: Delta) -> None:
        assert self._host is not None
        self._host.merge_remote(delta, store=False)

    def _reload_soon(self) -> None:
        """A reload that a message asks for: now, unless the last one ended less than the
        spacing ago (:data:`RELOAD_SPACING_SECONDS`); then once, when the spacing has passed,
        however many messages asked meanwhile. What they announced is in that load."""
        if time.monotonic() >= self._next_reload_at:
            self._reload()
        else:
            self._reload_pending = True

    def _reload(self) -> None:
        started = time.monotonic()
        seen = self._seen
        if self._stale:  # until this load is merged, stats() names the version held, not seen
            self._seen = self._held
        self._stale = self._reload_pending = False
        delta, loaded = self._feed.snapshot()
        if self._host is not None:
            # The versions up to the load's are in it. A store behind what was seen numbers
            # from an earlier point again (restarted, restored): every remembered one may be
            # reused by another writer.
            self._host.forget_produced_versions(loaded if loaded >= seen else None)
        self._merge(delta)
        # Seen once merged: stats()["version_seen"] never names a change the replica lacks.
        self._seen = self._loaded = loaded
        self._counters["reloads"] += 1
        ended = time.monotonic()
        self._next_reload_at = ended + max(RELOAD_SPACING_SECONDS, ended - started)

    def _gap(self) -> None:
        """A version was skipped: one announcement was missed, so everything is loaded."""
        self._counters["gaps"] += 1
        self._reload_soon()
