"""A store in Redis: one place shared by processes on many machines (and by Ruby services).

Layout under a namespace ``ns`` (the Ruby gem needed redis-namespace for this):

* ``ns:flags`` — a set of flag names (the index);
* ``ns:flag:<name>`` — a hash per flag: register key -> packed register;
* ``ns:version`` — a counter bumped by every save that changed something;
* ``ns:changes`` — the pub/sub channel every such save publishes its delta on;
* ``ns:quarantine:held``, ``ns:quarantine:judged``, ``ns:quarantine:seq`` — the quarantine
  (rollout.redis._quarantine).

Each hash field holds a packed register (rollout.redis._packed): comparing two packed strings
compares ``(timestamp, value)``, exactly the last-writer-wins rule. One Lua script merges a whole
delta, drops what a watermark hides, records history, bumps the version and publishes,
atomically: two processes adding different users to one flag at the same moment both keep their
user. A write is one round trip: EVALSHA of that cached script, on a connection the store keeps
for its saves, with each register sent once and the change's JSON built from the same encoding,
the command written in Redis's wire format in one pass (rollout.redis._saver).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from string import Template
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from .._core.clock import Timestamp
from .._core.codec import check_flag
from .._core.keys import (
    DATA_RESET,
    DEFINITION_RESET,
    RESET,
    lua_is_data,
    lua_is_definition,
    lua_is_history,
    lua_is_targeting,
    lua_literal,
)
from .._core.quarantined import Judged, QuarantinedRegister, QuarantineState
from .._core.redact import redact_url, scrub
from .._core.state import Delta
from ..errors import (
    ClosedError,
    StoreError,
    StoreOutcomeUnknownError,
    StoreUnavailableError,
    require_extra,
)
from ..stores._base import Store
from ._packed import PREFIX, pack, pack_flag, stamped_origin, unpack
from ._quarantine import RedisQuarantine
from ._saver import SaveConnection, encode_command
from ._sentinel import sentinel_client
from ._transport import RedisTransport

logger = logging.getLogger("rollout.redis")

if TYPE_CHECKING:
    import redis

__all__ = ["RedisStore"]

# KEYS: index, version, then per flag its hash and its history index (a sorted set of the
# flag's history fields, all at score 0, so in key order = timestamp order: trimming the oldest
# never scans the hash). ARGV: channel, origin, delta JSON, history limit, then per flag: name,
# register count, then key/packed pairs. The $names are filled in from rollout._core.keys, as
# for the replica and the SQLite store: all three must drop exactly the same registers.
_MERGE = Template("""
local index, version_key = KEYS[1], KEYS[2]
local channel, origin, delta_json = ARGV[1], ARGV[2], ARGV[3]
local limit = tonumber(ARGV[4])
local P = $prefix
local function hidden(field, stamp, reset, data_reset, definition_reset)
  if $is_data then
    return data_reset and stamp < data_reset
  end
  if definition_reset and stamp < definition_reset and $is_definition then
    return true
  end
  return reset and stamp < reset and $is_targeting
end
local changed = 0
local arg = 5
for f = 3, #KEYS, 2 do
  local hash, events, name, count = KEYS[f], KEYS[f + 1], ARGV[arg], tonumber(ARGV[arg + 1])
  local added_events = false
  arg = arg + 2
  local reset = redis.call('HGET', hash, $reset)
  local data_reset = redis.call('HGET', hash, $data_reset)
  local definition_reset = redis.call('HGET', hash, $definition_reset)
  reset = reset and string.sub(reset, 1, P) or nil
  data_reset = data_reset and string.sub(data_reset, 1, P) or nil
  definition_reset = definition_reset and string.sub(definition_reset, 1, P) or nil
  local moved = false
  for r = 1, count do
    local field, packed = ARGV[arg], ARGV[arg + 1]
    arg = arg + 2
    local stamp = string.sub(packed, 1, P)
    local old = redis.call('HGET', hash, field)
    if (not old or packed > old)
        and not hidden(field, stamp, reset, data_reset, definition_reset) then
      redis.call('HSET', hash, field, packed)
      changed = changed + 1
      if field == $reset then reset = stamp; moved = true end
      if field == $data_reset then data_reset = stamp; moved = true end
      if field == $definition_reset then definition_reset = stamp; moved = true end
      if $is_history then
        redis.call('ZADD', events, 0, field)
        added_events = true
      end
    end
  end
  if added_events then
    local extra = redis.call('ZCARD', events) - limit
    if extra > 0 then
      local oldest = redis.call('ZPOPMIN', events, extra)
      for i = 1, #oldest, 2 do redis.call('HDEL', hash, oldest[i]) end
    end
  end
  if moved then
    local all = redis.call('HGETALL', hash)
    for i = 1, #all, 2 do
      if hidden(all[i], string.sub(all[i + 1], 1, P), reset, data_reset, definition_reset) then
        redis.call('HDEL', hash, all[i])
      end
    end
  end
  redis.call('SADD', index, name)
