-- Agents' functions (create, delete, update, state, skills) and bulk operations.

--[[ acd_agent_create
KEYS[1] agent document   KEYS[2] set of the center's agents   KEYS[3] set of skills
ARGV[1] id  ARGV[2] agent JSON (fname, lname, skills)  ARGV[3] '1' to start available
Returns the stored agent JSON. ]]
local function agent_create(keys, args)
  local tag = tag_of(keys[1])
  local indexed = refuse_if_deleting_or_indexed(tag)
  if redis.call('EXISTS', keys[1]) == 1 then fail('EXISTS agent ' .. args[1]) end
  local agent = cjson.decode(args[2])
  refuse_skills_being_deleted(tag, agent.skills)
  local now = now_ms()
  agent.id = args[1]
  agent.state = 'unavailable'
  agent.created_at = now
  agent.in_fewest = indexed or nil  -- see "Agent choice"
  if has_levels(agent.levels) then
    redis.call('HSET', tag .. ':meta', 'proficiency', '1')  -- see "Proficiency"
  else
    agent.levels = nil
  end
  for _, skill in ipairs(agent.skills) do
    redis.call('SADD', k_skill(tag, skill), agent.id)
    redis.call('SADD', keys[3], skill)
  end
  redis.call('JSON.SET', keys[1], '.', cjson.encode(agent))
  redis.call('SADD', keys[2], agent.id)
  event(tag, 'agent_created', 'agent', agent.id)
  if args[3] == '1' then set_agent_state(tag, agent.id, agent, 'available', now) end
  return redis.call('JSON.GET', keys[1], '.')
end

--[[ acd_agent_delete
KEYS[1] agent document   KEYS[2] set of the center's agents   KEYS[3] set of skills
ARGV[1] id. Fails with STATE while the agent is on a contact. ]]
local function agent_delete(keys, args)
  local tag = tag_of(keys[1])
  local agent = load_agent(tag, args[1])
  if agent.state == 'busy' then fail('STATE agent ' .. args[1] .. ' is on a contact') end
  if agent.state == 'offered' then
    fail('STATE agent ' .. args[1] .. ' is offered contact ' .. tostring(agent.contact)
      .. ': accept or reject it first')
  end
  if agent.state == 'wrap_up' then redis.call('ZREM', k_wrap_up(tag), args[1]) end
  make_unavailable(tag, args[1], agent)
  for _, skill in ipairs(agent.skills) do
    redis.call('SREM', k_skill(tag, skill), args[1])
    forget_unused_skill(tag, keys[3], skill)
  end
  redis.call('DEL', keys[1])
  redis.call('SREM', keys[2], args[1])
  event(tag, 'agent_deleted', 'agent', args[1])
  return 1
end

--[[ acd_agent_update
KEYS[1] agent document
ARGV[1] id  ARGV[2] first name JSON string  ARGV[3] last name JSON string
Returns the stored agent JSON. ]]
local function agent_update(keys, args)
  refuse_if_deleting(tag_of(keys[1]))
  load_agent(tag_of(keys[1]), args[1])
  redis.call('JSON.MSET', keys[1], '.fname', args[2], keys[1], '.lname', args[3])
  event(tag_of(keys[1]), 'agent_updated', 'agent', args[1])
  return redis.call('JSON.GET', keys[1], '.')
end

--[[ acd_agent_state
KEYS[1] agent document
ARGV[1] id  ARGV[2] 'available' | 'unavailable' | 'logged_out'
ARGV[3] break reason, with 'unavailable' only (absent or '': none; see "Agent states")
On an agent on a contact: 'unavailable' or 'logged_out' is kept as next_state (not ready
after this contact), 'available' cancels it, or fails with STATE naming the contact if
none is pending. Returns the stored agent JSON. ]]
local function agent_state(keys, args)
  local tag = tag_of(keys[1])
  local reason = check_wanted(args[2], args[3])
  refuse_if_deleting(tag)
  local agent = load_agent(tag, args[1])
  set_agent_state(tag, args[1], agent, args[2], now_ms(), false, reason)
  return redis.call('JSON.GET', keys[1], '.')
