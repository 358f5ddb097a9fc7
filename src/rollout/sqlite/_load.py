"""Reading the registers table into a Delta, every row checked (rollout.sqlite._store's load).

A flag of a million listed users is a million rows alike but for their keys: one timestamp, the
value ``true``, written at once. A row equal to the last member row of its flag that
:func:`decode_stored` accepted without parsing (same timestamp, same text ``true`` or ``false``),
with a member key too (a listed user, exclusion or group), takes that row's Register after a few
comparisons: what decode_stored would accept, without the call. It checks every other row,
damaged ones included, as before. Rows come in primary-key order (flag, key), which SQLite reads
without sorting: a flag's rows, and a write's users among them, come one after another.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from .._core.clock import Timestamp
from .._core.keys import TARGETING_PREFIXES
from .._core.state import Delta, Register
from .._core.stored_values import decode_stored
from ..errors import FormatError

__all__ = ["read_registers"]

_ROWS = "SELECT flag, key, wall, counter, node, value FROM registers ORDER BY flag, key"
#: A key that is a prefix alone names no member: decode_stored checks it (and refuses it).
_BARE = frozenset(TARGETING_PREFIXES)


def read_registers(connection: sqlite3.Connection) -> Delta:
    """Every register of the table, checked: FormatError names the first damaged row."""
    delta: Delta = {}
    # One write stamps all its registers alike (100,000 users added at once share one
    # timestamp), so share the Timestamp objects too: it saves a third of the memory.
    timestamps: dict[tuple[int, int, int], Timestamp] = {}
    # And the Registers of listed users (true or false, one timestamp): one per write.
    members: dict[tuple[Timestamp, Any], Register] = {}
    prefixes, bare = TARGETING_PREFIXES, _BARE
    flag_before: object = None
    registers: dict[str, Register] = {}
    # The (wall, counter, node, value) of the last row of this flag that decode_stored found a
    # member without parsing, and its Register; a run_value of None: no such row yet.
    run_wall = run_counter = run_node = run_value = run_register = None
    # Rows are streamed, not fetched all at once, to keep the peak memory of a big load low.
    rows = connection.execute(_ROWS)
    try:
        for flag, key, wall, counter, node, value in rows:
            if flag != flag_before:
                flag_before, run_value = flag, None
                registers = delta.setdefault(flag, {})
            # decode_stored's own fast check of a member row, with the row before's result:
            # a prefix then a non-empty member (not the prefix alone) is what it accepts.
            # (Compared one by one: a tuple per row would cost more, and wake the collector.)
            if (
                value == run_value
                and wall == run_wall
                and counter == run_counter
                and node == run_node
                and type(key) is str
                and key.startswith(prefixes)
                and key not in bare
            ):
                registers[key] = run_register  # type: ignore[assignment]  # set with run
                continue
            parts = (wall, counter, node)
            ts = timestamps.get(parts)
            if ts is None:
                ts = timestamps[parts] = _timestamp(flag, key, parts)
            decoded = decode_stored(flag, key, value)
            if decoded is True or decoded is False:
                register = members.get((ts, decoded))
                if register is None:
                    register = members[(ts, decoded)] = Register(ts, decoded)
                # Only a row decode_stored took without parsing, so the next ones can be too.
                if value in ("true", "false") and key.startswith(prefixes):
                    run_wall, run_counter, run_node, run_value = wall, counter, node, value
                    run_register = register
            else:
                register = Register(ts, decoded)
            registers[key] = register
    finally:
        # Left unfinished, the statement keeps its read transaction open for as long as
        # something holds the traceback: this connection would read that old snapshot
        # for ever, and never see a repaired file.
        rows.close()
    return delta


def _timestamp(flag: object, key: object, parts: tuple[object, object, object]) -> Timestamp:
    """A row's timestamp columns, checked: damaged bytes can turn an integer into text."""
    if not all(type(part) is int and part >= 0 for part in parts):
        raise FormatError(
            f"register {key!r} of flag {flag!r}: timestamp {parts!r} is not 3 integers"
        )
    wall, counter, node = parts
    return Timestamp(wall, counter, node)  # type: ignore[arg-type]  # checked just above
