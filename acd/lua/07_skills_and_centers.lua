-- Deleting a skill, opening and closing a center, deleting a center: bulk operations
-- in bounded calls (see "Bulk operations", 06_agents.lua).

--[[ acd_skill_delete
KEYS[1] set of skills   KEYS[2] center meta hash
ARGV[1] skill  ARGV[2] 'force' to abandon the waiting contacts that need it, else ''
ARGV[3] seconds to keep an abandoned contact  ARGV[4] batch: most contacts and agents
this call changes
One batch of removing the skill from every agent (see "Bulk operations"). While contacts
wait that need it (nobody could ever serve them), it fails with STATE naming them, unless
forced: then they are abandoned first (contact_abandoned, reason skill_deleted). The
first call marks the skill as being deleted (meta deleting_skill:<skill>); the call that
finds no agent with it and no contact needing it removes it from the skill list, removes
the mark and emits skill_deleted. Returns {agents that lost it in this call, contacts
abandoned in this call, 1 when done else 0}. The first call also fails, changing nothing,
with NOTFOUND for a skill no agent has and no waiting contact needs, and with STATE
naming the agents it would leave without any skill (while it runs, acd_agent_skill keeps
every agent one skill not being deleted, so this stays true to the end). ]]
local function skill_delete(keys, args)
  local tag = tag_of(keys[1])
  refuse_if_deleting(tag)
  local skill, force = args[1], args[2] == 'force'
  local keep, budget = tonumber(args[3]), tonumber(args[4]) or 100
  if budget < 1 then fail('INVALID batch ' .. args[4] .. ': must be at least 1') end
  local needing = {}
  for _, sig in ipairs(redis.call('HKEYS', tag .. ':sigs')) do
    for _, s in ipairs(skills_of(sig)) do
      if s == skill then needing[#needing + 1] = sig break end
    end
  end
  if #needing > 0 and not force then
    local count, named = 0, {}
    for _, sig in ipairs(needing) do
      count = count + tonumber(redis.call('HGET', tag .. ':sigs', sig))
      for _, cid in ipairs(redis.call('ZRANGE', k_combo(tag, sig), 0, 4 - #named)) do
        named[#named + 1] = cid
      end
    end
    fail('STATE skill ' .. skill .. ' is needed by ' .. count .. ' waiting contacts ('
      .. table.concat(named, ', ') .. (count > #named and ', ...' or '')
      .. '): nobody could serve them; delete it with force to abandon them')
  end
  local mark = 'deleting_skill:' .. skill
  local marked, choosing, leveled = unpack(redis.call('HMGET', keys[2], mark,
    'agent_choice_index', 'proficiency'))
  if not marked then
    if #needing == 0 and redis.call('SISMEMBER', keys[1], skill) == 0 then
      fail('NOTFOUND skill ' .. skill)
    end
    local left = agents_left_without_skills(tag, keys[1], keys[2], skill)
    if #left > 0 then
      fail('STATE skill ' .. skill .. ' is the only skill of ' .. #left .. ' agents ('
        .. table.concat(left, ', ', 1, math.min(#left, 5)) .. (#left > 5 and ', ...' or '')
        .. ') that is not being deleted: an agent keeps at least one; give them another '
        .. 'or delete them first')
    end
  end
  redis.call('HSET', keys[2], mark, '1')
  local abandoned, now = 0, now_ms()
  for _, sig in ipairs(needing) do
    if abandoned >= budget then break end
    for _, cid in ipairs(redis.call('ZRANGE', k_combo(tag, sig), 0, budget - abandoned - 1)) do
      abandon_waiting(tag, cid, sig, now, keep, 'skill_deleted')
      abandoned = abandoned + 1
    end
  end
  if abandoned > 0 then redis.call('HINCRBY', tag .. ':stats', 'abandoned', abandoned) end
  local removed = 0
  if abandoned < budget then
    local skill_json = cjson.encode(skill)
    for _, id in ipairs(redis.call('SRANDMEMBER', k_skill(tag, skill), budget - abandoned)) do
      local key = k_agent(tag, id)
      if redis.call('EXISTS', key) == 1 then
        local at = redis.call('JSON.ARRINDEX', key, '.skills', skill_json)
        if at >= 0 then redis.call('JSON.ARRPOP', key, '.skills', at) end
        if leveled then  -- its level of the skill goes too (see "Proficiency")
          redis.call('JSON.DEL', key, '$.levels[' .. skill_json .. ']')
        end
      end
      redis.call('SREM', k_skill(tag, skill), id)
      redis.call('ZREM', k_avail(tag, skill), id)
      if leveled then levels_remove(tag, id, {[skill] = MAX_LEVEL}) end
      if choosing then fewest_skill_deleted(tag, id, skill) end
      removed = removed + 1
    end
  end
  for _, sig in ipairs(needing) do
    if redis.call('HEXISTS', tag .. ':sigs', sig) == 1 then return {removed, abandoned, 0} end
  end
  if redis.call('SCARD', k_skill(tag, skill)) > 0 then return {removed, abandoned, 0} end
  redis.call('DEL', k_skill(tag, skill), k_avail(tag, skill), k_fewest(tag, skill))
  for l = 2, MAX_LEVEL do redis.call('DEL', k_avail_at(tag, l, skill)) end
  redis.call('SREM', keys[1], skill)
  redis.call('HDEL', keys[2], mark)
  event(tag, 'skill_deleted', 'skill', skill)
  return {removed, abandoned, 1}
end

--[[ acd_center_state
KEYS[1] center meta hash   KEYS[2] set of the center's agents
ARGV[1] '1' open (every agent not on a contact becomes available) | '0' close (unavailable);
agents on a break or logged out (or about to be) are left alone (see "Agent states")
ARGV[2] run: '' starts a run (records the open flag, emits center_state); later batches
pass the run the first returned   ARGV[3...] the agents of this batch (the caller walks
the agents set; an id no longer there is skipped)
One batch of opening or closing (see "Bulk operations"). Agents on a contact keep it:
closing makes them unavailable when it ends (next_state), opening cancels that.
Returns {how many agents changed state now, run}; {-1, run} when a later open or close
started meanwhile: this run stops there, the later one covers every agent. ]]
local function center_state(keys, args)
  local tag = tag_of(keys[1])
  refuse_if_deleting(tag)
  local target = args[1] == '1' and 'available' or 'unavailable'
  local run = args[2]
  if run == '' then
    run = tostring(redis.call('HINCRBY', keys[1], 'state_run', 1))
    redis.call('HSET', keys[1], 'open', args[1])
    event(tag, 'center_state', 'open', args[1])
  elseif redis.call('HGET', keys[1], 'state_run') ~= run then
    return {-1, run}
  end
  local now, ids, moving = now_ms(), {}, {}
  for i = 3, #args do ids[#ids + 1] = args[i] end
  for i, agent in ipairs(load_agents(tag, ids)) do
    if not agent or keeps_own_state(agent) then
      -- gone, or on a break or logged out (now or after its contact): left alone
    elseif agent.state == 'busy' or agent.state == 'wrap_up' or agent.state == 'offered' then
      -- Closing: not ready after the contact (or wrap-up); opening: cancel that.
      local pending = agent.next_state == 'unavailable'
      if pending ~= (target == 'unavailable') then
        set_agent_state(tag, ids[i], agent, target, now, true)
      end
    elseif agent.state ~= target then
      moving[#moving + 1] = {id = ids[i], agent = agent}
    end
  end
  -- As set_agent_state does for one agent, with one command per skill for the batch.
  local since = string.format('%d', now)
  if target == 'available' then
    by_skill(tag, k_avail, moving, 'ZADD', since)
    local woken = {}
    for _, m in ipairs(moving) do
      redis.call('JSON.MERGE', k_agent(tag, m.id), '.',
        '{"state":"available","available_since":' .. since .. '}')
      if m.agent.in_fewest then fewest_add(tag, m.id, m.agent.skills, since) end
      levels_add(tag, m.id, m.agent.levels, since)
      event(tag, 'agent_state', 'agent', m.id, 'state', 'available')
      local skills = table.concat(m.agent.skills, ',')
      if has_levels(m.agent.levels) then skills = skills .. '|' .. cjson.encode(m.agent.levels) end
      if not woken[skills] then
        woken[skills] = true
        wake_parked(tag, m.agent.skills, m.agent.levels)
      end
    end
    if #moving > 0 then wake(tag, 'agent') end
  else
    by_skill(tag, k_avail, moving, 'ZREM')
    for _, m in ipairs(moving) do
      redis.call('JSON.MERGE', k_agent(tag, m.id), '.',
        '{"state":"unavailable","available_since":null}')
      if m.agent.in_fewest then fewest_remove(tag, m.id, m.agent.skills) end
      levels_remove(tag, m.id, m.agent.levels)
      event(tag, 'agent_state', 'agent', m.id, 'state', 'unavailable')
    end
  end
  return {#moving, run}
end

-- The keys a deleted center leaves behind go in the last call: by then no agent and no
-- waiting contact is left, so the sets of skills and the index are empty already.
local function center_keys(tag)
  local names = {}
  for _, skill in ipairs(redis.call('SMEMBERS', tag .. ':skills')) do
    names[#names + 1] = k_skill(tag, skill)
    names[#names + 1] = k_avail(tag, skill)
    names[#names + 1] = k_parked(tag, skill)
    names[#names + 1] = k_fewest(tag, skill)
    for l = 2, MAX_LEVEL do names[#names + 1] = k_avail_at(tag, l, skill) end
  end
  for _, suffix in ipairs({'agents', 'skills', 'queue', 'sigs', 'ready', 'parked_on', 'unpark',
                           'stats', 'events', 'wake', 'kpis', 'wrap_up', 'steps_due',
                           'steps', 'outcomes', 'offers', 'excluded', 'meta'}) do
    names[#names + 1] = tag .. ':' .. suffix
  end
  return names
end

--[[ acd_center_delete
KEYS[1] center meta hash   KEYS[2] set of the center's agents   KEYS[3] queue
ARGV[1] 'begin' | 'abort' | 'purge'   ARGV[2] batch   ARGV[3] seconds to keep an
abandoned contact
begin: marks the center as being deleted (meta deleting = checking): every write but
  the end of a contact is refused (STATE), dispatch assigns nothing and an open/close
  under way stops. The caller then checks that no agent is on a contact. Returns the mark
  it found ('' if none): 'purging' means an interrupted deletion to finish.
abort: removes a 'checking' mark (the caller found contacts assigned).
purge: one batch (see "Bulk operations"): abandons up to batch waiting contacts
  (contact_abandoned, reason center_deleted) or, once none waits, deletes up to batch
  agents (agent_deleted; fails with STATE before any write if one is on a contact); the
  call that leaves neither deletes the center's other keys, the mark last. Ended contacts
  stay readable until they expire. Returns {contacts abandoned, agents deleted, 1 when
  done else 0}. ]]
local function center_delete(keys, args)
  local tag = tag_of(keys[1])
  local step, mark = args[1], redis.call('HGET', keys[1], 'deleting')
  if step == 'begin' then
    if not mark then
      redis.call('HSET', keys[1], 'deleting', 'checking')
      redis.call('HINCRBY', keys[1], 'state_run', 1)  -- an open/close under way stops
      event(tag, 'center_deleting')
    end
    return mark or ''
  elseif step == 'abort' then
    if mark == 'checking' then redis.call('HDEL', keys[1], 'deleting') end
    return mark or ''
  elseif step ~= 'purge' then
    fail('INVALID center delete step ' .. tostring(step))
  end
  if not mark then fail('STATE center ' .. center_of(tag) .. ' is not being deleted') end
  local budget, keep = tonumber(args[2]), tonumber(args[3])
  if not budget or budget < 1 then fail('INVALID batch ' .. tostring(args[2])) end
  local waiting = redis.call('ZRANGE', keys[3], 0, budget - 1)
  if #waiting > 0 then
    redis.call('HSET', keys[1], 'deleting', 'purging')
    local now = now_ms()
    for _, cid in ipairs(waiting) do
      local doc = json_get(k_contact(tag, cid), '.')
      if doc then
        abandon_waiting(tag, cid, contact_sig(doc), now, keep, 'center_deleted')
      else
        redis.call('ZREM', keys[3], cid)  -- written around the functions: only queued
      end
    end
    return {#waiting, 0, 0}
  end
  local ids = redis.call('SRANDMEMBER', keys[2], budget)
  local found, available, doc_keys = {}, {}, {}
  for i, agent in ipairs(load_agents(tag, ids)) do
    if agent then
      if agent.state == 'busy' then
        fail('STATE agent ' .. ids[i] .. ' is on contact ' .. tostring(agent.contact)
          .. ': complete it, then delete the center again')
      end
      if agent.state == 'offered' and type(agent.contact) == 'string' then
        -- Its offer ends with the center: the contact is abandoned like a waiting one.
        local offered = json_get(k_contact(tag, agent.contact), '.')
        if offered and offered.state == 'offered' then
          redis.call('ZREM', k_offers(tag), 'o|' .. agent.contact)
          redis.call('JSON.MSET', k_contact(tag, agent.contact), '.state', '"abandoned"',
            k_contact(tag, agent.contact), '.ended_at', now_ms())
          redis.call('EXPIRE', k_contact(tag, agent.contact), keep)
          event(tag, 'contact_abandoned', 'contact', agent.contact, 'reason', 'center_deleted')
        end
      end
      found[#found + 1] = {id = ids[i], agent = agent}
      if agent.state == 'available' then available[#available + 1] = found[#found] end
      if agent.state == 'wrap_up' then redis.call('ZREM', k_wrap_up(tag), ids[i]) end
      doc_keys[#doc_keys + 1] = k_agent(tag, ids[i])
    end
  end
  redis.call('HSET', keys[1], 'deleting', 'purging')
  -- As acd_agent_delete does for one agent, with one command per skill for the batch.
  by_skill(tag, k_avail, available, 'ZREM')
  for _, item in ipairs(available) do
    if item.agent.in_fewest then fewest_remove(tag, item.id, item.agent.skills) end
    levels_remove(tag, item.id, item.agent.levels)
  end
  by_skill(tag, k_skill, found, 'SREM')
  if #doc_keys > 0 then redis.call('DEL', unpack(doc_keys)) end
  if #ids > 0 then redis.call('SREM', keys[2], unpack(ids)) end
  for _, item in ipairs(found) do event(tag, 'agent_deleted', 'agent', item.id) end
  if redis.call('SCARD', keys[2]) > 0 then return {0, #ids, 0} end
  redis.call('UNLINK', unpack(center_keys(tag)))
  return {0, #ids, 1}
end

-- A new contact's steps (see "Steps by waiting time"): given (ARGV: a JSON array; '[]'
-- for none) or else its center's default for its combination, if the center has any
-- (defaults: meta 'step_defaults'); nil when none. A close keeps the contact keep_s.
local function steps_of_new_contact(tag, sig, given, defaults, keep_s)
  local raw = given
  if (raw == nil or raw == '') and tonumber(defaults or 0) > 0 then
    raw = redis.call('HGET', tag .. ':steps', sig)
  end
  if raw == nil or raw == '' or raw == false then return nil end
  local ok, decoded = pcall(cjson.decode, raw)
  if not ok then fail('INVALID steps: not a JSON array') end
  local steps = check_steps(decoded)
  if #steps == 0 then return nil end
  for _, step in ipairs(steps) do
    if step.close then step.keep_s = tonumber(keep_s) or 3600 end
  end
  return steps
end


register('acd_skill_delete', skill_delete, true)
register('acd_center_state', center_state)
register('acd_center_delete', center_delete, true)
