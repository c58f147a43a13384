-- The functions of wrap-up, proficiency levels, explanations, steps and offers.

--[[ Wrap-up's functions (see "Wrap-up" in 03_agent_states.lua for the state itself). ]]

--[[ acd_wrap_up_set
KEYS[1] center meta hash
ARGV[1] the center's wrap-up time in ms (0: none, an agent is available when its contact
ends). Wrap-ups under way keep the end they started with. Returns the previous ms. ]]
local function wrap_up_set(keys, args)
  local tag = tag_of(keys[1])
  local ms = tonumber(args[1])
  if not ms or ms < 0 or ms ~= math.floor(ms) then
    fail('INVALID wrap-up ms ' .. tostring(args[1]) .. ': a whole number, 0 or more')
  end
  refuse_if_deleting(tag)
  local before = tonumber(redis.call('HGET', keys[1], 'wrap_up_ms') or 0)
  if before ~= ms then
    if ms == 0 then
      redis.call('HDEL', keys[1], 'wrap_up_ms')
    else
      redis.call('HSET', keys[1], 'wrap_up_ms', string.format('%d', ms))
    end
    event(tag, 'wrap_up_option', 'ms', string.format('%d', ms))
  end
  return before
end

--[[ acd_wrap_up_end
KEYS[1] agent document
ARGV[1] id
Ends the agent's wrap-up now: it becomes available (since now), or unavailable if it asked
for that meanwhile. Fails with STATE when the agent is not in wrap-up (its timer may have
ended it just before). Returns the stored agent JSON. ]]
local function wrap_up_end(keys, args)
  local tag = tag_of(keys[1])
  local agent = load_agent(tag, args[1])
  if agent.state ~= 'wrap_up' then
    fail('STATE agent ' .. args[1] .. ' is ' .. tostring(agent.state) .. ', not in wrap-up')
  end
  if finish_wrap_up(tag, args[1], agent, now_ms(), 'ended') == 'available' then
    wake(tag, 'agent')
  end
  return redis.call('JSON.GET', keys[1], '.')
end

--[[ acd_wrap_up_release
KEYS[1] center meta hash
Ends the wrap-ups that are due, as every dispatch round does first (at most
WRAP_UP_RELEASES): for the reconciler, which must not assign. Returns {wrap-ups ended,
ms until the next end (0: more are due) or -1 when none is pending}. ]]
local function wrap_up_release(keys, args)
  local tag = tag_of(keys[1])
  local ended, wrap_in = release_wrap_ups(tag,
    tonumber(redis.call('HGET', keys[1], 'wrap_up_due')))
  if ended > 0 then wake(tag, 'agent') end
  return {ended, wrap_in or -1}
end

register('acd_wrap_up_set', wrap_up_set)
register('acd_wrap_up_end', wrap_up_end, true)
register('acd_wrap_up_release', wrap_up_release, true)

--[[ acd_agent_level (see "Proficiency")
KEYS[1] agent document
ARGV[1] id  ARGV[2] skill  ARGV[3] level, an integer 1..5
Sets the agent's level of a skill it has (NOTFOUND otherwise). Available, it moves to the
avail_at sets of its new level at once, keeping its place (available_since), and the
combinations it now qualifies for are made ready; busy or in wrap-up, the level applies
from its next availability. Level 1 removes the entry (the level of merely having the
skill). Returns the stored agent JSON. ]]
local function agent_level(keys, args)
  local tag = tag_of(keys[1])
  local id, skill, level = args[1], args[2], tonumber(args[3])
  if not level or level ~= math.floor(level) or level < 1 or level > MAX_LEVEL then
    fail('INVALID level ' .. tostring(args[3]) .. ': a whole number from 1 to ' .. MAX_LEVEL)
  end
  refuse_if_deleting(tag)
  local agent = load_agent(tag, id)
  local found = false
  for _, s in ipairs(agent.skills) do if s == skill then found = true end end
  if not found then fail('NOTFOUND skill ' .. skill .. ' of agent ' .. id) end
  refuse_skills_being_deleted(tag, {skill})
  local before = level_of(agent.levels, skill)
  if before == level then return redis.call('JSON.GET', keys[1], '.') end
  if level > 1 then redis.call('HSET', tag .. ':meta', 'proficiency', '1') end
  redis.call('JSON.MERGE', keys[1], '.', cjson.encode({levels = {[skill] = level > 1 and level
    or cjson.null}}))
  if agent.state == 'available' then
    levels_remove(tag, id, {[skill] = before})
    levels_add(tag, id, {[skill] = level}, agent.available_since)
    local levels = type(agent.levels) == 'table' and agent.levels or {}
    levels[skill] = level > 1 and level or nil
    wake_parked(tag, agent.skills, levels)
    wake(tag, 'level')
  end
  event(tag, 'agent_level', 'agent', id, 'skill', skill, 'level', tostring(level))
  return redis.call('JSON.GET', keys[1], '.')
end

register('acd_agent_level', agent_level)
--[[ acd_explain
KEYS[1] center meta hash
ARGV[1] '1': dispatch rounds record each assignment's explanation from now on (see
"Explanations"); '0' (the default): they do not. Returns the previous value ('1' | '0'). ]]
local function explain_set(keys, args)
  if args[1] ~= '1' and args[1] ~= '0' then
    fail('INVALID explain ' .. tostring(args[1]) .. ": '1' or '0'")
  end
  refuse_if_deleting(tag_of(keys[1]))
  local before = redis.call('HGET', keys[1], 'explain') == '1' and '1' or '0'
  if before ~= args[1] then
    if args[1] == '1' then redis.call('HSET', keys[1], 'explain', '1')
    else redis.call('HDEL', keys[1], 'explain') end
    event(tag_of(keys[1]), 'explain_option', 'explain', args[1])
  end
  return before
