"""Live updates through PostgreSQL's LISTEN/NOTIFY, for replicas on a :class:`PostgresStore`.

The store NOTIFYs every change itself, in the transaction that saves it (PostgreSQL sends it at
commit, in commit order), numbered by the schema's version. This transport LISTENs on its own
connection, on one background thread, and merges what other processes saved. A listener that is
away misses notifications, so, as the Redis transport does:

* on start and after every reconnect, it LISTENs first, then saves this replica's whole state
  into the store (merge-if-newer: harmless when the database has it all), then loads it all;
* a notification whose version is not the next one means one was missed: load everything;
* every ``check_interval`` seconds it compares the version with the last one seen.

A notification is its version alone: the flags are read from the store's ``changes`` table,
never from the message (any role that can connect may NOTIFY any channel). The transport asks
of the store only what :class:`ChangeFeed` names, and does not import it: the store's
``default_transport()`` builds this transport.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

from .._core.codec import decode_flags
from .._core.state import Delta
from ..errors import RolloutError
from ..sync._base import SyncHost, Transport

if TYPE_CHECKING:
    import psycopg

__all__ = ["ChangeFeed", "PostgresTransport"]

logger = logging.getLogger("rollout.sync")


class ChangeFeed(Protocol):
    """What the transport needs of its store (a :class:`~rollout.postgres.PostgresStore`)."""

    @property
    def channel(self) -> str:
        """The NOTIFY channel of every change: ``<version> <origin>``."""
        ...

    def connect(self, purpose: str = "store") -> psycopg.Connection[Any]:
        """A new autocommit connection to the store's database."""
        ...

    def save(self, delta: Delta) -> None: ...

    def snapshot(self) -> tuple[Delta, int]:
        """Every register and the version of the last change, read together."""
        ...

    def version(self) -> int: ...

    def change(self, version: int) -> str | None:
        """The flags JSON of a change sent by reference, if still kept."""
        ...


class PostgresTransport(Transport):
    def __init__(
        self, store: ChangeFeed, *, check_interval: float = 5.0, saves_writes: bool = True
    ) -> None:
        if isinstance(check_interval, bool) or not isinstance(check_interval, int | float):
            raise TypeError(f"check_interval must be a number of seconds, got {check_interval!r}")
        if check_interval <= 0:
            raise ValueError(f"check_interval must be positive, got {check_interval!r}")
        self.store = store
        self.check_interval = check_interval
        #: Whether publish() saves local writes into the store (which NOTIFYs them). False only
        #: when the replica's own store is this one: its writes are saved there already.
        self.saves_writes = saves_writes
        self._host: SyncHost | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._seen = 0
        self._counters = dict.fromkeys(
            (
                "messages_received",
                "reloads",
                "reconnects",
                "gaps",
                "errors",
                "by_reference",
                "malformed",
            ),
            0,
        )
        self._last_error: str | None = None

    def start(self, host: SyncHost) -> None:
        self._host = host
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="rollout-postgres", daemon=True)
        self._thread.start()

    def publish(self, delta: Any) -> None:
        """Save a local write into the store, which NOTIFYs it (unless the replica already did).

        Never raises: the write is applied here already, and the next reconnect re-seeds the
        database with this replica's whole state.
        """
        if not self.saves_writes:
            return
        try:
            self.store.save(delta)
        except RolloutError as exc:
            self._counters["errors"] += 1
            self._last_error = str(exc)
            logger.warning("could not publish a change to PostgreSQL: %s", exc)

    def wait_synced(self, timeout: float, peers: int | None = None) -> bool:
        # A write returns once the database has it, and every other replica gets it from there;
        # what is left to wait for is this replica listening, so that it hears the others.
        del peers
        return self._connected.wait(timeout)

    def stats(self) -> dict[str, Any]:
        return {
            "transport": "postgres",
            "connected": self._connected.is_set(),
            "version_seen": self._seen,
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
                logger.warning("PostgreSQL listener: %s; reconnecting in %.2f s", exc, delay)
                self._stop.wait(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, 5.0)
                self._counters["reconnects"] += 1

    def _listen(self) -> None:
        host = self._host
        assert host is not None
        connection = self.store.connect("listen")
        try:
            connection.execute(f'LISTEN "{self.store.channel}"')
            # Listening first, then re-seed and load: nothing committed after the load can be
            # missed, and what was committed before it is in it.
            self.store.save(host.replicated())
            self._reload()
            self._connected.set()
            next_check = time.monotonic() + self.check_interval
            while not self._stop.is_set():
                for notify in connection.notifies(timeout=0.5):
                    self._receive(notify.payload)
                    if self._stop.is_set():
                        break
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + self.check_interval
                    if self.store.version() != self._seen:
                        self._reload()
        finally:
            connection.close()

    def _receive(self, payload: str) -> None:
        host = self._host
        assert host is not None
        # Only the version is read: the change itself comes from the changes table, whatever
        # the message says. Any role that can connect may NOTIFY our channel (PostgreSQL checks
        # no privilege), so a message is a hint, never a change (older writers put the flags
        # in it: those are ignored, and a version not in the table is a full load).
        version_text = payload.partition(" ")[0]
        self._counters["messages_received"] += 1
        if not (version_text.isascii() and version_text.isdigit() and len(version_text) < 20):
            self._counters["malformed"] += 1
            logger.warning("ignoring a message on %s that is not a change", self.store.channel)
            return
        version = int(version_text)
        if version <= self._seen:
            return  # already in a full load
        flags_json = self.store.change(version) if version == self._seen + 1 else None
        if flags_json is None:
            # A version skipped, or not in the table: a full load, unless the store has not
            # moved (a stranger's message: a load per message would let it make every replica
            # read every flag, as often as it likes). A real change is committed before its
            # message arrives, so the store's version has moved for it.
            if self.store.version() > self._seen:
                self._counters["gaps"] += 1
                self._reload()
            return
        self._counters["by_reference"] += 1
        try:
            delta = decode_flags(json.loads(flags_json))
        except (ValueError, RecursionError, RolloutError) as exc:
            logger.warning("ignoring a malformed change on %s: %s", self.store.channel, exc)
            self._reload()
            return
        self._seen = version
        host.merge_remote(delta, store=False)

    def _reload(self) -> None:
        host = self._host
        assert host is not None
        delta, self._seen = self.store.snapshot()
        host.merge_remote(delta, store=False)
        self._counters["reloads"] += 1
