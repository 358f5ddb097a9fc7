"""The quarantine in an SQLite store: its two tables, read and written inside a transaction.

``quarantine_held`` has one row per flag and register key (the register held there, its origin
and when it was refused); ``quarantine_judged`` every register judged, numbered in the order
judged, so the oldest verdicts are the ones forgotten past the bound. The rules are those of
:class:`rollout._core.quarantined.QuarantineBook`; the caller holds a ``BEGIN IMMEDIATE``
transaction, so processes sharing the file apply them one at a time.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from .._core.clock import Timestamp
from .._core.quarantined import QuarantinedRegister, QuarantineState
from .._core.stored_values import decode_value, encode_value

__all__ = ["hold", "judge", "read_quarantine", "trim"]

_IS_JUDGED = """
SELECT 1 FROM quarantine_judged
WHERE flag = ? AND key = ? AND wall = ? AND counter = ? AND node = ?
"""
_HELD_STAMP = "SELECT wall, counter, node FROM quarantine_held WHERE flag = ? AND key = ?"
_PUT_HELD = """
INSERT OR REPLACE INTO quarantine_held
    (flag, key, wall, counter, node, value, origin, quarantined_at_ms)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""
_UNHOLD = """
DELETE FROM quarantine_held
WHERE flag = ? AND key = ? AND wall = ? AND counter = ? AND node = ?
"""
# Re-judging a register moves it to the newest end, as in the in-memory book.
_FORGET = """
DELETE FROM quarantine_judged
WHERE flag = ? AND key = ? AND wall = ? AND counter = ? AND node = ?
"""
_JUDGE = "INSERT INTO quarantine_judged (flag, key, wall, counter, node) VALUES (?, ?, ?, ?, ?)"
_TRIM = """
DELETE FROM quarantine_judged WHERE seq <= (
    SELECT seq FROM quarantine_judged ORDER BY seq DESC LIMIT 1 OFFSET ?)
"""


def hold(
    connection: sqlite3.Connection,
    entries: Sequence[QuarantinedRegister],
    limit: int,
    verdicts_kept: int,
) -> None:
    """Hold ``entries`` by the book's rules (see QuarantineBook.hold), then trim the verdicts."""
    (count,) = connection.execute("SELECT count(*) FROM quarantine_held").fetchone()
    for entry in entries:
        stamp = tuple(entry.timestamp)
        if connection.execute(_IS_JUDGED, (entry.flag, entry.key, *stamp)).fetchone():
            continue
        current = connection.execute(_HELD_STAMP, (entry.flag, entry.key)).fetchone()
        if current is not None:
            if stamp <= tuple(current):
                if stamp < tuple(current):
                    judge(connection, entry.flag, entry.key, entry.timestamp)
                continue
            judge(connection, entry.flag, entry.key, Timestamp(*current))
        elif count >= limit:
            continue
        else:
            count += 1
        connection.execute(
            _PUT_HELD,
            (
                entry.flag,
                entry.key,
                *stamp,
                encode_value(entry.key, entry.value),
                entry.origin,
                entry.quarantined_at_ms,
            ),
        )
    trim(connection, verdicts_kept)


def judge(
    connection: sqlite3.Connection,
    flag: str,
    key: str,
    ts: Timestamp,
    *,
    unhold: bool = False,
) -> None:
    """Remember ``(flag, key, ts)`` as judged (and, with ``unhold``, stop holding it). The
    caller trims the verdicts once, at the end of its transaction."""
    row = (flag, key, *ts)
    if unhold:
        connection.execute(_UNHOLD, row)
    connection.execute(_FORGET, row)
    connection.execute(_JUDGE, row)


def trim(connection: sqlite3.Connection, verdicts_kept: int) -> None:
    """Forget all but the newest ``verdicts_kept`` verdicts."""
    connection.execute(_TRIM, (verdicts_kept,))


def read_quarantine(connection: sqlite3.Connection) -> QuarantineState:
    held = [
        QuarantinedRegister(
            flag, key, decode_value(key, value), Timestamp(wall, counter, node), origin, at
        )
        for flag, key, wall, counter, node, value, origin, at in connection.execute(
            "SELECT flag, key, wall, counter, node, value, origin, quarantined_at_ms "
            "FROM quarantine_held ORDER BY flag, key"
        )
    ]
    judged = [
        (flag, key, Timestamp(wall, counter, node))
        for flag, key, wall, counter, node in connection.execute(
            "SELECT flag, key, wall, counter, node FROM quarantine_judged ORDER BY seq"
        )
    ]
    return QuarantineState(held, judged)
