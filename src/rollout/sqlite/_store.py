"""A store in one SQLite file: survives restarts, and several processes on one host can share it.

Registers are merged by timestamp inside SQLite (an upsert that only replaces an older register),
in one ``BEGIN IMMEDIATE`` transaction per delta, so concurrent writers never lose an edit and a
reader in WAL mode always sees a committed, consistent snapshot.
"""

from __future__ import annotations

import os
import pathlib
import random
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from urllib.parse import unquote

from .._core.keys import (
    DATA_RESET,
    DEFINITION_RESET,
    RESET,
    is_history,
    sql_is_data,
    sql_is_definition,
    sql_is_history,
    sql_is_targeting,
    sql_literal,
)
from .._core.quarantined import Judged, QuarantinedRegister, QuarantineState
from .._core.redact import redact_url
from .._core.state import Delta
from ..errors import ClosedError, FormatError, StoreError
from ..stores._base import Store
from ._errors import corrupt, file_identity, rollback, translate
from ._load import read_registers
from ._quarantine import hold, judge, read_quarantine, trim
from ._rows import UPSERT, UPSERT_KEYS, has_json_each, rows

__all__ = ["SQLiteStore"]

#: The quarantine's tables were added without a new version: additive, so a file written before
#: them gets them at its next open (``CREATE TABLE IF NOT EXISTS``), and a library from before
#: them still opens a file that has them (it ignores them), so a rolling upgrade or a rollback
#: of processes sharing one file keeps working. A version that changes the registers table
#: must raise this.
_SCHEMA_VERSION = 1
_BUSY_TIMEOUT_MS = 5_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS registers (
    flag TEXT NOT NULL,
    key TEXT NOT NULL,
    wall INTEGER NOT NULL,
    counter INTEGER NOT NULL,
    node INTEGER NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (flag, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS quarantine_held (
    flag TEXT NOT NULL,
    key TEXT NOT NULL,
    wall INTEGER NOT NULL,
    counter INTEGER NOT NULL,
    node INTEGER NOT NULL,
    value TEXT NOT NULL,
    origin TEXT NOT NULL,
    quarantined_at_ms INTEGER NOT NULL,
    PRIMARY KEY (flag, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS quarantine_judged (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    flag TEXT NOT NULL,
    key TEXT NOT NULL,
    wall INTEGER NOT NULL,
    counter INTEGER NOT NULL,
    node INTEGER NOT NULL,
    UNIQUE (flag, key, wall, counter, node)
);
"""

# Drop what a watermark hides (docs/architecture.md): targeting registers older than `reset`, data
# registers older than `data_reset`, definition registers older than `definition_reset`. Which
# keys those are comes from rollout._core.keys, as it does for the replica and the Redis store:
# all three must drop exactly the same registers.
_PRUNE = f"""
DELETE FROM registers AS r
WHERE r.flag = :flag AND (
    ({sql_is_targeting("r.key")}
     AND (r.wall, r.counter, r.node) < (
        SELECT wall, counter, node FROM registers
        WHERE flag = :flag AND key = {sql_literal(RESET)}))
    OR ({sql_is_data("r.key")}
     AND (r.wall, r.counter, r.node) < (
        SELECT wall, counter, node FROM registers
        WHERE flag = :flag AND key = {sql_literal(DATA_RESET)}))
    OR ({sql_is_definition("r.key")}
     AND (r.wall, r.counter, r.node) < (
        SELECT wall, counter, node FROM registers
        WHERE flag = :flag AND key = {sql_literal(DEFINITION_RESET)}))
)
"""


# Keep the newest `limit` history events of a flag; their keys sort as their timestamps do. The
# history predicate is a key range, which uses the primary key: this never scans a flag's users.
_PRUNE_HISTORY = f"""
DELETE FROM registers
WHERE flag = :flag AND {sql_is_history("key")} AND key NOT IN (
    SELECT key FROM registers WHERE flag = :flag AND {sql_is_history("key")}
    ORDER BY key DESC LIMIT :limit)
"""

# A compare-and-delete: the register goes only if it is still the one with this timestamp.
_DISCARD = """
DELETE FROM registers WHERE flag = ? AND key = ? AND wall = ? AND counter = ? AND node = ?
"""


class SQLiteStore(Store):
    """Registers in an SQLite database file (WAL mode).

    ``path`` may be ``":memory:"`` for a private in-memory database. With ``create=False`` the
    file must exist already: a read that names a missing file (a typo) is an error instead of
    an empty store, and leaves no file behind. SQLite's ``mode=rw`` makes that one atomic open,
    not a check then an open.
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = os.fspath(path)
        self._create = create
        self.url = f"sqlite:///{self.path}"
        self._lock = threading.Lock()
        self._closed = False
        self._pid = os.getpid()
        #: The file's (st_dev, st_ino) once open; None for ":memory:". Looked up by absolute
        #: path, as SQLite opened it: a process that changes its working directory later still
        #: means the same file.
        self._identity: tuple[int, int] | None = None
        self._absolute = os.path.abspath(self.path)
        self._connection = self._connect()
        # PRAGMA data_version of this connection when load() last read: it moves only when
        # another connection commits (never for this one's own writes). None: load again.
        self._loaded_version: int | None = None
        # Why the last load() failed (a damaged row), until one succeeds: what ping() reports,
        # since this process no longer sees other processes' changes to the file.
        self._load_problem: str | None = None
        #: Whether this SQLite has json_each (rollout.sqlite._rows), asked at the first save.
        self._has_json_each: bool | None = None

    @classmethod
    def from_url(cls, url: str, *, create: bool = True) -> SQLiteStore:
        """``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``, ``sqlite:///:memory:``.

        Three slashes then a relative path, four for an absolute one: the convention of
        SQLAlchemy and most Python tools.
        """
        prefix = "sqlite:///"
        if not url.startswith(prefix) or len(url) == len(prefix):
            raise ValueError(
                f"store URL {redact_url(url)!r} must look like sqlite:///relative.db or sqlite:////abs/path.db"
            )
        return cls(unquote(url[len(prefix) :]), create=create)

    def _connect(self) -> sqlite3.Connection:
        existing = not self._create and self.path != ":memory:"
        try:
            connection = sqlite3.connect(
                f"{pathlib.Path(self._absolute).as_uri()}?mode=rw" if existing else self.path,
                timeout=_BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
                uri=existing,
            )
        except sqlite3.Error as exc:
            if existing and not os.path.lexists(self._absolute):
                where = f" ({self._absolute})" if self._absolute != self.path else ""
                raise StoreError(
                    f"no SQLite store at {self.path!r}{where}: nothing was created; "
                    "check the path (sqlite:///relative.db, sqlite:////abs/path.db), or make "
                    "the store with a write such as `rollout activate NAME`"
                ) from exc
            raise translate(exc, f"cannot open SQLite store {self.path!r}", self.path) from exc
        try:
            self._prepare(connection)
            if self.path != ":memory:":
                _verify(connection, self.path)
        except sqlite3.Error as exc:
            connection.close()
            raise translate(exc, f"cannot open SQLite store {self.path!r}", self.path) from exc
        except UnicodeDecodeError as exc:  # SQLite's message quoted damaged bytes
            connection.close()
            raise corrupt(self.path, f"text that is not UTF-8 ({exc})") from exc
        except BaseException:
            connection.close()
            raise
        if self.path != ":memory:":
            self._identity = file_identity(self._absolute)
        return connection

    def _check_file(self) -> None:
        """Refuse to commit into a file that is no longer the one at ``self.path``.

        Deleting the file (or its folder) under a running process does not stop SQLite: the
        open descriptor keeps taking writes into an inode nobody will read again, and each would
        be acknowledged. One ``stat`` per write (a few microseconds) tells.
        """
        if self._identity is not None and file_identity(self._absolute) != self._identity:
            raise StoreError(
                f"SQLite store {self.path!r} was deleted or replaced while this process had it "
                "open: the write is refused, as it would be lost (put the file back, or restart "
                "the process to open the file now at that path)"
            )

    def _prepare(self, connection: sqlite3.Connection) -> None:
        """WAL mode and the schema, retried while another process does the same.

        Processes opening a new file at once race to switch it to WAL and create the tables;
        SQLite answers "database is locked" at once there, without waiting, where waiting could
        deadlock. So the whole step is retried, with jitter, for up to the busy timeout.
        """
        deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                connection.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
                if self.path != ":memory:":
                    connection.execute("PRAGMA journal_mode = WAL")
                connection.execute("PRAGMA synchronous = NORMAL")
                connection.executescript(_SCHEMA)
                self._check_schema_version(connection)
                return
            except sqlite3.OperationalError as exc:
                busy = "locked" in str(exc) or "busy" in str(exc)
                if not busy or time.monotonic() > deadline:
                    raise
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                time.sleep(random.uniform(0.005, 0.05))

    def _check_schema_version(self, connection: sqlite3.Connection) -> None:
        row = connection.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
        if row is None:
            connection.execute(
                "INSERT OR IGNORE INTO meta (name, value) VALUES ('schema_version', ?)",
                (str(_SCHEMA_VERSION),),
            )
        elif row[0] != str(_SCHEMA_VERSION):
            raise StoreError(
                f"SQLite store {self.path!r} has schema version {row[0]}, "
                f"this library reads version {_SCHEMA_VERSION}"
            )

    @contextmanager
    def _using(self, action: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise ClosedError(f"SQLite store {self.path!r} is closed")
            if self._pid != os.getpid():
                # A forked child must not share the parent's connection (SQLite forbids it).
                self._pid = os.getpid()
                self._connection = self._connect()
                self._loaded_version = None  # another connection's counter: not comparable
            try:
                yield self._connection
            except sqlite3.Error as exc:
                raise translate(
                    exc, f"cannot {action} SQLite store {self.path!r}", self.path
                ) from exc
            except UnicodeDecodeError as exc:  # SQLite's message quoted damaged bytes
                raise corrupt(self.path, f"text that is not UTF-8 ({exc})") from exc

    def load(self) -> Delta:
        with self._using("read") as connection:
            # Read before the snapshot: a commit landing in between is loaded and still counts
            # as new at the next look (one reload too many, never one too few).
            version = _data_version(connection)
            # One statement is one read transaction: a consistent snapshot under WAL.
            try:
                delta = read_registers(connection)
            except FormatError as exc:
                problem = corrupt(self.path, exc)
                self._load_problem = str(problem)
                raise problem from exc
            self._loaded_version = version
            self._load_problem = None
        return delta

    def ping(self) -> None:
        # A deleted or replaced file still answers reads through the open descriptor, but every
        # write is refused; a file whose last load failed on a damaged row no longer brings
        # other processes' changes: not a store to send traffic to (serve's /readyz).
        self._check_file()
        if self._load_problem is not None:
            raise StoreError(self._load_problem)
        with self._using("read") as connection:
            connection.execute("SELECT 1 FROM meta LIMIT 1").fetchall()

    def changed_elsewhere(self) -> bool:
        with self._using("read") as connection:
            return self._loaded_version is None or _data_version(connection) != self._loaded_version

    def save(self, delta: Delta) -> None:
        if not any(delta.values()):
            return  # nothing to write (a closed store too says nothing, as before)
        single, shared = rows(delta, self._json_each())
        watermarked = [
            {"flag": flag}
            for flag, registers in delta.items()
            if RESET in registers or DATA_RESET in registers
        ]
        # History events are never in an array (rollout.sqlite._rows): all are in ``single``.
        with_history = [
            {"flag": flag, "limit": self.history_limit}
            for flag in dict.fromkeys(row[0] for row in single if is_history(row[1]))
        ]
        with self._transaction("write to") as connection:
            if shared:
                connection.executemany(UPSERT_KEYS, shared)
            connection.executemany(UPSERT, single)
            if watermarked:
                connection.executemany(_PRUNE, watermarked)
            if with_history:
                connection.executemany(_PRUNE_HISTORY, with_history)

    def _json_each(self) -> bool:
        if self._has_json_each is None:
            with self._using("read") as connection:
                self._has_json_each = has_json_each(connection)
        return self._has_json_each

    def discard(self, delta: Delta) -> None:
        rows = [
            (flag, key, *register.ts)
            for flag, registers in delta.items()
            for key, register in registers.items()
        ]
        if not rows:
            return
        with self._transaction("discard from") as connection:
            connection.executemany(_DISCARD, rows)

    def quarantine(self, entries: Sequence[QuarantinedRegister]) -> None:
        if entries:
            with self._transaction("quarantine in") as connection:
                hold(connection, entries, self.quarantine_limit, self.verdicts_kept)

    def quarantined(self) -> QuarantineState:
        with self._using("read") as connection:
            connection.execute("BEGIN")  # both tables from one snapshot
            try:
                return read_quarantine(connection)
            except ValueError as exc:  # a value that is not JSON (held registers are as sent)
                raise corrupt(self.path, f"a held register: {exc}") from exc
            finally:
                rollback(connection)

    def release(self, registers: Iterable[Judged]) -> None:
        registers = list(registers)
        if registers:
            with self._transaction("release from") as connection:
                for flag, key, ts in registers:
                    judge(connection, flag, key, ts, unhold=True)
                trim(connection, self.verdicts_kept)

    @contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed only if the file is still the one opened."""
        with self._using(action) as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
                self._check_file()
                connection.execute("COMMIT")
            except BaseException:
                rollback(connection)
                raise

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                if self._pid == os.getpid():
                    self._connection.close()


def _data_version(connection: sqlite3.Connection) -> int:
    """A counter SQLite moves whenever a connection other than ``connection`` commits."""
    return int(connection.execute("PRAGMA data_version").fetchone()[0])


def _verify(connection: sqlite3.Connection, path: str) -> None:
    """``PRAGMA integrity_check`` once at open: a damaged page must not load as fewer flags.

    SQLite reads a damaged b-tree page without complaint as long as its structure holds, so a
    flipped bit can drop or reorder rows silently; the check walks every page (about 30 ms for a
    file of 100,000 users, against 0.3 s to load it) and refuses the file naming what is wrong.
    Rows that pass it but cannot be registers are refused by ``load``.
    """
    problems = [row[0] for row in connection.execute("PRAGMA integrity_check(5)")]
    if problems != ["ok"]:
        raise corrupt(path, "; ".join(" ".join(str(problem).split()) for problem in problems))