end
if changed == 0 then
  return tonumber(redis.call('GET', version_key) or '0')
end
local version = redis.call('INCR', version_key)
redis.call('PUBLISH', channel, version .. ' ' .. origin .. ' ' .. delta_json)
return version
""").substitute(
    prefix=PREFIX,
    is_data=lua_is_data("field"),
    is_targeting=lua_is_targeting("field"),
    is_definition=lua_is_definition("field"),
    is_history=lua_is_history("field"),
    reset=lua_literal(RESET),
    data_reset=lua_literal(DATA_RESET),
    definition_reset=lua_literal(DEFINITION_RESET),
)

# A consistent snapshot of everything: flat {name, {field, packed, ...}, ...} plus the version.
_LOAD = """
local out = {}
for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  out[#out + 1] = name
  out[#out + 1] = redis.call('HGETALL', ARGV[1] .. name)
end
return {redis.call('GET', KEYS[2]) or '0', out}
"""

# A compare-and-delete of registers, atomically. KEYS: per flag its hash and history index.
# ARGV: per flag a register count, then field/stamp pairs (the packed timestamp, no value). Not
# published and no version bump: no replica holds these (they were refused as from the future).
_DISCARD = Template("""
local P = $prefix
local arg = 1
local removed = 0
for f = 1, #KEYS, 2 do
  local hash, events, count = KEYS[f], KEYS[f + 1], tonumber(ARGV[arg])
  arg = arg + 1
  for r = 1, count do
    local field, stamp = ARGV[arg], ARGV[arg + 1]
    arg = arg + 2
    local old = redis.call('HGET', hash, field)
    if old and string.sub(old, 1, P) == stamp then
      redis.call('HDEL', hash, field)
      redis.call('ZREM', events, field)
      removed = removed + 1
    end
  end
end
return removed
""").substitute(prefix=PREFIX)


class RedisStore(Store):
    """Registers in Redis under ``namespace``. Give a redis-py client, or use :meth:`from_url`.

    Every save that changes something also publishes its delta on ``<namespace>:changes``; the
    :class:`~rollout.redis.RedisTransport` (started by ``Rollout`` with this store) turns that
    into live updates in every process.
    """

    def __init__(self, client: redis.Redis, *, namespace: str = "rollout") -> None:
        if not namespace or any(c in namespace for c in "\r\n "):
            raise ValueError(f"namespace must be a non-empty word, got {namespace!r}")
        self.client = client
        self.namespace = namespace
        self.url = f"redis (namespace {namespace})"
        self.channel = f"{namespace}:changes"
        self.index_key = f"{namespace}:flags"
        self.version_key = f"{namespace}:version"
        self.flag_prefix = f"{namespace}:flag:"
        self.history_prefix = f"{namespace}:history:"
        #: Who published a change, in each message (for people reading the channel).
        self.origin = f"pid-{os.getpid()}"
        self._merge = client.register_script(_MERGE)
        self._load = client.register_script(_LOAD)
        self._discard = client.register_script(_DISCARD)
        self._quarantine = RedisQuarantine(client, namespace)
        self._lock = threading.Lock()
        self._closed = False
        self._owned: list[redis.Redis] = []
        #: The saves' client, on one connection of ``client``'s pool (redis._saver).
        self._saver = SaveConnection(client)

    @classmethod
    def from_url(cls, url: str) -> RedisStore:
        """``redis://host:6379/0?namespace=myapp`` (also ``rediss://`` and ``unix://``), or
        ``redis+sentinel://host:26379,host2:26379/mymaster/0?namespace=myapp``."""
        require_extra("redis", "redis", "a redis:// store")
        import redis

        parts = urlsplit(url)
        query = parse_qs(parts.query)
        namespace = query.pop("namespace", ["rollout"])[0]
        rest = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
        sentinels: list[redis.Redis] = []
        try:
            if parts.scheme == "redis+sentinel":
                if query:  # redis-py's from_url options would be dropped without a word
                    raise ValueError(
                        f"a sentinel URL takes no {', '.join(sorted(query))!r} parameter (only "
                        "namespace; the master's password goes before the host: "
                        "redis+sentinel://:PASSWORD@host:26379/mymaster)"
                    )
                client, sentinels = sentinel_client(parts)
            else:
                client = redis.Redis.from_url(rest)
        except ValueError as exc:
            # redis-py's message may quote the URL or a part of it: scrubbed, and not chained
            # (a traceback prints the cause's text too).
            reason = scrub(exc, url)
            shown = redact_url(url)
            raise ValueError(f"store URL {shown!r} is not a Redis URL: {reason}") from None
        store = cls(client, namespace=namespace)
        store.url = redact_url(url)  # what it prints (serve's start-up line, stats()): no password
        store._owned = sentinels  # opened here, so closed with the store
        return store

    def default_transport(self) -> RedisTransport:
        # The replica saves its writes into this store, which publishes them: nothing to add.
        return RedisTransport(self, saves_writes=False)

    @contextmanager
    def _using(self, action: str, *, writes: bool = False) -> Iterator[None]:
        """Driver errors as StoreErrors. ``writes``: a lost answer is an unknown outcome.

        Redis runs a command it has received even when its answer never arrives (a server that
        hangs runs it when it resumes), so a write whose command was sent and whose answer timed
        out or was cut off is :class:`StoreOutcomeUnknownError`, never "nothing was written".
        Only a failure to connect, or to send, leaves the write unsent.
        """
        import redis

        if self._closed:
            raise ClosedError("this RedisStore is closed")
        try:
            yield
        except redis.BusyLoadingError as exc:
            raise StoreUnavailableError(f"cannot {action} Redis ({self.namespace}): {exc}") from exc
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            if writes and _sent(exc):
                raise StoreOutcomeUnknownError(
                    f"cannot {action} Redis ({self.namespace}): {exc}; the write was sent, so it "
                    "may or may not have happened (Redis may still carry it out): read the flag "
                    "back once Redis answers to know"
                ) from exc
            raise StoreUnavailableError(f"cannot {action} Redis ({self.namespace}): {exc}") from exc
        except redis.RedisError as exc:
            raise StoreError(f"cannot {action} Redis ({self.namespace}): {exc}") from exc

    def load(self) -> Delta:
        return self.snapshot()[0]

    def snapshot(self) -> tuple[Delta, int]:
        """Every register and the namespace's version, read atomically together."""
        with self._using("read"):
            version, flat = self._load(
                keys=[self.index_key, self.version_key], args=[self.flag_prefix]
            )
        delta: Delta = {}
        for i in range(0, len(flat), 2):
            try:
                name, fields = _text(flat[i]), flat[i + 1]
                registers = {
                    _text(fields[j]): unpack(_text(fields[j]), _text(fields[j + 1]), name)
                    for j in range(0, len(fields), 2)
                }
                check_flag(name, registers)
            except (ValueError, RecursionError) as exc:  # FormatError, UnicodeDecodeError
                # Damaged, or written by another program (Redis is shared: the Ruby gem, hand
                # edits): that flag is left out, loudly, and every other flag loads, as the
                # Ruby mirror does with a bad record. One foreign record must not stop every
                # process from starting. Never a half-read flag.
                logger.error(
                    "Redis store %s: the record of flag %r is unreadable and left out: %.300s "
                    "(HDEL the damaged field of the flag's hash; the replicas' next re-seed "
                    "writes back what they hold)",
                    self.namespace,
                    _text(flat[i], errors="backslashreplace"),
                    exc,
                )
                continue
            delta[name] = registers
        return delta, int(version)

    def save(self, delta: Delta) -> None:
        keys = [self.index_key, self.version_key]
        args: list[Any] = [self.channel, self.origin, "", self.history_limit]
        flags_json = []
        stamps: set[Timestamp] = set()
        for name, registers in delta.items():
            if registers:
                keys += (self.flag_prefix + name, self.history_prefix + name)
                args += (name, len(registers))
                flags_json.append(pack_flag(name, registers, args, stamps))
        if not flags_json:
            return
        args[1] = stamped_origin(self.origin, stamps)
        args[2] = "{" + ",".join(flags_json) + "}"
        command = encode_command(["EVALSHA", self._merge.sha, len(keys), *keys, *args])
        import redis

        with self._using("write to", writes=True):
            try:
                self._saver.run(command)
            except redis.exceptions.NoScriptError:
                # Redis restarted or its scripts were flushed (what redis-py's Script does too):
                # the script did not run, so it is loaded and the save sent once more.
                with self._saver.client() as saver:
                    saver.script_load(_MERGE)
                self._saver.run(command)

    def discard(self, delta: Delta) -> None:
        flags = [(name, registers) for name, registers in delta.items() if registers]
        if not flags:
            return
        keys: list[str] = []
        args: list[Any] = []
        for name, registers in flags:
            keys += [self.flag_prefix + name, self.history_prefix + name]
            args.append(len(registers))
            for key, register in registers.items():
                args += [key, pack(key, register)[:PREFIX]]
        with self._using("discard from", writes=True):
            self._discard(keys=keys, args=args)

    def quarantine(self, entries: Sequence[QuarantinedRegister]) -> None:
        with self._using("quarantine in", writes=True):
            self._quarantine.hold(entries, self.quarantine_limit, self.verdicts_kept)

    def quarantined(self) -> QuarantineState:
        with self._using("read"):
            return self._quarantine.read()

    def release(self, registers: Iterable[Judged]) -> None:
        with self._using("release from", writes=True):
            self._quarantine.release(registers, self.verdicts_kept)

    def ping(self) -> None:
        with self._using("reach"):
            self.client.ping()

    def version(self) -> int:
        with self._using("read"):
            return int(self.client.get(self.version_key) or 0)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._saver.close()  # its connection back to the pool, which closes next
            self.client.close()
            for connection in self._owned:  # the Sentinel connections of a sentinel URL
                connection.close()


#: redis-py's functions that make a connection ready (the socket, then HELLO, AUTH, SELECT): an
#: error raised inside them came before the command was sent.
_CONNECTING = frozenset({"get_connection", "ensure_connection", "connect", "on_connect"})


def _sent(exc: BaseException) -> bool:
    """Whether redis-py's error came while reading the command's answer (it had been sent).

    A new connection's handshake reads answers too ("Timeout reading from"), so where the error
    was raised decides first: inside redis-py's connecting, the command was never sent. Past
    that, "reading from" (a read timed out or failed) and "closed by server" (the connection
    ended while the answer was awaited) mean Redis may have received the whole command; any
    other error (sending failed, no master known to Sentinel) left it unsent.
    """
    traceback = exc.__traceback__
    while traceback is not None:
        if traceback.tb_frame.f_code.co_name in _CONNECTING:
            return False
        traceback = traceback.tb_next
    message = str(exc)
    return "reading from" in message or "closed by server" in message


def _text(value: bytes | str, errors: str = "strict") -> str:
    return value.decode(errors=errors) if isinstance(value, bytes) else value
