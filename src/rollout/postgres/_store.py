"""A store in PostgreSQL: the database a team already runs, shared by processes on many hosts.

Registers are merged by timestamp inside PostgreSQL (an upsert that only replaces an older
register), in one transaction per delta that also drops what a watermark hides, bounds each
flag's history, bumps the schema's version and NOTIFYs the change: the
:class:`~rollout.postgres.PostgresTransport` (started by ``Rollout`` with this store) turns
that into live updates in every process. Writers take turns on the version row, so versions
are handed out in commit order and a listener can tell when it missed one.

One connection per store, behind a lock; when the server ended it (a restart,
``pg_terminate_backend``) the next call opens a new one and, if nothing had been committed,
runs once more on it, so an idle process never sees an error for a connection it was not using.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .._core.codec import encode_flags
from .._core.keys import DATA_RESET, RESET, is_history
from .._core.quarantined import Judged, QuarantinedRegister, QuarantineState
from .._core.redact import redact_url
from .._core.state import Delta
from .._core.stored_values import encode_value
from ..errors import FormatError, StoreError, require_extra
from ..stores._base import Store
from . import _sql
from ._bulk import BULK_ROWS, encode_change, groups, load_grouped, stage
from ._connection import Connector, Step
from ._quarantine import hold, judge, read_quarantine, trim
from ._transport import PostgresTransport

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresStore"]


class PostgresStore(Store):
    """Registers in the tables of one PostgreSQL schema. Use :meth:`from_url` for a URL.

    ``conninfo`` is anything psycopg takes (``"postgresql://user@host/db"``, ``"host=… dbname=…"``);
    ``schema`` (default ``rollout``) is created with its tables on first open if missing.
    ``timeout``: seconds a call may wait for the server (rollout.postgres._connection).
    With ``create=False`` the schema must exist already (the CLI's read commands: a typo in
    the URL is an error rather than an empty store), and nothing is created.
    """

    def __init__(
        self, conninfo: str, *, schema: str = "rollout", timeout: float = 30.0, create: bool = True
    ) -> None:
        require_extra("psycopg", "postgres", "a postgresql:// store")
        self.schema = _sql.check_schema_name(schema)
        #: The NOTIFY channel of every change: ``<version> <origin>`` (the change is in the
        #: ``changes`` table; the message carries no flags, since anyone may NOTIFY).
        self.channel = f"{self.schema}_changes"
        self.url = f"{_shown(conninfo)} (schema {self.schema})"
        #: Who wrote a change, in each notification (for people reading the channel).
        self.origin = f"pid-{os.getpid()}"
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        # The schema's version when load() last read it; None: load again.
        self._loaded_version: int | None = None
        self._connector = Connector(conninfo, self.schema, self.url, float(timeout), create=create)
        self._connector.on_fork = self._forget_load

    @classmethod
    def from_url(cls, url: str, *, create: bool = True) -> PostgresStore:
        """``postgresql://user:password@host:5432/dbname?schema=rollout&timeout=30`` (also
        ``postgres://``); other query parameters are libpq's (``sslmode``, ``connect_timeout``).
        """
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError(
                f"store URL {redact_url(url)!r} must look like postgresql://user@host/dbname"
            )
        query = parse_qsl(parts.query, keep_blank_values=True)
        ours = {name: value for name, value in query if name in ("schema", "timeout")}
        rest = [(name, value) for name, value in query if name not in ours]
        conninfo = urlunsplit(parts._replace(query=urlencode(rest)))
        timeout: float = 30.0
        if "timeout" in ours:
            try:
                timeout = float(ours["timeout"])
            except ValueError:
                raise ValueError(
                    f"store URL {redact_url(url)!r}: timeout must be a number of seconds, "
                    f"got {ours['timeout']!r}"
                ) from None
        return cls(conninfo, schema=ours.get("schema", "rollout"), timeout=timeout, create=create)

    def default_transport(self) -> PostgresTransport:
        # Every save here NOTIFYs: the replica's writes need no publishing of their own.
        return PostgresTransport(self, saves_writes=False)

    def connect(self, purpose: str = "store") -> psycopg.Connection[Any]:
        """A new connection to the schema, for the transport to LISTEN on."""
        return self._connector.connect(purpose)

    # Registers -----------------------------------------------------------------------------

    def load(self) -> Delta:
        return self.snapshot()[0]

    def load_numbered(self) -> tuple[Delta, int | None]:
        """Every register and the version they were read at (:meth:`snapshot`): a replica that
        starts from this store tells its transport, whose first connection then need not save
        it all back nor load it again when the version has not moved (Store.load_numbered)."""
        return self.snapshot()

    def snapshot(self) -> tuple[Delta, int]:
        """Every register and the version of the last change, from one snapshot."""

        def work(connection: psycopg.Connection[Any]) -> tuple[Delta, int]:
            connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            version = _one(connection, _sql.VERSION)
            delta = load_grouped(connection)
            connection.execute("COMMIT")
            return delta, version

        try:
            delta, version = self._connector.run("read", work)
        except FormatError as exc:
            raise StoreError(
                f"PostgreSQL store {self.url} holds a damaged register: {exc} (delete that row "
                "of the registers table; the replicas' next re-seed writes back what they hold)"
            ) from exc
        self._loaded_version = version
        return delta, version

    def version(self) -> int:
        """The version of the last change saved (0 for a new schema)."""
        return self._connector.run("read", lambda connection: _one(connection, _sql.VERSION))

    def change(self, version: int) -> str | None:
        """The flags JSON of a change sent by reference, if still kept."""

        def work(connection: psycopg.Connection[Any]) -> str | None:
            row = connection.execute(_sql.GET_CHANGE, [version]).fetchone()
            return None if row is None else str(row[0])

        return self._connector.run("read", work)

    def ping(self) -> None:
        self._connector.run("reach", lambda connection: connection.execute("SELECT 1").fetchall())

    def changed_elsewhere(self) -> bool:
        return self._loaded_version is None or self.version() != self._loaded_version

    def save(self, delta: Delta) -> None:
        self._save(delta)

    def merge_numbered(self, delta: Delta) -> list[int]:
        """:meth:`save` (one transaction), returning the version it produced, if it changed
        anything: the merging replica's transport skips that change, which it holds already
        (a merge's registers carry many timestamps, so it is not recognised as a local write)."""
        return self._save(delta)

    def _save(self, delta: Delta) -> list[int]:
        size = sum(map(len, delta.values()))
        if not size:
            return []
        watermarked = [
            {"flag": flag}
            for flag, registers in delta.items()
            if RESET in registers or DATA_RESET in registers
        ]
        # A few registers: one upsert each (one round trip in a pipeline); many (an import, a
        # merge, a re-seed, activate_users with thousands of ids): copied in and merged by two
        # statements (rollout.postgres._bulk). Either way one transaction: atomic.
        grouped = groups(delta) if size >= BULK_ROWS else None
        # A history event's value is the event (an object): groups of listed users hold none.
        keyed = (
            delta.items()
            if grouped is None
            else [(flag, keys) for flag, _, text, keys in grouped if text not in _MEMBERS]
        )
        with_history = [
            {"flag": flag, "limit": self.history_limit}
            for flag in dict.fromkeys(flag for flag, keys in keyed if any(map(is_history, keys)))
        ]
        rows = (
            None
            if grouped is not None
            else [
                (flag, key, *register.ts, encode_value(key, register.value))
                for flag, registers in delta.items()
                for key, register in registers.items()
            ]
        )
        # The change for the listeners, encoded once something changed (a re-seed changes
        # nothing), outside the transaction on a retry.
        encoded: list[str] = []

        def change() -> str:
            if not encoded:
                encoded.append(
                    encode_change(grouped)
                    if grouped is not None
                    else json.dumps(encode_flags(delta), sort_keys=True, separators=(",", ":"))
                )
            return encoded[0]

        step = Step()

        def work(connection: psycopg.Connection[Any]) -> tuple[int, int]:
            connection.execute("BEGIN")
            before = _one(connection, _sql.LOCK_VERSION)
            with connection.cursor() as cursor:
                if grouped is not None:
                    changed = stage(connection, grouped)
                else:
                    cursor.executemany(_sql.UPSERT, rows or [])
                    changed = cursor.rowcount
                if watermarked:
                    cursor.executemany(_sql.PRUNE, watermarked)
                if with_history:
                    cursor.executemany(_sql.PRUNE_HISTORY, with_history)
            version = before
            if changed > 0:
                version = _one(connection, _sql.BUMP_VERSION)
                # Every change by reference: listeners read it from the changes table, never
                # from the message, since PostgreSQL lets any role that can connect NOTIFY any
                # channel (a message carrying flags would let it write them into replicas).
                # The message is short whatever the change's size (NOTIFY takes 8000 bytes).
                connection.execute(_sql.PUT_CHANGE, (version, self.origin, change()))
                connection.execute(_sql.TRIM_CHANGES, [version - _sql.CHANGES_KEPT])
                connection.execute(_sql.NOTIFY, (self.channel, f"{version} {self.origin}"))
            step.commit(connection)
            return before, version

        before, version = self._connector.run("write to", work, step)
        if version != before and self._loaded_version == before:
            self._loaded_version = version  # only this write happened since the load
        return [version] if version != before else []

    def discard(self, delta: Delta) -> None:
        rows = [
            (flag, key, *register.ts)
            for flag, registers in delta.items()
            for key, register in registers.items()
        ]
        if not rows:
            return

        step = Step()

        def work(connection: psycopg.Connection[Any]) -> None:
            connection.execute("BEGIN")
            with connection.cursor() as cursor:
                cursor.executemany(_sql.DISCARD, rows)
            step.commit(connection)

        self._connector.run("discard from", work, step)

    # The quarantine -------------------------------------------------------------------------

    def quarantine(self, entries: Sequence[QuarantinedRegister]) -> None:
        if not entries:
            return

        step = Step()

        def work(connection: psycopg.Connection[Any]) -> None:
            connection.execute("BEGIN")
            connection.execute(_sql.LOCK_QUARANTINE)
            hold(connection, entries, self.quarantine_limit, self.verdicts_kept)
            step.commit(connection)

        self._connector.run("quarantine in", work, step)

    def quarantined(self) -> QuarantineState:
        def work(connection: psycopg.Connection[Any]) -> QuarantineState:
            connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            state = read_quarantine(connection)
            connection.execute("COMMIT")
            return state

        try:
            return self._connector.run("read", work)
        except ValueError as exc:  # a held value that is not JSON
            raise StoreError(
                f"PostgreSQL store {self.url}: a damaged held register: {exc}"
            ) from exc

    def release(self, registers: Iterable[Judged]) -> None:
        judged = list(registers)
        if not judged:
            return

        step = Step()

        def work(connection: psycopg.Connection[Any]) -> None:
            connection.execute("BEGIN")
            connection.execute(_sql.LOCK_QUARANTINE)
            for flag, key, ts in judged:
                judge(connection, flag, key, ts, unhold=True)
            trim(connection, self.verdicts_kept)
            step.commit(connection)

        self._connector.run("release from", work, step)

    def _forget_load(self) -> None:
        self._loaded_version = None  # a forked child: load again rather than trust the parent

    def close(self) -> None:
        self._connector.close()


_MEMBERS = frozenset({"true", "false", ""})


def _one(connection: psycopg.Connection[Any], query: str) -> int:
    row = connection.execute(query).fetchone()
    if row is None:
        raise StoreError(f"the PostgreSQL store's meta table lacks a row ({query.strip()})")
    return int(row[0])


def _shown(conninfo: str) -> str:
    """``conninfo`` as logs and messages show it: a URL's password, or a ``password=`` of the
    keyword form (``"host=db password=..."``), replaced by ``***``."""
    if "://" in conninfo:
        return redact_url(conninfo)
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", conninfo)
