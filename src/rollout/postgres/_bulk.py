"""Registers by the million: the whole store read at once, a big delta saved at once, and the
change of a big save, all in groups of registers sharing a flag, a timestamp and a value.

One write stamps all its registers alike (a million users added in 20 calls are 20 groups), so
a group is the unit that costs: one :class:`Register` shared by its keys, taken with one
``split`` or ``zip``, instead of a row tuple, a timestamp and a register per key.

* A load reads one row per group, its keys joined by newlines (``_sql.GROUPED_LOAD``).
* A big save groups the delta once, copies the rows in (``COPY``) and merges them with two
  statements (``_sql.UPDATE_FROM_STAGING``, ``_sql.INSERT_FROM_STAGING``).
* Its change, for the listeners, is the list of groups (:func:`encode_change`) rather than a
  register per key: a third of the text, and decoded as a load is.

The checks of a damaged row are kept (``decode_stored``): the common group, listed users,
exclusions or groups set true or false (or ``exists``), is checked by one regular expression
over the joined keys; any other group key by key.
"""

from __future__ import annotations

import json
import re
from itertools import repeat
from typing import TYPE_CHECKING, Any

from .._core.clock import Timestamp
from .._core.codec import decode_stored, encode_value
from .._core.keys import EXISTS, TARGETING_PREFIXES, WATERMARKS
from .._core.state import Delta, Register
from ..errors import FormatError
from . import _sql

if TYPE_CHECKING:
    import psycopg

__all__ = ["BULK_ROWS", "decode_change", "encode_change", "groups", "load_grouped", "stage"]

#: From how many registers a save is copied in and merged by two statements, rather than one
#: upsert per register (which costs less for a few, and keeps a one-user write at one round
#: trip). Its change is then written as groups.
BULK_ROWS = 1000

#: ``(flag, timestamp, value as stored, keys)``: registers sharing all but their key.
Group = tuple[str, Timestamp, str, list[str]]

_BOOLEANS = {"true": True, "false": False}
_MEMBER = "|".join(re.escape(prefix) for prefix in TARGETING_PREFIXES)
#: A line of the joined keys that is not a listed member (``user:``, ``exclude:``, ``group:``
#: and at least one character) nor ``exists``. The text searched starts with a newline, so
#: every key follows one.
_NOT_MEMBER = re.compile(rf"\n(?!(?:{_MEMBER})[^\n]|{re.escape(EXISTS)}(?:\n|\Z))")


def load_grouped(connection: psycopg.Connection[Any]) -> Delta:
    """Every register, read in the caller's (snapshot) transaction. Raises FormatError for a
    damaged row, naming its flag and key."""
    # A hash of a few thousand groups, not a sort of a million rows (which spills to disk):
    # the planner, guessing a group per row, would sort. For this transaction only.
    connection.execute(_sql.GROUPING_PLAN)
    taken = _Taken()
    for flag, wall, counter, node, value, count, joined in connection.execute(_sql.GROUPED_LOAD):
        parts = (wall, counter, node)
        keys = joined.split("\n")
        if len(keys) == count:
            taken.add(flag, parts, value, keys, joined=joined)
        else:  # a key with a newline in it (an id may hold one): read one row per key
            rows = connection.execute(_sql.GROUP_KEYS, (flag, *parts, value))
            taken.add(flag, parts, value, [key for (key,) in rows], joined=None)
    return taken.delta


class _Taken:
    """A delta built group by group, its timestamps shared."""

    def __init__(self) -> None:
        self.delta: Delta = {}
        self._timestamps: dict[object, Timestamp] = {}

    def add(
        self,
        flag: object,
        parts: tuple[object, ...],
        value: object,
        keys: list[Any],
        *,
        joined: str | None,
    ) -> None:
        """Add one group, checked. ``joined``: its keys joined by newlines, when no key holds
        one (None: they are checked one by one)."""
        ts = self._timestamps.get(parts)
        if ts is None:
            if not all(type(part) is int and part >= 0 for part in parts):
                first = keys[0] if keys else None
                raise FormatError(
                    f"register {first!r} of flag {flag!r}: timestamp {parts!r} is not 3 integers"
                )
            ts = self._timestamps[parts] = Timestamp(*parts)  # type: ignore[arg-type]  # ints
        if not (type(flag) is str and flag):
            decode_stored(flag, keys[0] if keys else None, value)  # raises, naming the flag
        registers = self.delta.get(flag)  # type: ignore[call-overload]
        if registers is None:
            registers = self.delta[flag] = {}  # type: ignore[index]
        member = _BOOLEANS.get(value) if type(value) is str else None
        if member is not None and joined is not None and not _NOT_MEMBER.search("\n" + joined):
            registers.update(zip(keys, repeat(Register(ts, member))))
            return
        for key in keys:
            registers[key] = Register(ts, decode_stored(flag, key, value))


def groups(delta: Delta) -> list[Group]:
    """The registers of ``delta`` in groups, each value encoded once (registers written
    together are one object, and booleans need no JSON)."""
    found: dict[tuple[str, Timestamp, str], list[str]] = {}
    texts: dict[int, str] = {}
    for flag, registers in delta.items():
        for key, register in registers.items():
            value = register.value
            if key in WATERMARKS:
                text = ""
            elif value is True:
                text = "true"
            elif value is False:
                text = "false"
            else:
                cached = texts.get(id(register))  # the delta holds it: ids stay unique
                if cached is None:
                    cached = texts[id(register)] = encode_value(key, value)
                text = cached
            where = (flag, register.ts, text)
            keys = found.get(where)
            if keys is None:
                keys = found[where] = []
            keys.append(key)
    return [(flag, ts, text, keys) for (flag, ts, text), keys in found.items()]


def stage(connection: psycopg.Connection[Any], grouped: list[Group]) -> int:
    """Merge the groups into the registers, in the caller's transaction: how many registers
    were inserted or replaced."""
    connection.execute(_sql.STAGING)
    with connection.cursor() as cursor:
        with cursor.copy(_sql.COPY_STAGING) as copy:
            write_row = copy.write_row
            for flag, ts, text, keys in grouped:
                wall, counter, node = ts
                for key in keys:
                    write_row((flag, key, wall, counter, node, text))
        cursor.execute(_sql.MERGE_PLAN)
        changed = cursor.execute(_sql.UPDATE_FROM_STAGING).rowcount
        changed += cursor.execute(_sql.INSERT_FROM_STAGING).rowcount
    return changed


def encode_change(grouped: list[Group]) -> str:
    """A big save's change for the ``changes`` table: ``[[flag, wall, counter, node, value as
    stored, [keys]], ...]`` (a small save's is the export format's ``flags``, an object)."""
    return json.dumps(
        [[flag, *ts, text, keys] for flag, ts, text, keys in grouped],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def decode_change(change: list[Any]) -> Delta:
    """The delta of :func:`encode_change`'s (parsed) list; FormatError if it is not one."""
    taken = _Taken()
    for group in change:
        if not (isinstance(group, list) and len(group) == 6 and isinstance(group[5], list)):
            raise FormatError(
                "a change's group must be [flag, wall, counter, node, value, keys], got "
                f"{str(group)[:80]}"
            )
        flag, wall, counter, node, value, keys = group
        if not keys:
            continue
        bad = [key for key in keys if type(key) is not str]
        if bad:
            raise FormatError(f"a register key of flag {flag!r} must be text, got {bad[0]!r}")
        joined = "\n".join(keys)
        one_per_line = joined.count("\n") == len(keys) - 1  # else a key holds a newline
        taken.add(flag, (wall, counter, node), value, keys, joined=joined if one_per_line else None)
    return taken.delta