end

register('acd_explain', explain_set)

--[[ Steps by waiting time's functions (see "Steps by waiting time", 04_steps.lua). ]]

--[[ acd_steps_default
KEYS[1] center meta hash
ARGV[1] combination 'a,b' (sorted)  ARGV[2] its default steps, a JSON array as stored
('[]': none)
The steps a contact queued from now on with that combination and no steps of its own
gets; contacts waiting keep theirs. Returns the previous JSON ('' when none). ]]
local function steps_default(keys, args)
  local tag, sig = tag_of(keys[1]), args[1]
  refuse_if_deleting(tag)
  local ok, steps = pcall(cjson.decode, args[2])
  if not ok then fail('INVALID steps: not a JSON array') end
  check_steps(steps)
  local before = redis.call('HGET', tag .. ':steps', sig) or ''
  if #steps == 0 then
    redis.call('HDEL', tag .. ':steps', sig)
  else
    redis.call('HSET', tag .. ':steps', sig, args[2])
  end
  local count = redis.call('HLEN', tag .. ':steps')
  if count > 0 then
    redis.call('HSET', keys[1], 'step_defaults', count)
  else
    redis.call('HDEL', keys[1], 'step_defaults')
  end
  if before ~= (#steps == 0 and '' or args[2]) then
    event(tag, 'steps_default', 'skills', sig)
  end
  return before
end

--[[ acd_steps_release
KEYS[1] center meta hash
Takes the steps that are due, as every dispatch round does first (at most
STEP_RELEASES): for the reconciler, which must not assign. Also repairs meta 'step_due'
from the due set's first entry. Returns {steps taken, ms until the next is due (0: more
are due) or -1 when none is pending}. ]]
local function steps_release(keys, args)
  local tag = tag_of(keys[1])
  local first = redis.call('ZRANGE', k_steps_due(tag), 0, 0, 'WITHSCORES')
  if #first == 0 then
    redis.call('HDEL', keys[1], 'step_due')
    return {0, -1}
  end
  redis.call('HSET', keys[1], 'step_due', first[2])  -- the set's first entry is the truth
  local taken, step_in = release_steps(tag, tonumber(first[2]))
  if taken > 0 then wake(tag, 'step') end
  return {taken, step_in or -1}
end

register('acd_steps_default', steps_default)
register('acd_steps_release', steps_release, true)
--[[ Offers' functions (see "Offers" in 05_offers.lua for the states and timers). ]]

--[[ acd_offers_set
KEYS[1] center meta hash
ARGV[1] offer timeout in ms (0: offers off, rounds assign)  ARGV[2] missed offers in a
row that put an agent on a break (0: never)  ARGV[3] ms an agent is not offered a contact
again after missing it (0: may be at once)
Offers under way keep their deadline. Returns the previous {timeout, misses, backoff}. ]]
local function offers_set(keys, args)
  local tag = tag_of(keys[1])
  local wanted = {}
  for i, name in ipairs({'offer timeout ms', 'max missed offers', 'offer backoff ms'}) do
    local n = tonumber(args[i])
    if not n or n < 0 or n ~= math.floor(n) then
      fail('INVALID ' .. name .. ' ' .. tostring(args[i]) .. ': a whole number, 0 or more')
    end
    wanted[i] = n
  end
  refuse_if_deleting(tag)
  local fields = {'offer_ms', 'offer_misses', 'offer_backoff_ms'}
  local before = redis.call('HMGET', keys[1], unpack(fields))
  local changed = false
  for i, field in ipairs(fields) do
    before[i] = tonumber(before[i] or 0)
    if before[i] ~= wanted[i] then
      changed = true
      if wanted[i] == 0 then
        redis.call('HDEL', keys[1], field)
      else
        redis.call('HSET', keys[1], field, string.format('%d', wanted[i]))
      end
    end
  end
  if changed then
    event(tag, 'offers_option', 'timeout_ms', string.format('%d', wanted[1]), 'max_misses',
      string.format('%d', wanted[2]), 'backoff_ms', string.format('%d', wanted[3]))
    wake(tag, 'mode')
  end
  return before
end

--[[ acd_offer_answer
KEYS[1] agent document
ARGV[1] agent id  ARGV[2] 'accept' | 'reject'  ARGV[3] the contact offered ('': whichever)
accept: the offer becomes an assignment: agent busy, contact assigned (contact_assigned,
  as a round's, after offer_accepted), its wait counted until now.
reject: a missed offer (see "Offers"): the contact back to its place, the agent available
  (or on a break after too many misses in a row).
Fails with STATE when the agent has no such offer (it timed out, or was answered, just
before). Returns the stored agent JSON. ]]
local function offer_answer(keys, args)
  local tag = tag_of(keys[1])
  local aid, answer, expected = args[1], args[2], args[3]
  if answer ~= 'accept' and answer ~= 'reject' then
    fail('INVALID offer answer ' .. tostring(answer) .. ': accept or reject')
  end
  local agent = load_agent(tag, aid)
  local cid = agent.contact
  if agent.state ~= 'offered' or (expected ~= '' and cid ~= expected) then
    fail('STATE agent ' .. aid .. ' has no offer' .. (expected ~= '' and ' of contact '
      .. expected or '') .. ' (it is ' .. tostring(agent.state) .. '): an offer ends when '
      .. 'answered or at its deadline')
  end
  local contact = offer_of(tag, cid, aid)
  if not contact then fail('STATE the offer of contact ' .. tostring(cid) .. ' is over') end
  local now = now_ms()
  if answer == 'reject' then
    miss_offer(tag, cid, contact, aid, agent, 'rejected', now)
    return redis.call('JSON.GET', keys[1], '.')
  end
  redis.call('ZREM', k_offers(tag), 'o|' .. cid)
  local at = string.format('%d', now)
  redis.call('JSON.MERGE', keys[1], '.', '{"state":"busy","offer_until":null,'
    .. '"missed_offers":null,"last_assigned_at":' .. at .. '}')
  redis.call('JSON.MERGE', k_contact(tag, cid), '.', '{"state":"assigned","offer_until":null,'
    .. '"queue_score":null,"assigned_at":' .. at .. '}')
  local wait = math.max(0, now - math.floor(tonumber(contact.queue_score or contact.queued_at)))
  redis.call('HINCRBY', tag .. ':stats', 'assigned', 1)
  redis.call('HINCRBY', tag .. ':stats', 'wait_ms', wait)
  event(tag, 'offer_accepted', 'contact', cid, 'agent', aid)
  event(tag, 'contact_assigned', 'contact', cid, 'agent', aid, 'wait_ms', wait)
  return redis.call('JSON.GET', keys[1], '.')
end

--[[ acd_offer_release
KEYS[1] center meta hash
Expires the offers and ends the exclusions that are due, as every dispatch round does
first (at most OFFER_EXPIRIES): for the reconciler, which must not assign. Returns {how
many, ms until the next (0: more are due) or -1 when none is pending}. ]]
local function offer_release(keys, args)
  local done, next_in = expire_offers(tag_of(keys[1]),
    tonumber(redis.call('HGET', keys[1], 'offer_due')))
  return {done, next_in or -1}
end

register('acd_offers_set', offers_set)
register('acd_offer_answer', offer_answer, true)
register('acd_offer_release', offer_release, true)
