"""Reading a whole Redis namespace in pages: the store's ``snapshot()``.

One script returning every hash of the namespace (what the store did first) built a reply of
two million strings for a flag of a million users, in Redis's memory and then redis-py's, and
redis-py's parser makes a Python object per string: a reopen spent most of its time and memory
there. Here each reply is a page of at most :data:`PAGE` registers, and each flag's part of a
page comes as its item count and one string, the fields and packed registers joined by NUL,
split in C on this side (a NUL inside a field, which no register written by this library holds,
shows as a wrong count: that part is asked for again as a plain list).

Small flags are read whole, many to a script call, so each is read atomically; a flag bigger
than a page is read with HSCAN, a page a call, its fields and values joined and split in C on
this side (not in a script: Redis's work for a page was three times HSCAN's own). Atomicity of
the whole comes from the version: read before and after, equal means no save changed anything
in between (every save that changes something bumps it). When saves kept coming, after
:data:`ATTEMPTS` reads the last read is returned with the version read *before* it: every
register in it was in the store at some moment since that version, so it is a join of states
the store passed through, and the changes announced after that version are announced again to
whoever follows (merging them twice changes nothing).

Decoding shares one Register per packed string of a listed user (``(ts, True)``): a write of many
users stamps them all alike, so a million users load as a million keys and a few Registers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Sequence
from contextlib import closing
from itertools import compress
from operator import not_
from typing import TYPE_CHECKING, Any

from .._core.codec import check_flag
from .._core.keys import EXISTS, RULES_ENTITY, SEPARATOR, TARGETING_PREFIXES
from .._core.member_keys import all_members
from .._core.state import Delta, Register
from ._packed import PREFIX, unpack

if TYPE_CHECKING:
    import redis

__all__ = ["ATTEMPTS", "PAGE", "Pages"]

logger = logging.getLogger("rollout.redis")

#: Registers per reply, about: bounds the memory a load holds besides what it decoded.
PAGE = 50_000
#: Reads of the whole namespace before one is returned although saves changed it meanwhile.
ATTEMPTS = 3

# A flag's part of a reply: {count, the items joined by NUL}, or with ARGV[1] set the plain list
# (when the count of the split string differs: a NUL inside a field or a packed register).
_JOIN = """
local plain = ARGV[1] == '1'
local function joined(items)
  if plain then return items end
  return {#items, table.concat(items, '\\0')}
end
"""

# The version, the flag names and each flag's register count, atomically.
_HEAD = """
local names = redis.call('SMEMBERS', KEYS[1])
local sizes = {}
for i, name in ipairs(names) do sizes[i] = redis.call('HLEN', ARGV[1] .. name) end
return {redis.call('GET', KEYS[2]) or '0', names, sizes}
"""

# Whole flags (ARGV: plain, the hash prefix, then names): per flag, its fields and registers.
_FLAGS = (
    _JOIN
    + """
local out = {}
for i = 3, #ARGV do out[#out + 1] = joined(redis.call('HGETALL', ARGV[2] .. ARGV[i])) end
return out
"""
)

_HEADS = frozenset(prefix[: -len(SEPARATOR)] for prefix in TARGETING_PREFIXES)
_LISTED = frozenset(("true", "false"))
#: Items of a reply from which :func:`_decode` tries C loops (a big flag's page: 2 a register).
_BULK = 2048


class Pages:
    """The store's paged reads (its scripts, registered once)."""

    def __init__(self, client: redis.Redis, index_key: str, version_key: str, prefix: str) -> None:
        self.client = client
        self.keys = [index_key, version_key]
        self.prefix = prefix
        self._head = client.register_script(_HEAD)
        self._flags = client.register_script(_FLAGS)

    def snapshot(self, damaged: Callable[[Any, BaseException], None]) -> tuple[Delta, int]:
        """Every register and the version; ``damaged(name, error)`` for a flag left out."""
        for _ in range(ATTEMPTS):
            delta, version = self._read(damaged)
            if int(self.client.get(self.keys[1]) or 0) == version:
                return delta, version
        logger.debug("Redis kept changing during %d reads; the last one is kept", ATTEMPTS)
        return delta, version

    def _read(self, damaged: Callable[[Any, BaseException], None]) -> tuple[Delta, int]:
        version, names, sizes = self._head(keys=self.keys, args=[self.prefix])
        delta: Delta = {}
        batch: list[Any] = []
        room = PAGE
        for name, size in zip(names, sizes, strict=True):
            if size > PAGE:
                self._big(name, delta, damaged)
                continue
            if size > room:
                self._small(batch, delta, damaged)
                batch, room = [], PAGE
            batch.append(name)
            room -= size
        self._small(batch, delta, damaged)
        return delta, int(version)

    def _small(
        self, names: list[Any], delta: Delta, damaged: Callable[[Any, BaseException], None]
    ) -> None:
        if not names:
            return
        replies = self._flags(args=["0", self.prefix, *names])
        memo: dict[str, Register] = {}
        for raw_name, reply in zip(names, replies, strict=True):
            try:
                name = _text(raw_name)
                parts = _parts(reply)
                if parts is None:  # a NUL inside: this flag again, as a plain list
                    parts = _parts(self._flags(args=["1", self.prefix, raw_name])[0])
                assert parts is not None
                registers: dict[str, Register] = {}
                _decode(name, parts, registers, memo)
                check_flag(name, {})  # the name (the registers were checked by _decode)
            except (ValueError, RecursionError) as exc:  # FormatError, UnicodeDecodeError
                damaged(raw_name, exc)
                continue
            delta[name] = registers

    def _big(
        self, raw_name: Any, delta: Delta, damaged: Callable[[Any, BaseException], None]
    ) -> None:
        hash_key = self.prefix + _text(raw_name, "backslashreplace")
        registers: dict[str, Register] = {}
        memo: dict[str, Register] = {}
        try:
            name = _text(raw_name)
            check_flag(name, {})
            with closing(self._scanned(hash_key)) as pages:  # its connection back at once
                for items in pages:
                    _decode(name, _page_parts(items), registers, memo)
        except (ValueError, RecursionError) as exc:  # never a half-read flag
            damaged(raw_name, exc)
            return
        delta[name] = registers

    def _scanned(self, hash_key: str) -> Generator[list[bytes]]:
        """A hash's pages (HSCAN's fields and values, alternating), each next page asked for
        before this one is handed out: Redis reads it while this side decodes (on a connection
        of the pool's). HSCAN itself, not a script around it: a script's HSCAN reply becomes a
        Lua table and then one joined string, three times Redis's work of the plain command."""
        pool = self.client.connection_pool
        connection = _connection(pool)
        pending = False
        try:
            connection.send_command("HSCAN", hash_key, 0, "COUNT", PAGE)  # type: ignore[no-untyped-call]
            pending = True
            while True:
                pending = False
                cursor, page = connection.read_response()
                if int(cursor) != 0:
                    connection.send_command("HSCAN", hash_key, cursor, "COUNT", PAGE)  # type: ignore[no-untyped-call]
                    pending = True
                yield page
                if not pending:
                    return
        finally:
            if pending:  # left early (an error): its answer is still on the way
                connection.disconnect()  # type: ignore[no-untyped-call]
            pool.release(connection)


def _parts(reply: list[Any]) -> Sequence[str] | None:
    """A flag's fields and packed registers, alternating, as text (strict UTF-8); None when
    the joined string does not split into its count (a NUL inside an item)."""
    if len(reply) != 2 or isinstance(reply[0], bytes | str):  # the plain list
        return [_text(item) for item in reply]
    count, joined = reply
    if not count:
        return []
    parts = _text(joined).split("\0")
    return parts if len(parts) == count else None


def _page_parts(items: list[bytes]) -> Sequence[str]:
    """A page's fields and values as text (strict UTF-8): decoded and split in C, or one by
    one when an item holds a NUL (which no register written by this library holds)."""
    parts = b"\0".join(items).decode().split("\0")
    return parts if len(parts) == len(items) else [item.decode() for item in items]


def _decode(
    name: str, parts: Sequence[str], registers: dict[str, Register], memo: dict[str, Register]
) -> None:
    """Add a page's registers to ``registers``, each checked as ``check_flag`` would.

    A listed user, exclusion or group (``true``/``false`` under a member key) is checked inline
    and shares its Register with every other one of the same packed text (``memo``); any other
    register goes through :func:`unpack` and ``check_flag``, which say what is wrong with it.
    """
    if len(parts) % 2:
        raise ValueError(f"flag {name!r}: a field without a value in Redis's reply")
    fast = name != RULES_ENTITY  # the rules entity holds no member keys (check_flag says so)
    if fast and len(parts) >= _BULK and _decode_in_bulk(name, parts, registers, memo):
        return
    heads = _HEADS
    others: dict[str, Register] = {}
    for i in range(0, len(parts), 2):
        key, packed = parts[i], parts[i + 1]
        if fast:
            shared = memo.get(packed)
            if shared is None and packed[PREFIX:] in _LISTED:
                shared = unpack(key, packed, name)  # checked; its value is a bool
                if len(memo) < 4096:  # distinct stamps: a write's users share one
                    memo[packed] = shared
            if shared is not None:
                head, separator, member = key.partition(SEPARATOR)
                if (separator and member and head in heads) or key == EXISTS:
                    registers[key] = shared
                    continue
        register = unpack(key, packed, name)
        others[key] = register
        registers[key] = register
    check_flag(name, others)


def _decode_in_bulk(
    name: str, parts: Sequence[str], registers: dict[str, Register], memo: dict[str, Register]
) -> bool:
    """:func:`_decode` of a big page by C loops; False, nothing added, to leave it to
    :func:`_decode` (which names what is damaged).

    A page of a big flag is tens of thousands of users sharing a few packed texts. Each distinct
    text is unpacked (checked) once, the keys holding one are picked by ``compress``, checked
    all at once by counts over their join (each a member key, ``all_members``), mapped to
    their Registers by ``zip``: the per-key loop of :func:`_decode` was most of a reopen's time
    in this process. The other registers (history events, a percentage...) are unpacked one by
    one and checked by ``check_flag``, as there. A damaged text of a listed value, a NUL in a
    key or a key that is no member's holding such a value is left to :func:`_decode`.
    """
    keys, texts = parts[0::2], parts[1::2]
    listed: dict[str, Register] = {}
    for packed in set(texts):
        shared = memo.get(packed)
        if shared is None and packed[PREFIX:] in _LISTED:
            try:
                shared = unpack(EXISTS, packed, name)  # the key only names it in an error
            except ValueError:
                return False  # damaged: _decode names the key that holds it
            if len(memo) < 4096:
                memo[packed] = shared
        if shared is not None:
            listed[packed] = shared
    holds_listed = list(map(listed.__contains__, texts))
    members = list(compress(keys, holds_listed))
    if not all_members("\0".join(members), len(members), "\0"):
        return False  # a NUL in a key, or a key that is no member's: one by one
    rest = compress(zip(keys, texts, strict=True), map(not_, holds_listed))
    others = {key: unpack(key, packed, name) for key, packed in rest}
    check_flag(name, others)
    registers.update(
        zip(members, map(listed.__getitem__, compress(texts, holds_listed)), strict=True)
    )
    registers.update(others)
    return True


def _text(value: bytes | str, errors: str = "strict") -> str:
    return value.decode(errors=errors) if isinstance(value, bytes) else value


def _connection(pool: redis.ConnectionPool) -> redis.connection.Connection:
    """A connection of ``pool``. redis-py before 5.3 requires a command's name (the floor is
    5.0.1); from 5.3 on, giving one is deprecated (a warning)."""
    try:
        return pool.get_connection()
    except TypeError:  # before 5.3: "missing 1 required positional argument: 'command_name'"
        return pool.get_connection("EVALSHA")
