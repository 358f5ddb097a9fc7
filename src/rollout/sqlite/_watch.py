"""Changes other processes make to ``serve``'s SQLite file (the ``rollout`` CLI), seen live.

An SQLite store has no live updates of its own: two processes on one file see each other's
writes only after ``refresh()`` or a restart. For ``rollout serve`` that would mean a
``rollout activate chat`` typed next to it never reaches the open dashboards. So while it
serves, a thread asks SQLite whether the file has changed (``PRAGMA data_version``, a counter
that moves when another connection commits; a few microseconds, no table read) and, when it has,
merges the file into the replica with ``flags.refresh``, passed in as ``refresh``, which
notifies subscribers (the dashboard's event stream) of every flag that changed.

The server's own writes move this counter too, but ``flags.refresh`` then asks the store
itself, whose connection's counter moves only for other connections' commits, and reads nothing:
a one-user write next to a 100,000-user flag must not cost a reload of the whole file
(``stats()["store_reloads"]`` counts the reloads).

A file that cannot be read again (a damaged row written by another program, a busy file) is
logged once, in one line (a StoreError's message names the file and the cause), and read again
at its next change (a busy one also after :data:`RETRY` seconds): an operator's fix of the file
is picked up.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import unquote

from ..errors import StoreError, StoreUnavailableError

__all__ = ["INTERVAL", "sqlite_path", "watching"]

#: Seconds between two looks at the file.
INTERVAL = 0.25
#: Seconds before a busy file's failed read is tried again with no new change.
RETRY = 10.0

logger = logging.getLogger("rollout")


def sqlite_path(url: str) -> str | None:
    """The file of a ``sqlite:///...`` store URL; None for other stores and ``:memory:``."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return None
    path = unquote(url[len(prefix) :])
    return None if path in ("", ":memory:") else path


@contextlib.contextmanager
def watching(
    refresh: Callable[[], set[str]], path: str | None, interval: float = INTERVAL
) -> Iterator[None]:
    """Call ``refresh`` (``flags.refresh``: merge the file again) whenever another process
    commits to ``path``, while the block runs (nothing if None)."""
    if path is None:
        yield
        return
    stop = threading.Event()
    thread = threading.Thread(
        target=_watch, args=(refresh, path, interval, stop), name="rollout-store-watch", daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


def _watch(
    refresh: Callable[[], set[str]], path: str, interval: float, stop: threading.Event
) -> None:
    try:
        # Read-only, and its own connection: data_version counts other connections' commits.
        uri = f"{Path(path).absolute().as_uri()}?mode=ro"
        connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
    except sqlite3.Error as exc:
        logger.warning("not watching %s for changes by other processes: %s", path, exc)
        return
    try:
        seen = _version(connection)
        failed: str | None = None  # the last failure's message, while the file cannot be read
        retry_at = 0.0
        while not stop.wait(interval):
            try:
                version = _version(connection)
                if version == seen and (failed is None or time.monotonic() < retry_at):
                    continue
                changed = refresh()
                seen = version  # only once merged: a failed read is tried again
                if failed is not None:
                    logger.warning("%s is read again: changes by other processes arrive", path)
                    failed = None
                if changed:
                    logger.info("merged changes to %s: %s", path, ", ".join(sorted(changed)))
            except Exception as exc:  # a busy or damaged file: again at its next change
                # A busy file is also tried again soon; a damaged one is not read in full over
                # and over (a big file is seconds of CPU) but at its next change: the repair.
                busy = isinstance(exc, StoreUnavailableError)
                retry_at = time.monotonic() + RETRY if busy else math.inf
                if str(exc) == failed:
                    continue  # said once, not every look
                failed = str(exc)
                if isinstance(exc, StoreError):  # its message says the cause and the file
                    logger.error(
                        "cannot merge changes to %s (other processes' changes do not arrive "
                        "until it can be read; tried again at each change): %s",
                        path,
                        " ".join(failed.split()),
                    )
                else:
                    logger.exception("watching %s for changes failed", path)
    finally:
        connection.close()


def _version(connection: sqlite3.Connection) -> int:
    row = connection.execute("PRAGMA data_version").fetchone()
    return int(row[0])
