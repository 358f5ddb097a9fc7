"""The Lua scripts of the Redis store (rollout.redis._store): a save, a merge's chunk, a discard.

The watermark rules in them are generated from rollout._core.keys, as for the replica and the
SQLite store: all three must drop exactly the same registers.
"""

from __future__ import annotations

from string import Template

from .._core.keys import (
    DATA_RESET,
    DEFINITION_RESET,
    HISTORY,
    RESET,
    lua_is_data,
    lua_is_definition,
    lua_is_history,
    lua_is_targeting,
    lua_literal,
)
from ._packed import PREFIX

__all__ = ["COLLECT", "DISCARD", "MERGE", "STEP"]

#: Registers a script looks at for hidden ones in one go: a hash of at most this many is
#: collected inside the save's script, a bigger one by COLLECT, this many per call.
STEP = 1000

# Whether a register (its field and packed stamp) is hidden by the watermarks given (each a
# packed stamp, or nil), the rule of rollout._core.keys.
_HIDDEN = Template("""
local function hidden(field, stamp, reset, data_reset, definition_reset)
  if $is_data then
    return data_reset and stamp < data_reset
  end
  if definition_reset and stamp < definition_reset and $is_definition then
    return true
  end
  return reset and stamp < reset and $is_targeting
end
""").substitute(
    is_data=lua_is_data("field"),
    is_targeting=lua_is_targeting("field"),
    is_definition=lua_is_definition("field"),
)

