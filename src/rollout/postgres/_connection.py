"""The PostgreSQL store's one connection: opened lazily again when lost, used under a lock, its
driver errors translated at one boundary (:meth:`Connector.run`).

* When the server ended the connection while it sat idle (a restart, ``pg_terminate_backend``),
  the call that finds out runs once more on a new connection: nothing had been committed, and
  a process that was merely idle should not see an error for it.
* Every call has a time limit (``timeout``): past it, the socket is shut down, which ends the
  wait. A server that stopped answering (hung, or a network that drops packets without a word)
  would otherwise hold the store's lock, and every write, for ever. Before the COMMIT was sent
  that is :class:`~rollout.errors.StoreUnavailableError`; after, the server may have committed:
  :class:`~rollout.errors.StoreOutcomeUnknownError`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ClosedError, StoreError
from . import _sql
from ._errors import translate

if TYPE_CHECKING:
    import psycopg

__all__ = ["Connector", "Step"]

T = TypeVar("T")

_CONNECT_TIMEOUT_S = 5


class Step:
    """How far a call got: whether its COMMIT was sent, whether its time ran out."""

    def __init__(self) -> None:
        self.committing = False
        self.timed_out = False

    def commit(self, connection: psycopg.Connection[Any]) -> None:
        self.committing = True
        connection.execute("COMMIT")


class Connector:
    """Connections to one schema of one database, and the store's own connection."""

    def __init__(
        self, conninfo: str, schema: str, url: str, timeout: float, *, create: bool = True
    ) -> None:
        self.conninfo = conninfo
        self.create = create
        self.schema = schema
        self.url = url
        self.timeout = timeout
        self._lock = threading.Lock()
        self._closed = False
        self._pid = os.getpid()
        self._abandoned: list[psycopg.Connection[Any]] = []
        #: Called (under the lock) when this process turns out to be a fork of the one that
        #: opened the connection.
        self.on_fork: Callable[[], None] = lambda: None
        self._connection: psycopg.Connection[Any] | None = self._open()

    def connect(self, purpose: str = "store") -> psycopg.Connection[Any]:
        """A new autocommit connection whose ``search_path`` is the schema (the transport's
        LISTEN connection is one). Raises psycopg's errors, untranslated.

        Unless the URL names one, its ``application_name`` is ``rollout:<schema>:<purpose>``,
        so an operator reading ``pg_stat_activity`` sees whose connection it is.
        """
        import psycopg
        from psycopg.conninfo import conninfo_to_dict

        given = conninfo_to_dict(self.conninfo)
        options: dict[str, Any] = {}
        if "connect_timeout" not in given:
            options["connect_timeout"] = _CONNECT_TIMEOUT_S
        if "application_name" not in given:
            options["application_name"] = f"rollout:{self.schema}:{purpose}"
        connection = psycopg.connect(self.conninfo, autocommit=True, **options)
        try:
            connection.execute(f"SET search_path TO {self.schema}")
        except BaseException:
            connection.close()
            raise
        return connection

    def _open(self, action: str = "open") -> psycopg.Connection[Any]:
        import psycopg

        context = f"cannot {action} PostgreSQL store {self.url}"
        try:
            connection = self.connect()
        except psycopg.Error as exc:
            raise translate(exc, context, lost=True, committing=False) from exc
        step = Step()
        watchdog = _watch(connection, step, self.timeout)
        try:
            self._prepare(connection)
        except psycopg.Error as exc:
            lost = connection.broken or connection.closed or step.timed_out
            connection.close()
            raise translate(
                exc,
                context,
                lost=lost,
                committing=False,
                timeout=self.timeout if step.timed_out else None,
            ) from exc
        except BaseException:  # StoreError: another schema version, or no schema to read
            connection.close()
            raise
        finally:
            watchdog.cancel()
        return connection

    def _prepare(self, connection: psycopg.Connection[Any]) -> None:
        """The schema and its tables, created once (processes opening at once take turns on an
        advisory lock); then its version checked."""
        row = connection.execute("SELECT to_regclass(%s)", [f"{self.schema}.meta"]).fetchone()
        if (row is None or row[0] is None) and not self.create:
            raise StoreError(
                f"no rollout schema {self.schema!r} in this database ({self.url}): nothing was "
                "created; check ?schema= in the URL, or make the store with a write such as "
                "`rollout activate NAME`"
            )
        if row is None or row[0] is None:
            connection.execute("BEGIN")
            try:
                connection.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"rollout:{self.schema}"]
                )
                connection.execute(_sql.ddl(self.schema))
                connection.execute("COMMIT")
            except BaseException:
                rollback(connection)
                raise
        found = connection.execute(_sql.SCHEMA_VERSION_ROW).fetchone()
        if found is None or found[0] != _sql.SCHEMA_VERSION:
            raise StoreError(
                f"PostgreSQL store {self.url} has schema version {found and found[0]}, "
                f"this library reads version {_sql.SCHEMA_VERSION}"
            )

    def run(
        self, action: str, work: Callable[[psycopg.Connection[Any]], T], step: Step | None = None
    ) -> T:
        """``work`` on the connection, its driver errors translated: the one boundary.

        A write passes the ``step`` its ``work`` commits through, which tells a failure before
        the COMMIT (nothing written) from one after it was sent (outcome unknown).
        """
        import psycopg

        with self._lock:
            if self._closed:
                raise ClosedError(f"PostgreSQL store {self.url} is closed")
            if self._pid != os.getpid():
                # A forked child must not use the parent's connection, nor close it (that would
                # end the parent's session): it is left alone, and the child opens its own.
                self._pid = os.getpid()
                if self._connection is not None:
                    self._abandoned.append(self._connection)
                self._connection = None
                self.on_fork()
            for attempt in (1, 2):
                reused = self._connection is not None
                if self._connection is None:
                    self._connection = self._open(action)
                connection = self._connection
                step = step or Step()
                step.committing = step.timed_out = False
                watchdog = _watch(connection, step, self.timeout)
                try:
                    return work(connection)
                except psycopg.Error as exc:
                    lost = connection.broken or connection.closed or step.timed_out
                    if lost:
                        self._connection = None
                        connection.close()
                        if reused and attempt == 1 and not (step.committing or step.timed_out):
                            continue  # ended while idle: nothing was committed, run it again
                    else:
                        rollback(connection)
                    raise translate(
                        exc,
                        f"cannot {action} PostgreSQL store {self.url}",
                        lost=lost,
                        committing=step.committing,
                        timeout=self.timeout if step.timed_out else None,
                    ) from exc
                except BaseException:
                    if not (connection.broken or connection.closed):
                        rollback(connection)
                    raise
                finally:
                    watchdog.cancel()
            raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            connection, self._connection = self._connection, None
            if connection is not None and self._pid == os.getpid():
                connection.close()


def _watch(connection: psycopg.Connection[Any], step: Step, timeout: float) -> threading.Timer:
    """A started timer that cuts ``connection`` off after ``timeout`` seconds; cancel it."""
    watchdog = threading.Timer(timeout, _cut, (connection, step))
    watchdog.daemon = True
    watchdog.start()
    return watchdog


def _cut(connection: psycopg.Connection[Any], step: Step) -> None:
    """End a call that ran out of time: shut the socket down (the waiting read then sees the
    connection closed). A shutdown, not a close: the descriptor stays psycopg's to close."""
    step.timed_out = True
    with contextlib.suppress(OSError, ValueError):
        dup = socket.fromfd(connection.fileno(), socket.AF_INET, socket.SOCK_STREAM)
        try:
            dup.shutdown(socket.SHUT_RDWR)
        finally:
            dup.close()


def rollback(connection: psycopg.Connection[Any]) -> None:
    """Roll back after a failure, keeping that failure as the error raised."""
    import psycopg
    from psycopg.pq import TransactionStatus

    if connection.info.transaction_status != TransactionStatus.IDLE:
        with contextlib.suppress(psycopg.Error):
            connection.execute("ROLLBACK")
