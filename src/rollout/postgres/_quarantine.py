"""The quarantine in a PostgreSQL store: two tables, read and written inside a transaction.

The same tables and rules as the SQLite store's (rollout.sqlite._quarantine):
``quarantine_held`` has one row per flag and register key, ``quarantine_judged`` every register
judged, numbered in the order judged so the oldest verdicts are forgotten past the bound. The
caller holds the ``quarantine`` row of ``meta`` locked, so processes apply the rules of
:class:`rollout._core.quarantined.QuarantineBook` one at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._core.clock import Timestamp
from .._core.quarantined import QuarantinedRegister, QuarantineState
from .._core.stored_values import decode_value, encode_value

if TYPE_CHECKING:
    import psycopg

__all__ = ["hold", "judge", "read_quarantine", "trim"]

_IS_JUDGED = """
SELECT 1 FROM quarantine_judged
WHERE flag = %s AND key = %s AND wall = %s AND counter = %s AND node = %s
"""
_HELD_STAMP = "SELECT wall, counter, node FROM quarantine_held WHERE flag = %s AND key = %s"
_PUT_HELD = """
INSERT INTO quarantine_held (flag, key, wall, counter, node, value, origin, quarantined_at_ms)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (flag, key) DO UPDATE SET
    wall = excluded.wall, counter = excluded.counter, node = excluded.node,
    value = excluded.value, origin = excluded.origin,
    quarantined_at_ms = excluded.quarantined_at_ms
"""
_UNHOLD = """
DELETE FROM quarantine_held
WHERE flag = %s AND key = %s AND wall = %s AND counter = %s AND node = %s
"""
# Re-judging a register moves it to the newest end, as in the in-memory book.
_FORGET = """
DELETE FROM quarantine_judged
WHERE flag = %s AND key = %s AND wall = %s AND counter = %s AND node = %s
"""
_JUDGE = (
    "INSERT INTO quarantine_judged (flag, key, wall, counter, node) VALUES (%s, %s, %s, %s, %s)"
)
_TRIM = """
DELETE FROM quarantine_judged WHERE seq <= (
    SELECT seq FROM quarantine_judged ORDER BY seq DESC LIMIT 1 OFFSET %s)
"""


def hold(
    connection: psycopg.Connection[Any],
    entries: Sequence[QuarantinedRegister],
    limit: int,
    verdicts_kept: int,
) -> None:
    """Hold ``entries`` by the book's rules (see QuarantineBook.hold), then trim the verdicts."""
    row = connection.execute("SELECT count(*) FROM quarantine_held").fetchone()
    count = int(row[0]) if row else 0
    for entry in entries:
        stamp = tuple(entry.timestamp)
        if connection.execute(_IS_JUDGED, (entry.flag, entry.key, *stamp)).fetchone():
            continue
        current = connection.execute(_HELD_STAMP, (entry.flag, entry.key)).fetchone()
        if current is not None:
            held = tuple(int(part) for part in current)
            if stamp <= held:
                if stamp < held:
                    judge(connection, entry.flag, entry.key, entry.timestamp)
                continue
            judge(connection, entry.flag, entry.key, Timestamp(*held))
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
    connection: psycopg.Connection[Any],
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


def trim(connection: psycopg.Connection[Any], verdicts_kept: int) -> None:
    """Forget all but the newest ``verdicts_kept`` verdicts."""
    connection.execute(_TRIM, (verdicts_kept,))


def read_quarantine(connection: psycopg.Connection[Any]) -> QuarantineState:
    held = [
        QuarantinedRegister(
            str(flag),
            str(key),
            decode_value(str(key), str(value)),
            Timestamp(int(wall), int(counter), int(node)),
            str(origin),
            int(at),
        )
        for flag, key, wall, counter, node, value, origin, at in connection.execute(
            "SELECT flag, key, wall, counter, node, value, origin, quarantined_at_ms "
            "FROM quarantine_held ORDER BY flag, key"
        )
    ]
    judged = [
        (str(flag), str(key), Timestamp(int(wall), int(counter), int(node)))
        for flag, key, wall, counter, node in connection.execute(
            "SELECT flag, key, wall, counter, node FROM quarantine_judged ORDER BY seq"
        )
    ]
    return QuarantineState(held, judged)
