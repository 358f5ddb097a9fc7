"""The statements and rows of one save into the registers table (rollout.sqlite._store).

A flag of a million users written at once (``activate_users``, an export merged) holds one
Register for all of them: one timestamp, one value. Bound row by row, that is a million Python
tuples, a million encodings of ``true`` and a million statements stepped from Python. Here the
keys sharing one Register are bound instead as one JSON array, which SQLite's ``json_each`` turns
into rows inside one statement: the same upsert, row for row, at a fraction of the cost. The
other registers (a flag's percentage, data, history: few) go row by row as before.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from itertools import compress, repeat
from operator import is_, not_
from typing import TYPE_CHECKING, NamedTuple

from .._core.keys import WATERMARKS
from .._core.lazy import LazyModule
from .._core.stored_values import encode_value

if TYPE_CHECKING:
    import json

    from .._core.state import Delta, Register
else:
    json = LazyModule("json")  # loaded by the first save with many keys alike (lazy.py)

__all__ = ["UPSERT", "UPSERT_KEYS", "Rows", "has_json_each", "rows"]

# Last-writer-wins in SQL: replace only a register with a smaller (timestamp, value); the value
# comparison is the same tie-break as rollout._core.state.wins (canonical JSON text).
_ON_CONFLICT = """
ON CONFLICT (flag, key) DO UPDATE SET
    wall = excluded.wall, counter = excluded.counter, node = excluded.node, value = excluded.value
WHERE (excluded.wall, excluded.counter, excluded.node, excluded.value)
    > (registers.wall, registers.counter, registers.node, registers.value)
"""
UPSERT = (
    "INSERT INTO registers (flag, key, wall, counter, node, value) VALUES (?, ?, ?, ?, ?, ?)"
    + _ON_CONFLICT
)
#: The same upsert for every key of a JSON array, all with one register. ``WHERE true`` is
#: SQLite's required disambiguation of an upsert whose rows come from a SELECT.
UPSERT_KEYS = (
    "INSERT INTO registers (flag, key, wall, counter, node, value) "
    "SELECT ?, value, ?, ?, ?, ? FROM json_each(?) WHERE true" + _ON_CONFLICT
)

#: A register shared by fewer keys than this is bound row by row: the array is not worth it.
SHARED_FROM = 64
#: Keys per array: about 1 MB of text each, far below any length limit an SQLite is built with.
_ARRAY_KEYS = 65_536
#: How many distinct shared registers one flag is searched for (a write adding users, one
#: removing others, ...): the rest are bound row by row.
_ROUNDS = 4

Row = tuple[str, str, int, int, int, str]
#: ``(flag, wall, counter, node, value, keys)``: the keys as a JSON array of strings.
SharedRow = tuple[str, int, int, int, str, str]


class Rows(NamedTuple):
    single: list[Row]
    shared: list[SharedRow]


def has_json_each(connection: sqlite3.Connection) -> bool:
    """Whether this SQLite has ``json_each`` (built in since 3.38, an option before)."""
    try:
        connection.execute("SELECT value FROM json_each('[1]')").fetchall()
    except sqlite3.OperationalError:
        return False
    return True


def rows(delta: Delta, json_each: bool) -> Rows:
    """The rows saving ``delta``: keys sharing one Register as one array each (with
    ``json_each``), the rest one row each."""
    single: list[Row] = []
    shared: list[SharedRow] = []
    for flag, registers in delta.items():
        if not json_each or len(registers) < SHARED_FROM:
            single += _single(flag, registers.items())
            continue
        keys, values = list(registers), list(registers.values())
        for _ in range(_ROUNDS):
            register = _candidate(values)
            if register is None:
                break
            # By identity: no register is read, and a bulk write's keys share one object.
            same = list(map(is_, values, repeat(register)))
            if sum(same) < SHARED_FROM:
                break
            members = list(compress(keys, same))
            left = list(map(not_, same))
            keys, values = list(compress(keys, left)), list(compress(values, left))
            # A watermark's text is empty whatever its value: never in an array (a write may
            # share its Register(ts, True) with the users it lists).
            for watermark in WATERMARKS & registers.keys():
                if registers[watermark] is not register:
                    continue
                members.remove(watermark)
                single += _single(flag, [(watermark, register)])
            value = encode_value(members[0], register.value)
            for start in range(0, len(members), _ARRAY_KEYS):
                part = members[start : start + _ARRAY_KEYS]
                text = json.dumps(part, ensure_ascii=False, separators=(",", ":"))
                if "\\" in text:  # an escape: SQLite's reading of it is not ours to rely on
                    single += _single(flag, [(key, register) for key in part])
                else:
                    shared.append((flag, *register.ts, value, text))
        single += _single(flag, zip(keys, values, strict=True))
    return Rows(single, shared)


def _candidate(values: list[Register]) -> Register | None:
    """A register that may be shared by many keys, true or false (listed users are, history
    events never), from the middle or either end (where a write's keys sit, whatever the
    order); None when none of those is one."""
    for at in (len(values) // 2, len(values) - 1, 0):
        if 0 <= at < len(values) and type(values[at].value) is bool:
            return values[at]
    return None


def _single(flag: str, items: Iterable[tuple[str, Register]]) -> list[Row]:
    # Registers shared by a few keys (one write's users) are encoded once each.
    texts: dict[int, str] = {}
    result: list[Row] = []
    for key, register in items:
        text = texts.get(id(register)) if key not in WATERMARKS else None
        if text is None:
            text = encode_value(key, register.value)
            if key not in WATERMARKS:
                texts[id(register)] = text
        result.append((flag, key, *register.ts, text))
    return result