end

--[[ acd_agent_skill
KEYS[1] agent document   KEYS[2] set of skills
ARGV[1] id  ARGV[2] skill  ARGV[3] 'add' | 'remove'
Returns the stored agent JSON. Adding a skill the agent has, or removing one it lacks,
fails with EXISTS / NOTFOUND. Removing the last skill of an agent fails with STATE: an
agent without skills could serve no contact, yet would count as staff; so does removing
the last one not being deleted (see acd_skill_delete), which would leave it none. ]]
local function agent_skill(keys, args)
  local tag = tag_of(keys[1])
  local id, skill = args[1], args[2]
  refuse_if_deleting(tag)
  local agent = load_agent(tag, id)
  local index = nil
  for i, s in ipairs(agent.skills) do if s == skill then index = i end end
  if args[3] == 'add' then
    if index then fail('EXISTS skill ' .. skill .. ' of agent ' .. id) end
    refuse_skills_being_deleted(tag, {skill})
    redis.call('JSON.ARRAPPEND', keys[1], '.skills', cjson.encode(skill))
    redis.call('SADD', k_skill(tag, skill), id)
    redis.call('SADD', keys[2], skill)
    if agent.state == 'available' then
      redis.call('ZADD', k_avail(tag, skill), agent.available_since, id)
      agent.skills[#agent.skills + 1] = skill
      wake_parked(tag, agent.skills, agent.levels)  -- a new skill is at level 1
      wake(tag, 'skill')
    end
  else
    if not index then fail('NOTFOUND skill ' .. skill .. ' of agent ' .. id) end
    if #agent.skills == 1 then
      fail('STATE skill ' .. skill .. ' is the only skill of agent ' .. id .. ': an agent '
        .. 'keeps at least one (add another first, or delete the agent)')
    end
    local staying = {}
    for i, s in ipairs(agent.skills) do
      if i ~= index and redis.call('HEXISTS', tag .. ':meta', 'deleting_skill:' .. s) == 0 then
        staying[#staying + 1] = s
      end
    end
    if #staying == 0 then
      local others = {}
      for i, s in ipairs(agent.skills) do if i ~= index then others[#others + 1] = s end end
      fail('STATE skill ' .. skill .. ' is the last skill agent ' .. id .. ' keeps: '
        .. table.concat(others, ', ') .. ' is being deleted')
    end
    redis.call('JSON.ARRPOP', keys[1], '.skills', index - 1)
    redis.call('SREM', k_skill(tag, skill), id)
    redis.call('ZREM', k_avail(tag, skill), id)
    if agent.levels and agent.levels[skill] then  -- its level goes with it
      levels_remove(tag, id, {[skill] = agent.levels[skill]})
      redis.call('JSON.MERGE', keys[1], '.', cjson.encode({levels = {[skill] = cjson.null}}))
    end
    forget_unused_skill(tag, keys[2], skill)
  end
  fewest_skill_changed(tag, id, agent, skill, args[3])
  event(tag, 'agent_skill', 'agent', id, 'skill', skill, 'op', args[3])
  return redis.call('JSON.GET', keys[1], '.')
end

--[[ Bulk operations.
Opening or closing a center, deleting a skill and deleting a center may touch every agent
and contact of a center; one call doing it all held Redis for everyone (0.4 s for 5,000
agents x 32 skills). Each is many calls instead, each changing at most ARGV's batch of
agents or contacts, every one of them wholly (its document, its availability and skill
sets, the index): the promises checked by acd/invariants.py hold after every call, so
also between batches. The caller (acd/bulk.py) calls again until the work is done.
What a reader sees between batches, and why that is safe:
- open/close: some agents already available (or unavailable), others not yet, as if
  they had changed state one by one through acd_agent_state. A dispatch round in between
  may give an agent opened by the first batch a contact: it is a legal assignment. Two
  runs overlapping: the later one wins (the earlier stops at its next batch), so a center
  never ends up half open by a race.
- skill delete: some agents still have the skill, others no longer. From the first batch
  on, the skill is marked as being deleted and no contact needing it is queued and no
  agent gains it (STATE), so the check that no contact waits for it, made by the first
  call, stays true to the end (forced: contacts that waited are abandoned first).
- center delete: the center is marked as being deleted: it refuses every write but the
  end of a contact, and dispatch assigns nothing, so no contact becomes assigned while the
  caller checks there is none. Then waiting contacts are abandoned, then agents deleted,
  then the rest; a call interrupted anywhere is finished by calling again. ]]

-- Each agent of a batch (items {id =, agent =}) in or out of the sets of its skills with
-- one command per skill, not one per agent and skill: a batch of agents with 32 skills
-- each costs 32 commands. score: ZADD with it; nil: the verb takes members only.
local function by_skill(tag, key_of, items, verb, score)
  local members, order = {}, {}
  for _, item in ipairs(items) do
    for _, skill in ipairs(item.agent.skills) do
      local list = members[skill]
      if not list then
        list = {}
        members[skill] = list
        order[#order + 1] = skill
      end
      if score then list[#list + 1] = score end
      list[#list + 1] = item.id
    end
  end
  for _, skill in ipairs(order) do redis.call(verb, key_of(tag, skill), unpack(members[skill])) end
end

-- The documents of a batch of agents, one JSON.MGET: decoded, or false where none is.
local function load_agents(tag, ids)
  if #ids == 0 then return {} end
  local keys = {}
  for i, id in ipairs(ids) do keys[i] = k_agent(tag, id) end
  keys[#keys + 1] = '.'
  local docs = {}
  for i, raw in ipairs(redis.call('JSON.MGET', unpack(keys))) do
    docs[i] = raw and cjson.decode(raw) or false
  end
  return docs
end

-- A waiting contact is abandoned by a bulk change (its skill or its center deleted): it
-- leaves the queue and the index, and stays readable as abandoned for keep seconds.
local function abandon_waiting(tag, cid, sig, now, keep, reason)
  unqueue({tag .. ':queue', tag .. ':queue'}, cid, sig)
  local key = k_contact(tag, cid)
  if redis.call('EXISTS', key) == 1 then
    redis.call('JSON.MSET', key, '.state', '"abandoned"', key, '.ended_at', now)
    redis.call('EXPIRE', key, keep)
  end
  event(tag, 'contact_abandoned', 'contact', cid, 'reason', reason)
end

-- The agents deleting this skill would leave without any: those with it whose other
-- skills are all being deleted too, or who have no other. One SDIFF over the skill sets
-- (in C, no agent document read); past the first 1,000 other skills (more than unpack
-- takes at once) the few agents left are looked up set by set.
local function agents_left_without_skills(tag, skills_key, meta_key, skill)
  local others = {}
  for _, s in ipairs(redis.call('SMEMBERS', skills_key)) do
    if s ~= skill and redis.call('HEXISTS', meta_key, 'deleting_skill:' .. s) == 0 then
      others[#others + 1] = k_skill(tag, s)
    end
  end
  local first = {k_skill(tag, skill)}
  for i = 1, math.min(#others, 1000) do first[i + 1] = others[i] end
  local left = redis.call('SDIFF', unpack(first))
  for i = 1001, #others do
    if #left == 0 then break end
    local kept = {}
    for _, id in ipairs(left) do
      if redis.call('SISMEMBER', others[i], id) == 0 then kept[#kept + 1] = id end
    end
    left = kept
  end
  table.sort(left)
  return left
end


register('acd_agent_create', agent_create)
register('acd_agent_delete', agent_delete, true)
register('acd_agent_update', agent_update)
register('acd_agent_state', agent_state)
register('acd_agent_skill', agent_skill)