# KEYS: index, version, then per flag its hash and its history index (a sorted set of the
# flag's history fields, all at score 0, so in key order = timestamp order: trimming the oldest
# never scans the hash). ARGV: channel, origin, delta JSON, history limit, then per flag: name,
# register count, then key/packed pairs. The $names are filled in from rollout._core.keys, as
# for the replica and the SQLite store: all three must drop exactly the same registers.
MERGE = Template("""
local index, version_key = KEYS[1], KEYS[2]
local channel, origin, delta_json = ARGV[1], ARGV[2], ARGV[3]
local limit = tonumber(ARGV[4])
local P = $prefix
local BATCH = 1000 -- fields per HMGET, winners per HSET (unpack's limit is ~8000)
local STEP = $step
$hidden
local changed = 0
local uncollected = {} -- the hashes whose hidden registers are left to the writer's COLLECT
local arg = 5
for f = 3, #KEYS, 2 do
  local hash, events, name, count = KEYS[f], KEYS[f + 1], ARGV[arg], tonumber(ARGV[arg + 1])
  local added_events = false
  arg = arg + 2
  local reset, data_reset, definition_reset
  local moved = false
  -- The flag's registers are ARGV[base], ARGV[base + 1], ... as field/packed pairs. Their
  -- stored ones are read BATCH at a time (HMGET) and the winners written BATCH at a time
  -- (HSET): a redis.call per register, twice over, was most of a merge's time in Redis. A
  -- flag's fields are distinct, so HMGET reads what one HGET per register would have read,
  -- and the writes are done before anything below reads the hash again. The first HMGET
  -- also reads the watermarks (three HGETs of their own were a sixth of a write's calls).
  local base = arg
  arg = arg + 2 * count
  -- Whether any watermark is held: with none, nothing is hidden (hidden() is false).
  local marked
  for first = 1, count, BATCH do
    local last = math.min(first + BATCH - 1, count)
    local fields = {}
    local at = 0 -- olds[at + i] is the stored register of fields[i]
    for r = first, last do fields[r - first + 1] = ARGV[base + 2 * r - 2] end
    local olds
    if first == 1 then
      at = 3
      olds = redis.call('HMGET', hash, $reset, $data_reset, $definition_reset, unpack(fields))
      reset = olds[1] and string.sub(olds[1], 1, P) or nil
      data_reset = olds[2] and string.sub(olds[2], 1, P) or nil
      definition_reset = olds[3] and string.sub(olds[3], 1, P) or nil
      marked = reset or data_reset or definition_reset
    else
      olds = redis.call('HMGET', hash, unpack(fields))
    end
    local lost = {}
    local losers = 0
    for r = first, last do
      local field, packed = fields[r - first + 1], ARGV[base + 2 * r - 1]
      local old = olds[at + r - first + 1]
      local won = not old or packed > old
      if won and (marked or field == $reset or field == $data_reset
                  or field == $definition_reset) then
        local stamp = string.sub(packed, 1, P)
        if hidden(field, stamp, reset, data_reset, definition_reset) then
          won = false
        else
          if field == $reset then reset = stamp; moved = true end
          if field == $data_reset then data_reset = stamp; moved = true end
          if field == $definition_reset then definition_reset = stamp; moved = true end
          marked = reset or data_reset or definition_reset
        end
      end
      if won then
        changed = changed + 1
        if string.byte(field, 1) == $history_byte and $is_history then
          redis.call('ZADD', events, 0, field)
          added_events = true
        end
      else
        lost[r] = true
        losers = losers + 1
      end
    end
    if losers == 0 then -- every one won (a merge into an empty store): the pairs as they came
      redis.call('HSET', hash, unpack(ARGV, base + 2 * first - 2, base + 2 * last - 1))
    elseif losers <= last - first then
      local writes = {}
      for r = first, last do
        if not lost[r] then
          writes[#writes + 1] = fields[r - first + 1]
          writes[#writes + 1] = ARGV[base + 2 * r - 1]
        end
      end
      redis.call('HSET', hash, unpack(writes))
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
    -- The registers the watermark now hides go: at once in a small hash; a big one (a million
    -- users: seconds of HDELs, every other client of Redis answered BUSY meanwhile) is named
    -- in the reply, and the writer collects it in steps of COLLECT (rollout.redis._collect).
    if redis.call('HLEN', hash) <= STEP then
      local all = redis.call('HGETALL', hash)
      for i = 1, #all, 2 do
        if hidden(all[i], string.sub(all[i + 1], 1, P), reset, data_reset, definition_reset) then
          redis.call('HDEL', hash, all[i])
        end
      end
    else
      uncollected[#uncollected + 1] = hash
    end
  end
  redis.call('SADD', index, name)
end
if changed == 0 then
  return 0 -- no version of its own (the writer must not take the current one for its own)
end
local version = redis.call('INCR', version_key)
redis.call('PUBLISH', channel, version .. ' ' .. origin .. ' ' .. delta_json)
if #uncollected > 0 then return {version, unpack(uncollected)} end
return version
""").substitute(
    prefix=PREFIX,
    step=STEP,
    hidden=_HIDDEN,
    is_history=lua_is_history("field"),
    reset=lua_literal(RESET),
    data_reset=lua_literal(DATA_RESET),
    definition_reset=lua_literal(DEFINITION_RESET),
    history_byte=ord(HISTORY[0]),
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

# One step of collecting a big hash's hidden registers (rollout.redis._collect). KEYS: the
# flag's hash. ARGV: an HSCAN cursor ('0' to start). Returns the next one ('0': done). The
# watermarks and each register are read here, in the step's own script: a register written
# since the save that moved a watermark is not hidden and stays; one a newer reset hides goes
# too. No history event is ever hidden, so the history index never names a field removed here.
COLLECT = Template("""
local hash = KEYS[1]
local P = $prefix
$hidden
local function watermark(field)
  local held = redis.call('HGET', hash, field)
  return held and string.sub(held, 1, P) or nil
end
local reset = watermark($reset)
local data_reset = watermark($data_reset)
local definition_reset = watermark($definition_reset)
local page = redis.call('HSCAN', hash, ARGV[1], 'COUNT', $step)
local items = page[2]
for i = 1, #items, 2 do
  if hidden(items[i], string.sub(items[i + 1], 1, P), reset, data_reset, definition_reset) then
    redis.call('HDEL', hash, items[i])
  end
end
return page[1]
""").substitute(
    prefix=PREFIX,
    step=STEP,
    hidden=_HIDDEN,
    reset=lua_literal(RESET),
    data_reset=lua_literal(DATA_RESET),
    definition_reset=lua_literal(DEFINITION_RESET),
)
