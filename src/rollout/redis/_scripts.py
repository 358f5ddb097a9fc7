"""The Lua scripts of the Redis store (rollout.redis._store): a save, a merge's chunk, a discard.

The watermark rules in them are generated from rollout._core.keys, as for the replica and the
SQLite store: all three must drop exactly the same registers.
"""

from __future__ import annotations

from string import Template

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
from ._packed import PREFIX

__all__ = ["DISCARD", "MERGE", "MERGE_JOINED"]

# KEYS: index, version, then per flag its hash and its history index (a sorted set of the
# flag's history fields, all at score 0, so in key order = timestamp order: trimming the oldest
# never scans the hash). ARGV: channel, origin, delta JSON, history limit, then per flag: name,
# register count, then key/packed pairs. The $names are filled in from rollout._core.keys, as
# for the replica and the SQLite store: all three must drop exactly the same registers.
_TEMPLATE = Template("""
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
$flag_start
  for r = 1, count do
$read_register
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
  return 0 -- no version of its own (the writer must not take the current one for its own)
end
local version = redis.call('INCR', version_key)
redis.call('PUBLISH', channel, version .. ' ' .. origin .. ' ' .. delta_json)
return version
""").safe_substitute(
    prefix=PREFIX,
    is_data=lua_is_data("field"),
    is_targeting=lua_is_targeting("field"),
    is_definition=lua_is_definition("field"),
    is_history=lua_is_history("field"),
    reset=lua_literal(RESET),
    data_reset=lua_literal(DATA_RESET),
    definition_reset=lua_literal(DEFINITION_RESET),
)
#: A save: per flag, its registers as key/packed pairs of ARGV.
MERGE = Template(_TEMPLATE).substitute(
    flag_start="",
    read_register="""
    local field, packed = ARGV[arg], ARGV[arg + 1]
    arg = arg + 2""",
)
#: A merge's chunk (rollout.redis._chunks): per flag, one ARGV of its keys and packed registers
#: joined by NUL (two million arguments cost redis-py and Redis more than the registers).
MERGE_JOINED = Template(_TEMPLATE).substitute(
    flag_start="""
  local joined, pos = ARGV[arg], 1
  arg = arg + 1""",
    read_register="""
    local cut = string.find(joined, '\\0', pos, true)
    local field = string.sub(joined, pos, cut - 1)
    local stop = string.find(joined, '\\0', cut + 1, true) or #joined + 1
    local packed = string.sub(joined, cut + 1, stop - 1)
    pos = stop + 1""",
)

# A compare-and-delete of registers, atomically. KEYS: per flag its hash and history index.
# ARGV: per flag a register count, then field/stamp pairs (the packed timestamp, no value). Not
# published and no version bump: no replica holds these (they were refused as from the future).
DISCARD = Template("""
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
