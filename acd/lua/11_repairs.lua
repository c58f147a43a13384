--[[ Repairs (acd/reconcile.py).
A function call is atomic, and Redis logs it to the AOF as one MULTI/EXEC that a restart
replays whole or, cut short by a crash, not at all; except that Redis 8.2 leaves an AOF
torn inside a command of a MULTI open, and the restart after next applies that half call
(README, Reliability). These repair that, and what other writers leave: commands sent
around the functions (a lesson's textbook dispatcher, a hand edit, a restore of some
keys). Each repairs one contact, agent or combination, re-reading
it inside the call: a dispatch round running meanwhile either happened before (and the
repair sees its result) or after (and sees the repaired state), never in between.
Each returns a list of what it changed ({} when nothing was wrong): the reconciler counts
them. Contacts' and agents' documents are the truth; sets and the index follow them. ]]

-- A combination's count is its FIFO's size (the index's total follows by the
-- difference); while someone waits in it, it is ready (at its head's score) or parked,
-- exactly one, and parked only if no available agent has all its skills; else neither.
local function fix_combo(tag, sig, changed)
  local n = redis.call('ZCARD', k_combo(tag, sig))
  local counted = tonumber(redis.call('HGET', tag .. ':sigs', sig) or 0)
  if n ~= counted then
    redis.call('HINCRBY', tag .. ':meta', 'indexed', n - counted)
    if n > 0 then redis.call('HSET', tag .. ':sigs', sig, n) else redis.call('HDEL', tag .. ':sigs', sig) end
    changed[#changed + 1] = 'count'
  end
  local ready = redis.call('ZSCORE', tag .. ':ready', sig)
  local filed = redis.call('HGET', tag .. ':parked_on', sig)
  if n == 0 then
    if ready or filed then
      redis.call('ZREM', tag .. ':ready', sig)
      unpark(tag, sig)
      changed[#changed + 1] = 'emptied'
    end
    return changed
  end
  local head = head_score(tag, sig)
  if ready and not filed and tonumber(ready) == tonumber(head) then return changed end
  local servable = longest_available(tag, needs_of(sig), {}) ~= nil
  local shelved = filed and redis.call('SISMEMBER', k_parked(tag, filed), sig) == 1
  if shelved and not ready and not servable then return changed end
  redis.call('ZREM', tag .. ':ready', sig)
  unpark(tag, sig)
  if servable or ready and not filed then
    redis.call('ZADD', tag .. ':ready', head, sig)
    wake(tag, 'repair')
    changed[#changed + 1] = 'ready'
  else
    park(tag, sig)
    changed[#changed + 1] = 'parked'
  end
  return changed
end

-- The contact leaves the queue (unless queue is nil) and these combinations' FIFOs.
local function drop_from_index(tag, queue, cid, sigs)
  local changed = {}
  if queue and redis.call('ZREM', queue, cid) == 1 then changed[#changed + 1] = 'left_queue' end
  for _, sig in ipairs(sigs) do
    if redis.call('ZREM', k_combo(tag, sig), cid) == 1 then
      changed[#changed + 1] = 'left_index'
      fix_combo(tag, sig, changed)
    end
  end
  return changed
end

-- The contact in the queue at queue score (its place) and in its combination at its
-- virtual arrival (that score minus its head start).
local function requeue_at(tag, queue, cid, sig, score, head_start, changed)
  if not redis.call('ZSCORE', queue, cid) then
    redis.call('ZADD', queue, score, cid)
    changed[#changed + 1] = 'queued'
  end
  local virtual = virtual_score(score, head_start)
  local at = redis.call('ZSCORE', k_combo(tag, sig), cid)
  if not at or tonumber(at) ~= tonumber(virtual) then
    redis.call('ZADD', k_combo(tag, sig), virtual, cid)
    changed[#changed + 1] = 'indexed'
  end
  fix_combo(tag, sig, changed)
  return changed
end

--[[ acd_repair_contact
KEYS[1] contact document  KEYS[2] queue
ARGV[1] id  ARGV[2...] combinations whose FIFO may hold it (where the reconciler saw it)
A queued contact is in the queue at its queue score (else its queued_at) and in its
combination's FIFO at that score minus its head start; any other contact is in neither. An assigned contact whose
agent is not busy with it (the agent's side was lost or rewritten) goes back to the queue
at its place: its caller still waits. ]]
local function repair_contact(keys, args)
  local tag, cid = tag_of(keys[1]), args[1]
  local hinted = {}
  for i = 2, #args do hinted[#hinted + 1] = args[i] end
  local contact = json_get(keys[1], '.')
  if not contact then return drop_from_index(tag, keys[2], cid, hinted) end
  local sig = contact_sig(contact)
  local others = {}
  for _, s in ipairs(hinted) do if s ~= sig then others[#others + 1] = s end end
  if contact.state == 'assigned' then
    local named = type(contact.agent) == 'string' and contact.agent
    local agent = named and json_get(k_agent(tag, named), '.')
    if agent and agent.state == 'busy' and agent.contact == cid then
      hinted[#hinted + 1] = sig
      return drop_from_index(tag, keys[2], cid, hinted)
    end
    redis.call('JSON.MSET', keys[1], '.state', '"queued"', keys[1], '.agent', 'null',
      keys[1], '.assigned_at', 'null', keys[1], '.explanation', 'null')
    event(tag, 'contact_requeued', 'contact', cid, 'reason', 'agent_lost')
    contact.state = 'queued'
  end
  if contact.state == 'offered' then
    local named = type(contact.agent) == 'string' and contact.agent
    local agent = named and json_get(k_agent(tag, named), '.')
    if agent and agent.state == 'offered' and agent.contact == cid then
      hinted[#hinted + 1] = sig
      local changed = drop_from_index(tag, keys[2], cid, hinted)
      if not redis.call('ZSCORE', k_offers(tag), 'o|' .. cid) then
        offer_timer(tag, 'o|' .. cid, tonumber(contact.offer_until) or now_ms())
        changed[#changed + 1] = 'offer_timer'
      end
      return changed
    end
    redis.call('ZREM', k_offers(tag), 'o|' .. cid)
    redis.call('JSON.MERGE', keys[1], '.', '{"state":"queued","agent":null,'
      .. '"offer_until":null,"queue_score":null,"explanation":null}')
    event(tag, 'contact_requeued', 'contact', cid, 'reason', 'agent_lost')
    contact.state = 'queued'
  end
  if contact.state ~= 'queued' then
    hinted[#hinted + 1] = sig
    return drop_from_index(tag, keys[2], cid, hinted)
  end
  local head_start = tonumber(contact.head_start_ms) or 0
  local score = redis.call('ZSCORE', keys[2], cid)
  if not score and contact.queue_score then  -- an offer's, kept in its document
    score = string.format('%.3f', contact.queue_score)
  end
  if not score then
    local indexed = redis.call('ZSCORE', k_combo(tag, sig), cid)
    score = indexed and string.format('%.3f', tonumber(indexed) + head_start)
      or string.format('%.3f', contact.queued_at)
  end
  return fix_step_due(tag, cid, contact, requeue_at(tag, keys[2], cid, sig, score,
    head_start, drop_from_index(tag, nil, cid, others)))
end

-- An agent in wrap-up names no contact and has its entry in the wrap-up set, at its
-- wrap_up_until (or now, when that is lost: it then ends at the next round).
local function repair_wrap_up(tag, id, agent, changed)
  if type(agent.contact) == 'string' then
    redis.call('JSON.MERGE', k_agent(tag, id), '.', '{"contact":null}')
    changed[#changed + 1] = 'cleared_contact'
  end
  local ends = agent.wrap_up_until
  if type(ends) ~= 'number' then
    ends = now_ms()
    redis.call('JSON.MERGE', k_agent(tag, id), '.', '{"wrap_up_until":' .. string.format('%d', ends) .. '}')
  end
  local score = redis.call('ZSCORE', k_wrap_up(tag), id)
  if not score or tonumber(score) ~= ends then
    redis.call('ZADD', k_wrap_up(tag), string.format('%d', ends), id)
    local due = redis.call('HGET', tag .. ':meta', 'wrap_up_due')
    if not due or ends < tonumber(due) then
      redis.call('HSET', tag .. ':meta', 'wrap_up_due', string.format('%d', ends))
    end
    wake(tag, 'repair')
    changed[#changed + 1] = 'wrap_up'
  end
end

--[[ acd_repair_agent
KEYS[1] agent document  KEYS[2] set of the center's agents
ARGV[1] id  ARGV[2...] skills whose availability set may hold it
An agent is in the center's set and each of its skills' sets (skill:<s>); in the
availability set of each of its skills, at available_since, exactly while available; busy
only with a contact that is assigned to it (else that contact was lost or ended: the
agent leaves busy as if it had ended, available or, if it asked, unavailable); not busy,
it names no contact. An id without document leaves every set. ]]
local function repair_agent(keys, args)
  local tag, id = tag_of(keys[1]), args[1]
  local changed = {}
  local agent = json_get(keys[1], '.')
  local has = {}
  for _, skill in ipairs(agent and agent.skills or {}) do has[skill] = true end
  for i = 2, #args do
    if not has[args[i]] then
      if redis.call('ZREM', k_avail(tag, args[i]), id) == 1 then
        changed[#changed + 1] = 'left_avail:' .. args[i]
      end
      redis.call('SREM', k_skill(tag, args[i]), id)
    end
  end
  if (not agent or agent.state ~= 'wrap_up') and redis.call('ZREM', k_wrap_up(tag), id) == 1 then
    changed[#changed + 1] = 'left_wrap_up'
  end
  if not agent then
    if redis.call('SREM', keys[2], id) == 1 then changed[#changed + 1] = 'left_agents' end
    return changed
  end
  if redis.call('SADD', keys[2], id) == 1 then changed[#changed + 1] = 'joined_agents' end
  for _, skill in ipairs(agent.skills) do
    if redis.call('SADD', k_skill(tag, skill), id) == 1 then
      redis.call('SADD', tag .. ':skills', skill)
      changed[#changed + 1] = 'joined_skill:' .. skill
    end
  end
  if agent.state == 'busy' then
    local contact = type(agent.contact) == 'string'
      and json_get(k_contact(tag, agent.contact), '.')
    if not (contact and contact.state == 'assigned' and contact.agent == id) then
      end_contact_of(tag, id, agent, now_ms())
      changed[#changed + 1] = 'released'
      agent = json_get(keys[1], '.')  -- its sets are checked below, in its new state
    end
  elseif agent.state == 'wrap_up' then
    repair_wrap_up(tag, id, agent, changed)
  elseif agent.state == 'offered' then
    local cid = agent.contact
    local contact = type(cid) == 'string' and json_get(k_contact(tag, cid), '.')
    if not (contact and contact.state == 'offered' and contact.agent == id) then
      local after, reason = leave_for(tag, id, agent, now_ms(), ',"offer_until":null')
      event(tag, 'agent_state', with_reason(reason, 'agent', id, 'state', after))
      changed[#changed + 1] = 'released'
      agent = json_get(keys[1], '.')
    elseif not redis.call('ZSCORE', k_offers(tag), 'o|' .. cid) then
      offer_timer(tag, 'o|' .. cid, tonumber(contact.offer_until) or now_ms())
      changed[#changed + 1] = 'offer_timer'
    end
  elseif type(agent.contact) == 'string' or agent.next_state ~= nil or agent.next_reason ~= nil then
    redis.call('JSON.MERGE', keys[1], '.', '{"contact":null,"next_state":null,"next_reason":null}')
    changed[#changed + 1] = 'cleared_contact'
  end
  if agent.reason ~= nil and agent.state ~= 'unavailable' then
    redis.call('JSON.MERGE', keys[1], '.', '{"reason":null}')  -- only a break has one
    changed[#changed + 1] = 'cleared_reason'
  end
  local since = agent.state == 'available' and agent.available_since
  if agent.state == 'available' and type(since) ~= 'number' then
    since = now_ms()
    redis.call('JSON.MERGE', keys[1], '.', '{"available_since":' .. string.format('%d', since) .. '}')
  end
  local joined = false
  for _, skill in ipairs(agent.skills) do
    local score = redis.call('ZSCORE', k_avail(tag, skill), id)
    if since and (not score or tonumber(score) ~= tonumber(since)) then
      redis.call('ZADD', k_avail(tag, skill), since, id)
      changed[#changed + 1] = 'avail:' .. skill
      joined = true
    elseif not since and score then
      redis.call('ZREM', k_avail(tag, skill), id)
      changed[#changed + 1] = 'left_avail:' .. skill
    end
    -- Its avail_at sets too, in a center where levels are in use ("Proficiency").
    if redis.call('HEXISTS', tag .. ':meta', 'proficiency') == 1 then
      for l = 2, MAX_LEVEL do
        local key = k_avail_at(tag, l, skill)
        local at = redis.call('ZSCORE', key, id)
        local belongs = since and level_of(agent.levels, skill) >= l
        if belongs and (not at or tonumber(at) ~= tonumber(since)) then
          redis.call('ZADD', key, since, id)
          changed[#changed + 1] = 'avail_at:' .. l .. ':' .. skill
          joined = true
        elseif not belongs and at then
          redis.call('ZREM', key, id)
          changed[#changed + 1] = 'left_avail_at:' .. l .. ':' .. skill
        end
      end
    end
  end
  if joined then
    wake_parked(tag, agent.skills, agent.levels)
    wake(tag, 'repair')
  end
  return changed
end

--[[ acd_repair_combo
KEYS[1] waiting signatures hash  KEYS[2] center meta hash
ARGV[1] combination 'a,b'. See fix_combo above. ]]
local function repair_combo(keys, args)
  return fix_combo(tag_of(keys[1]), args[1], {})
end

--[[ acd_repair_total
KEYS[1] waiting signatures hash  KEYS[2] center meta hash  KEYS[3] queue
The index's total ('indexed') becomes the sum of its combinations' counts, if that is the
queue's length (else entries are still to repair, or a write is under way: nothing
changes). Reads every combination's count: one call per pass, only when they disagree. ]]
local function repair_total(keys, args)
  local sum = 0
  for _, n in ipairs(redis.call('HVALS', keys[1])) do sum = sum + tonumber(n) end
  local indexed = tonumber(redis.call('HGET', keys[2], 'indexed') or 0)
  if sum ~= redis.call('ZCARD', keys[3]) or sum == indexed then return {} end
  redis.call('HSET', keys[2], 'indexed', sum)
  return {'total'}
end

register('acd_repair_total', repair_total, true)
register('acd_repair_contact', repair_contact, true)
register('acd_repair_agent', repair_agent, true)
register('acd_repair_combo', repair_combo, true)
