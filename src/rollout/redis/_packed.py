"""The packed register: how a register is kept in a Redis hash field, and a change's JSON.

A packed register is ``wall(16 digits) counter(10) node(19)`` then the value's JSON text (empty
for a watermark), so comparing two packed strings compares ``(timestamp, value)``: exactly the
last-writer-wins rule, with no number parsing in Lua (whose doubles would mangle 63-bit node
ids).

A save sends each register once, packed, and the change it publishes in the replication
format's JSON (``rollout._core.codec.encode_flags``, which every reader decodes), both made from
one encoding of each value: on the write path, that is most of the client's own work.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from json.encoder import encode_basestring_ascii as _json_string
from typing import Any

from .._core.clock import Timestamp
from .._core.keys import WATERMARKS
from .._core.state import Register
from .._core.stored_values import decode_stored, encode_value
from ..errors import FormatError

__all__ = [
    "COUNTER",
    "NODE",
    "PREFIX",
    "WALL",
    "origin_stamp",
    "pack",
    "pack_flag",
    "stamped_origin",
    "unpack",
]

WALL, COUNTER, NODE = 16, 10, 19
#: The timestamp's length: the value's text starts after it.
PREFIX = WALL + COUNTER + NODE


def pack(key: str, register: Register) -> str:
    return _stamp(register.ts) + _value_text(key, register.value)


def _stamp(ts: Timestamp) -> str:
    return _STAMP_FORMAT % ts


#: The stamp as a %-format of the timestamp's three fields: an f-string whose widths are names
#: parses its format specs on every call (twice the instructions, on every save).
_STAMP_FORMAT = f"%0{WALL}d%0{COUNTER}d%0{NODE}d"


def _value_text(key: str, value: Any) -> str:
    """``encode_value``: most registers are true or false (every listed user, group and
    exclusion, and ``exists``), and their JSON is known without calling json.dumps."""
    if key in WATERMARKS:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return encode_value(key, value)


def pack_flag(
    name: str,
    registers: Mapping[str, Register],
    args: list[Any],
    stamps: set[Timestamp],
    bulks: list[str] | None = None,
) -> str:
    """Append a flag's key/packed pairs to ``args`` and its timestamps to ``stamps``; return the
    flag's part of the change's JSON, as ``encode_flags`` writes it (the channel's format,
    which every reader decodes). With ``bulks``, each pair is also appended to it as two bulk
    strings of Redis's wire format, sized in characters (right for ASCII text only: the caller
    checks).

    All are made from one encoding of each value, and one of each timestamp: the registers
    of a local write all carry the same one.
    """
    fields = []
    last: Timestamp | None = None
    stamp = head = ""
    for key, register in registers.items():
        ts = register.ts
        if ts is not last:
            last, stamp, head = ts, _stamp(ts), f"[{ts.wall},{ts.counter},{ts.node}"
            stamps.add(ts)
        text = _value_text(key, register.value)
        packed = stamp + text
        args += (key, packed)
        if bulks is not None:
            bulks.append(f"${len(key)}\r\n{key}\r\n${len(packed)}\r\n{packed}\r\n")
        # A watermark has no value: [wall, counter, node].
        fields.append(
            f"{_json_string(key)}:{head},{text}]" if text else f"{_json_string(key)}:{head}]"
        )
    return f"{_json_string(name)}:{{{','.join(fields)}}}"


def stamped_origin(origin: str, stamps: set[Timestamp]) -> str:
    """The origin a change is published with: ``origin@wall.counter.node`` when every register
    of the change carries one timestamp (a local write), else ``origin`` alone.

    The writer's own subscriber hears every write back (Redis publishes to every subscriber).
    With the timestamp in the message's second field, it knows its own write's echo without
    decoding the change (:func:`origin_stamp`). Readers that predate it take the field as a
    word for people reading the channel, as it always was.
    """
    if len(stamps) != 1:
        return origin
    (ts,) = stamps
    return f"{origin}@{ts.wall}.{ts.counter}.{ts.node}"


def origin_stamp(origin: str) -> Timestamp | None:
    """The timestamp :func:`stamped_origin` put in a message's origin, if it holds one: the
    text after its last ``@``, three words of :func:`timestamp_words`' kind, found by one
    regular expression (in C: the echo of every write is read here)."""
    match = _ORIGIN_STAMP.search(origin)
    return None if match is None else Timestamp(*map(int, match.groups()))


#: ``@wall.counter.node`` at the end of an origin, each an unsigned decimal of 1 to 20 ASCII
#: digits (no ``@`` in it, so the ``@`` matched is the last one).
_ORIGIN_STAMP = re.compile(r"@([0-9]{1,20})\.([0-9]{1,20})\.([0-9]{1,20})\Z")


def timestamp_words(parts: list[str]) -> Timestamp | None:
    """A timestamp written as three decimal words (a notice's), or None.

    Each word is an unsigned decimal a timestamp field can hold: ASCII digits only (``int()``
    takes other scripts' digits too), and at most 20 of them (2**64 has 20), so ``int()`` never
    meets a number past its digit limit from a crafted message. Checked on the three at once:
    this runs for every change heard, the writer's own echoes included."""
    if len(parts) != 3:
        return None
    wall, counter, node = parts
    digits = wall + counter + node
    if not (
        digits.isascii()
        and digits.isdigit()
        and 0 < len(wall) <= 20
        and 0 < len(counter) <= 20
        and 0 < len(node) <= 20
    ):
        return None
    return Timestamp(int(wall), int(counter), int(node))


def unpack(key: str, packed: str, name: str) -> Register:
    """A packed register of flag ``name``, checked: ValueError (FormatError) if damaged."""
    stamp = packed[:PREFIX]
    if len(stamp) != PREFIX or not stamp.isdigit():
        raise FormatError(f"register {key!r} of flag {name!r}: {stamp!r} is not a timestamp")
    ts = Timestamp(
        int(packed[:WALL]),
        int(packed[WALL : WALL + COUNTER]),
        int(packed[WALL + COUNTER : PREFIX]),
    )
    return Register(ts, decode_stored(name, key, packed[PREFIX:]))
