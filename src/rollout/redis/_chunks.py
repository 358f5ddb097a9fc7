"""Big writes to Redis: a join cut into chunks, and the small notice that announces a big save.

A merge (an import, a replica's re-seed) is a join of registers, so applying it a chunk at a
time reaches exactly the state one script would, and each chunk, one atomic script of at most
:data:`CHUNK` registers, keeps Redis answering its other clients in between. So does a local
write of more registers than that (``activate_users`` of many ids): registers are a join too.

A save announces its registers on the changes channel, as JSON. Past :data:`NOTICE_BYTES` it
announces a word instead (``<version> <origin> reload``, then the write's timestamp when all
its registers share one, so that its own writer knows it): a subscriber reloads the store.
Megabytes sent to every subscriber would let Redis cut off a slow one (its pub/sub output
buffer limit), which would then re-seed and reload anyway. The chunks of a merge but its last
announce ``partial``: the follower notes that it is behind and reloads once, at the last. A
last chunk that changed nothing announces nothing (it has no version of its own), so the merge
then ends with ``<its last version> <origin> done``: a follower that is behind reloads, any other
ignores it (the merging process among them).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain, islice
from typing import Any

from .._core.keys import HISTORY, USER, WATERMARKS
from .._core.listed_names import other_keys
from .._core.state import Delta, Register
from ._packed import _stamp, _value_text
from ._saver import encode_parts

__all__ = [
    "CHUNK",
    "DONE",
    "NOTICE_BYTES",
    "PARTIAL",
    "RELOAD",
    "chunk_command",
    "reload_notice",
    "split",
]

#: Registers per script of a merge, and the most a local write saves in one script.
CHUNK = 25_000
#: The largest change announced as JSON, in characters.
NOTICE_BYTES = 256 * 1024
RELOAD = "reload"
PARTIAL = "partial"
DONE = "done"


def split(delta: Delta, size: int) -> Iterator[Delta]:
    """``delta`` in deltas of at most ``size`` registers (a flag across several if it must,
    its watermarks in its first: registers they hide are then dropped as they arrive; and its
    history events: a write stopped after its first chunk still records who made it)."""
    chunk: Delta = {}
    room = size
    for name, registers in delta.items():
        if not registers:
            continue
        if len(registers) <= room:
            chunk[name] = registers
            room -= len(registers)
        else:
            items = iter(_watermarks_first(registers))
            while part := dict(islice(items, room)):
                chunk[name] = part
                room -= len(part)
                if room == 0:
                    yield chunk
                    chunk, room = {}, size
            continue
        if room == 0:
            yield chunk
            chunk, room = {}, size
    if chunk:
        yield chunk


def _watermarks_first(registers: dict[str, Register]) -> Iterator[tuple[str, Register]]:
    marks = [(key, registers[key]) for key in WATERMARKS if key in registers]
    # The events among the keys that are no user's, found in C: str.startswith on each key
    # was a fifth of the chunks' instructions (callgrind, 200,000 users: 987 M -> 802 M).
    others = other_keys(registers, USER)
    marks += [(key, registers[key]) for key in others if key.startswith(HISTORY)]
    if not marks:
        return iter(registers.items())  # taken by islice in C, not a generator's step a key
    rest = dict(registers)
    for key, _ in marks:
        del rest[key]
    return chain(marks, rest.items())


def reload_notice(delta: Delta) -> str:
    """``reload``, with the timestamp the registers all share if they do (a local write)."""
    stamp = None
    for registers in delta.values():
        for register in registers.values():
            if stamp is None:
                stamp = register.ts
            elif register.ts != stamp:
                return RELOAD
    if stamp is None:
        return RELOAD
    return f"{RELOAD} {stamp.wall} {stamp.counter} {stamp.node}"


def chunk_command(sha: str, keys: list[str], head: list[Any], delta: Delta) -> bytes:
    """The EVALSHA of a merge's chunk in Redis's wire format (rollout.redis._saver's
    ``encode_command``): ``head`` (ARGV's first four), then per flag its name, its register
    count and its fields and packed registers as arguments of their own, which the script hands
    to HMGET and HSET as they are."""
    size = 3 + len(keys) + len(head) + sum(2 + 2 * len(registers) for registers in delta.values())
    pieces = [f"*{size}\r\n".encode(), encode_parts(["EVALSHA", sha, len(keys), *keys, *head])]
    for name, registers in delta.items():
        pieces.append(encode_parts([name, len(registers)]))
        pieces.append(_fields(registers).encode())
    return b"".join(pieces)


def _fields(registers: dict[str, Register]) -> str:
    """A flag's fields and packed registers, in its order, as bulk strings. A register shared
    by many fields (an export's users come by the write) is packed once, and the text is put
    together by C loops (map, zip, join) rather than a formatted string a field: the chunks of
    a merge of a million users cost a fifth of the instructions they did."""
    fields = list(registers)
    ids = list(map(id, registers.values()))
    tails = {  # the text after a field: its register, packed, as a bulk string
        key: _bulk(_stamp(register.ts) + _value_text("", register.value))
        for key, register in dict(zip(ids, registers.values(), strict=True)).items()
    }
    for watermark in WATERMARKS.intersection(registers):  # its packed text has no value
        at = fields.index(watermark)
        ids[at] = -1 - at  # no id: ids are never negative
        tails[ids[at]] = _bulk(_stamp(registers[watermark].ts))
    if "".join(fields).isascii():  # then a field has as many bytes as characters
        sizes = list(map(len, fields))
    else:
        sizes = list(map(len, map(str.encode, fields)))
    heads = {size: f"${size}\r\n" for size in set(sizes)}
    parts = zip(map(heads.__getitem__, sizes), fields, map(tails.__getitem__, ids), strict=True)
    return "".join(chain.from_iterable(parts))


def _bulk(packed: str) -> str:
    """The end of a field's bulk string, then ``packed`` (ASCII) as one."""
    return f"\r\n${len(packed)}\r\n{packed}\r\n"
