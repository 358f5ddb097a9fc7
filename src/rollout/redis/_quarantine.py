"""The quarantine in a Redis store: three keys under the namespace, changed by Lua scripts.

* ``ns:quarantine:held`` — a hash: ``[flag, key]`` (JSON) -> the held register, packed as the
  timestamp (the 45 digits registers use, so strings compare as timestamps do) then
  ``[value text, origin, quarantined_at_ms]`` (JSON);
* ``ns:quarantine:judged`` — a sorted set of judged registers (timestamp digits then the
  ``[flag, key]`` JSON), scored by the order judged: the lowest are forgotten past the bound;
* ``ns:quarantine:seq`` — the counter that orders verdicts.

Each change is one script, so processes sharing the namespace apply the rules of
:class:`rollout._core.quarantined.QuarantineBook` one at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .._core.clock import Timestamp
from .._core.quarantined import Judged, QuarantinedRegister, QuarantineState
from .._core.stored_values import decode_value, encode_value

if TYPE_CHECKING:
    import redis

__all__ = ["RedisQuarantine"]

_WALL, _COUNTER, _NODE = 16, 10, 19  # as the store packs registers
_STAMP = _WALL + _COUNTER + _NODE

_JUDGE = f"""
local P = {_STAMP}
local held, judged, seq = KEYS[1], KEYS[2], KEYS[3]
local kept = tonumber(ARGV[2])
local function judge(member)
  redis.call('ZADD', judged, redis.call('INCR', seq), member)
  local extra = redis.call('ZCARD', judged) - kept
  if extra > 0 then redis.call('ZPOPMIN', judged, extra) end
end
"""

# ARGV: limit, verdicts kept, then field/packed pairs.
_HOLD = (
    _JUDGE
    + """
local limit = tonumber(ARGV[1])
local count = redis.call('HLEN', held)
for i = 3, #ARGV, 2 do
  local field, packed = ARGV[i], ARGV[i + 1]
  local stamp = string.sub(packed, 1, P)
  if not redis.call('ZSCORE', judged, stamp .. field) then
    local current = redis.call('HGET', held, field)
    local put = true
    if current then
      local old = string.sub(current, 1, P)
      if stamp <= old then
        if stamp < old then judge(stamp .. field) end
        put = false
      else
        judge(old .. field)
      end
    elseif count >= limit then
      put = false
    else
      count = count + 1
    end
    if put then redis.call('HSET', held, field, packed) end
  end
end
return 0
"""
)

# ARGV: unused, verdicts kept, then field/stamp pairs: a compare-and-delete, then judged.
_RELEASE = (
    _JUDGE
    + """
for i = 3, #ARGV, 2 do
  local field, stamp = ARGV[i], ARGV[i + 1]
  local current = redis.call('HGET', held, field)
  if current and string.sub(current, 1, P) == stamp then redis.call('HDEL', held, field) end
  judge(stamp .. field)
end
return 0
"""
)

_READ = """
return {redis.call('HGETALL', KEYS[1]), redis.call('ZRANGE', KEYS[2], 0, -1)}
"""


class RedisQuarantine:
    """The quarantine's keys of one namespace. The store wraps each call for its errors."""

    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self.keys = [
            f"{namespace}:quarantine:held",
            f"{namespace}:quarantine:judged",
            f"{namespace}:quarantine:seq",
        ]
        self._hold = client.register_script(_HOLD)
        self._release = client.register_script(_RELEASE)
        self._read = client.register_script(_READ)

    def hold(self, entries: Sequence[QuarantinedRegister], limit: int, kept: int) -> None:
        args: list[Any] = [limit, kept]
        for entry in entries:
            payload = [encode_value(entry.key, entry.value), entry.origin, entry.quarantined_at_ms]
            args += [_field(entry.flag, entry.key), _stamp(entry.timestamp) + _json(payload)]
        if len(args) > 2:
            self._hold(keys=self.keys, args=args)

    def release(self, registers: Iterable[Judged], kept: int) -> None:
        args: list[Any] = [0, kept]
        for flag, key, ts in registers:
            args += [_field(flag, key), _stamp(ts)]
        if len(args) > 2:
            self._release(keys=self.keys, args=args)

    def read(self) -> QuarantineState:
        flat, members = self._read(keys=self.keys[:2])
        held = []
        for i in range(0, len(flat), 2):
            flag, key = json.loads(_text(flat[i]))
            packed = _text(flat[i + 1])
            text, origin, at = json.loads(packed[_STAMP:])
            held.append(
                QuarantinedRegister(
                    flag, key, decode_value(key, text), _unstamp(packed), origin, int(at)
                )
            )
        judged: list[Judged] = []
        for member in members:
            packed = _text(member)
            flag, key = json.loads(packed[_STAMP:])
            judged.append((flag, key, _unstamp(packed)))
        held.sort(key=lambda e: (e.flag, e.key))
        return QuarantineState(held, judged)


def _field(flag: str, key: str) -> str:
    return _json([flag, key])


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def _stamp(ts: Timestamp) -> str:
    wall, counter, node = ts
    return f"{wall:0{_WALL}d}{counter:0{_COUNTER}d}{node:0{_NODE}d}"


def _unstamp(packed: str) -> Timestamp:
    return Timestamp(
        int(packed[:_WALL]),
        int(packed[_WALL : _WALL + _COUNTER]),
        int(packed[_WALL + _COUNTER : _STAMP]),
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
