"""Registers by the million: the whole store read at once, a big delta saved at once, and the
change of a big save, all in groups of registers sharing a flag, a timestamp and a value.

One write stamps all its registers alike (a million users added in 20 calls are 20 groups), so
a group is the unit that costs: one :class:`Register` shared by its keys, taken with one
``split`` or ``zip``, instead of a row tuple, a timestamp and a register per key.

* A load reads one row per group, its keys joined by newlines (``_sql.GROUPED_LOAD``).
* A big save groups the delta once, copies the rows in (``COPY``) and merges them with two
  statements (``_sql.UPDATE_FROM_STAGING``, ``_sql.INSERT_FROM_STAGING``); the rows of a flag
  with nothing stored are copied straight into the registers.
* Its change, for the listeners, is the list of groups (:func:`encode_change`) rather than a
  register per key: a third of the text, and decoded as a load is.

The checks of a damaged row are kept (``decode_stored``): the common group, listed users,
exclusions or groups set true or false (or ``exists``), is checked by counts over the joined
keys (rollout._core.member_keys); any other group key by key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import chain, groupby, repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from .._core.clock import Timestamp
from .._core.keys import WATERMARKS
from .._core.member_keys import all_members
from .._core.state import Delta, Register
from .._core.stored_values import decode_stored, encode_value
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
        if member is not None and joined is not None and all_members(joined, len(keys), "\n"):
            registers.update(zip(keys, repeat(Register(ts, member))))
            return
        for key in keys:
            registers[key] = Register(ts, decode_stored(flag, key, value))


def groups(delta: Delta) -> list[Group]:
    """The registers of ``delta`` in groups, each value encoded once: registers written
    together are one object (a decoded export shares them too), so keys are gathered by object
    first, then by what is stored."""
    found: dict[tuple[str, Timestamp, str], list[str]] = {}
    for flag, registers in delta.items():
        by_object: dict[int, list[str]] = {}
        held: dict[int, Register] = {}
        for key, register in registers.items():
            keys = by_object.get(id(register))  # the delta holds it: ids stay unique
            if keys is None:
                keys = by_object[id(register)] = []
                held[id(register)] = register
            keys.append(key)
        # A watermark is stored as "" whatever its value: taken out of its object's keys
        # afterwards (at most three looked up, rather than every key tested).
        for key in registers.keys() & WATERMARKS:
            register = registers[key]
            by_object[id(register)].remove(key)
            found.setdefault((flag, register.ts, ""), []).append(key)
        for number, keys in by_object.items():
            if not keys:
                continue
            register = held[number]
            value = register.value
            text = "true" if value is True else "false" if value is False else None
            where = (flag, register.ts, text or encode_value(keys[0], value))
            if where in found:
                found[where] += keys
            else:
                found[where] = keys
    # In key order (code point order, the "C" collation's), group by group: the rows reach the
    # registers' index in runs from left to right.
    for keys in found.values():
        keys.sort()
    return sorted(
        ((flag, ts, text, keys) for (flag, ts, text), keys in found.items()),
        key=lambda group: (group[0], group[3][0]),
    )


def is_plain(text: str) -> bool:
    """Whether ``text`` goes into COPY's text format as it is (no backslash, tab, newline or
    carriage return, which that format escapes)."""
    # Four scans in C (memchr), not a regular expression's test of every character against a
    # set: for the million keys of the state bench, 6 million instructions, not 580 million.
    return not ("\\" in text or "\t" in text or "\n" in text or "\r" in text)


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_rows(grouped: list[Group]) -> Iterator[str]:
    """The groups' rows in COPY's text format, 10,000 at a time, in (flag, key) order: the
    insert then fills the registers' index from left to right. A flag's groups each hold keys
    from all over its range (users added 50,000 at a time, sorted, interleave), and inserting
    them group by group, each group's keys in order, went over the index once per group: at a
    million users in 20 groups, half as long again as in one pass. Keys are escaped only when
    some need it, and the rows joined in C."""
    for flag, flag_groups in groupby(grouped, key=itemgetter(0)):
        runs = list(flag_groups)
        keys: list[str] = []
        tails: list[str] = []
        for _, ts, text, group_keys in runs:
            keys += group_keys
            tails += repeat(
                "\t" + "\t".join(map(str, ts)) + "\t" + text.translate(_COPY_ESCAPES) + "\n",
                len(group_keys),
            )
        if len(runs) > 1:
            # Each group's keys are sorted already, so this merges runs. The keys are sorted
            # alone (strings compare faster than pairs, and a million pairs kept the garbage
            # collector walking them), the tails follow.
            order = sorted(range(len(keys)), key=keys.__getitem__)
            keys = list(map(keys.__getitem__, order))
            tails = list(map(tails.__getitem__, order))
        head = flag.translate(_COPY_ESCAPES) + "\t"
        for start in range(0, len(keys), _COPY_ROWS):
            part_keys = keys[start : start + _COPY_ROWS]
            if not is_plain("".join(part_keys)):
                part_keys = [key.translate(_COPY_ESCAPES) for key in part_keys]
            part_tails = tails[start : start + _COPY_ROWS]
            yield "".join(chain.from_iterable(zip(repeat(head), part_keys, part_tails)))


_COPY_ROWS = 10_000


def stage(connection: psycopg.Connection[Any], grouped: list[Group]) -> int:
    """Merge the groups into the registers, in the caller's transaction, which holds the
    version row: how many registers were inserted or replaced. The groups of a flag with no
    register stored are copied straight into the registers (``_sql.STORED_FLAGS``): a merge into
    an empty store skips the copy's staging table and the joins, a third of its server time."""
    names = list(dict.fromkeys(map(itemgetter(0), grouped)))
    stored = {flag for (flag,) in connection.execute(_sql.STORED_FLAGS, [names])}
    new = [group for group in grouped if group[0] not in stored]
    merged = [group for group in grouped if group[0] in stored]
    changed = 0
    with connection.cursor() as cursor:
        if new:
            _copy(cursor, _sql.COPY_REGISTERS, new)
            changed += cursor.rowcount
        if merged:
            cursor.execute(_sql.STAGING)
            _copy(cursor, _sql.COPY_STAGING, merged)
            cursor.execute(_sql.MERGE_PLAN)
            replaced = cursor.execute(_sql.UPDATE_FROM_STAGING).fetchone()
            changed += int(replaced[0]) if replaced else 0
            changed += cursor.execute(_sql.INSERT_FROM_STAGING).rowcount
    return changed


def _copy(cursor: psycopg.Cursor[Any], statement: str, grouped: list[Group]) -> None:
    with cursor.copy(statement) as copy:
        for text in _copy_rows(grouped):
            copy.write(text)


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
