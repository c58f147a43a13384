#!lua name=acd
--[[
The ACD's atomic operations, loaded once with FUNCTION LOAD (functions are part of the
dataset: persisted in AOF/RDB and replicated, so they survive restarts and failover).

Every function receives, as KEYS, the keys of the center it starts from; all keys of a
center share the hash tag {acd:<center>} (see acd/keys.py), so the keys a function derives
below (skill sets, agent documents) are in the same slot as the keys it declares.

A function either fails before it writes anything or completes all its writes: errors
are checked first. Error replies start with a code the Python side maps to exceptions:
  NOTFOUND <what>   EXISTS <what>   STATE <why>   INVALID <what>   LIMIT <what>
Times are the server's clock in ms, so clients' clocks never matter.

The library is the files of acd/lua/ joined in name order (acd/functions.py): one Lua
chunk, so a file uses what the files before it define (locals are lexical) and never
what comes after; each file holds one concept and registers its own functions.

Every call is short: Redis runs one call at a time, so a call that walks a whole center
(5,000 agents x 32 skills took 0.4 s in one call) makes every other client of every center
wait that long. What changes many agents or contacts (open/close, skill delete, center
delete) is a bulk operation of many calls, each changing at most a batch of them and each
whole for every agent or contact it touches: see "Bulk operations" (06_agents.lua).

When Redis is full (maxmemory reached under the noeviction policy), Redis itself refuses
a function that may add data before it runs (error OOM): nothing is half-written. The
functions registered with the allow-oom flag only end work or free memory (ending a
contact, a dispatch round, deleting an agent, a skill or a center), so a full center can
still drain: their growth is an event in a capped stream and a few bytes per change.
]]

local EVENTS_MAXLEN = 10000
local WAKE_MAXLEN = 100

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Raised as a table so the reply is '-NOTFOUND ...' rather than a Lua traceback.
local function fail(message)
  error({err = message})
end

local function tag_of(key)
  return string.match(key, '^({[^}]*})')
end

local function k_agent(tag, id) return tag .. ':agent:' .. id end
local function k_contact(tag, id) return tag .. ':contact:' .. id end
local function k_avail(tag, skill) return tag .. ':avail:' .. skill end
local function k_skill(tag, skill) return tag .. ':skill:' .. skill end
local function k_combo(tag, sig) return tag .. ':combo:' .. sig end
local function k_parked(tag, skill) return tag .. ':parked:' .. skill end


local UNPARK_UNITS = 512
local unpark_units = UNPARK_UNITS  -- what is left for this call; register() resets it

-- allow-oom: these only end work or free memory, so a full Redis can still drain (see
-- the header); every other function is refused with OOM before it runs when Redis is full.
local function register(name, fn, may_run_when_full)
  local call = function(keys, args)
    unpark_units = UNPARK_UNITS  -- a budget per call, not per library load
    return fn(keys, args)
  end
  if may_run_when_full then
    redis.register_function{function_name = name, callback = call, flags = {'allow-oom'}}
  else
    redis.register_function(name, call)
  end
end

--[[ Due timers: wrap-up ends (03), steps by waiting time (04), offer deadlines and
exclusions (05) each keep a zset of members scored by the ms they are due and a field of
the center's meta that is never later than the zset's first score ('wrap_up_due',
'step_due', 'offer_due'), so a round with nothing due pays for reading that field only.
release_due handles what is due by the server's clock, earliest first (Redis orders equal
scores by member), and at most 'most' per call: a call stays short however many fell due
at once (the reply's 0 ms says more are due, and the next call takes them). Then it sets
the field to the new first score (removing it when the zset is empty), so it is never
later than that score: one only needs to move it earlier when adding a sooner member.
due: the meta field as a number (nil: nothing pending). handle(member, score, now) does
one member's work (and takes it out of the zset, or moves it later) and returns whether it counts.
Returns how many counted and the ms until the next is due (0: more due now; nil: none). ]]
local function release_due(tag, key, field, due, most, handle)
  if not due then return 0, nil end
  local now = now_ms()
  if now < due then return 0, due - now end
  local done = 0
  local rows = redis.call('ZRANGE', key, '-inf', now, 'BYSCORE', 'LIMIT', 0, most, 'WITHSCORES')
  for i = 1, #rows, 2 do
    if handle(rows[i], tonumber(rows[i + 1]), now) then done = done + 1 end
  end
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if #first == 0 then
    redis.call('HDEL', tag .. ':meta', field)
    return done, nil
  end
  redis.call('HSET', tag .. ':meta', field, first[2])
  return done, math.max(0, tonumber(first[2]) - now)
end
