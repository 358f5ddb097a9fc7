"""What an SQLite failure means, said in an operator's words: the one place driver errors
become :class:`~rollout.errors.StoreError`.

SQLite's own messages name the symptom, not the cause: a file system remounted read-only after
a disk error answers "disk I/O error", a full disk and SQLite's page limit both answer "database
or disk is full". So the message of every translated error starts with the cause when one can be
told (the file system is read-only, the disk is full, the file is corrupt, the database is busy,
the file cannot be opened: no such folder, a folder), found from SQLite's error code and, for the
file system, from ``statvfs`` of the file's folder: a system call made only once something has
already failed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3

from ..errors import StoreError, StoreUnavailableError

__all__ = ["corrupt", "file_identity", "rollback", "translate"]

# SQLite's primary result codes (https://sqlite.org/rescode.html); an extended code carries the
# primary one in its low byte.
_READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 8, 10, 11, 13, 14, 26
_BUSY, _LOCKED = 5, 6

_RESTORE = "restore it from a backup, or move it aside and let the store be written again"


def translate(exc: sqlite3.Error, context: str, path: str) -> StoreError:
    """``exc`` as a StoreError whose message says the cause first when it can be told.

    Busy and locked (another process held the write lock past the busy timeout) become
    :class:`StoreUnavailableError`: nothing was committed, and the same call may succeed later.
    """
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    message = str(exc)
    if code in (_BUSY, _LOCKED) or (
        code == 0
        and isinstance(exc, sqlite3.OperationalError)
        and ("locked" in message or "busy" in message)
    ):
        return StoreUnavailableError(
            f"{context}: the database is busy (another process held it longer than the busy "
            f"timeout; nothing was written): {message}"
        )
    cause = _cause(code, path)
    return StoreError(f"{context}: {cause}: {message}" if cause else f"{context}: {message}")


def _cause(code: int, path: str) -> str | None:
    readonly_fs, full_disk = _file_system(path)
    if readonly_fs and code in (_READONLY, _IOERR, _CANTOPEN):
        return "read-only file system"
    if code == _FULL or (full_disk and code == _IOERR):
        return "disk full"  # SQLite's own text adds "or database" (its max_page_count)
    if code == _READONLY:
        return "read-only file (this process may not write the file or its folder)"
    if code in (_CORRUPT, _NOTADB):
        return f"the file is corrupt ({_RESTORE})"
    if code == _CANTOPEN:
        return _cannot_open(path)
    if code == _IOERR:
        return "I/O error (the system log may say more about the disk)"
    return None


def _cannot_open(path: str) -> str | None:
    """Why SQLite "is unable to open database file": its text never says (it is an open(2))."""
    if path in ("", ":memory:"):
        return None
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        # SQLite creates the file, never its folder: a volume not mounted yet, a typo, a
        # folder deleted while the process was down.
        return f"no such folder {folder!r} (SQLite creates the file, not its folder)"
    if os.path.isdir(path):
        return "the path is a folder, not a file"
    return "cannot open the file (check the owner and mode of the file and its folder)"


def _file_system(path: str) -> tuple[bool, bool]:
    """(read-only, no space left) for the file system holding ``path``; (False, False) unknown."""
    if path in ("", ":memory:"):
        return False, False
    try:
        stats = os.statvfs(os.path.dirname(os.path.abspath(path)))
    except OSError:
        return False, False
    readonly = bool(stats.f_flag & os.ST_RDONLY) or _refuses_writes(path + "-wal")
    return readonly, stats.f_bavail == 0


def _refuses_writes(path: str) -> bool:
    """Whether opening ``path`` for writing fails with EROFS (it is not created if missing).

    ext4 after an error (``errors=remount-ro``) may only mark itself read-only ("emergency_ro"
    in /proc/mounts): ``statvfs`` still says writable, but every write fails with EROFS. The
    probe opens the WAL file, never the database file: closing a descriptor of the database
    file would drop this process's SQLite locks on it (POSIX record locks are per process).
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_NOCTTY))
    except OSError as exc:
        return exc.errno == errno.EROFS
    return False


def corrupt(path: str, problem: object) -> StoreError:
    """A row SQLite reads without complaint but which cannot be a register: damaged bytes."""
    return StoreError(f"SQLite store {path!r} is corrupt: {problem} ({_RESTORE})")


def rollback(connection: sqlite3.Connection) -> None:
    """Roll back after a failed statement, keeping the statement's error as the one raised.

    SQLite rolls a transaction back by itself after some errors (a full disk, an I/O error), and
    a second ROLLBACK then fails with "cannot rollback - no transaction is active": that must
    not replace the error that says what went wrong.
    """
    if connection.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            connection.execute("ROLLBACK")


def file_identity(path: str) -> tuple[int, int] | None:
    """``(st_dev, st_ino)`` of the file at ``path`` now; None when there is none.

    Compared before each write with the identity recorded at open: a file deleted (or its
    folder deleted, or replaced by another file) under a running process keeps accepting
    writes through the open descriptor, into an inode nobody will ever read again.
    """
    try:
        stats = os.stat(path)
    except OSError:
        return None
    return stats.st_dev, stats.st_ino
