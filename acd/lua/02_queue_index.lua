--[[ The waiting contacts' index.
The universal queue ({tag}:queue, score = arrival) says who came first; the index says who
can be served, so a dispatch round never looks at contacts nobody available can serve:
  {tag}:combo:<sig>   a FIFO per skill combination ('a,b'), by virtual arrival: the
                      queue's score minus the contact's head start (see virtual_score;
                      the queue's score itself for a contact of priority 0)
  {tag}:sigs          hash: combination -> how many contacts wait with it
  {tag}:ready         zset: combinations some available agent may serve, score = the
                      arrival of their oldest contact (so the first is the oldest there is)
  {tag}:parked:<skill> set: combinations found unservable, filed under one of their skills
  {tag}:parked_on     hash: parked combination -> the skill it is filed under
  {tag}:unpark        list: agents' wake-ups not finished yet (see wake_parked)
A waiting combination is in ready or parked, never both, never neither. A parked one can
only become servable when an agent having all its skills becomes available (or, while
available, gains a skill): that agent has the skill it is filed under, so make_available
and agent_skill look there (wake_parked) and move it back to ready. It is filed under the
skill the fewest agents have: a skill nobody has means nobody ever looks at it again.
{tag}:meta 'indexed' counts the index's entries: a queue of another size was written
directly (the textbook lessons pop and push it) and dispatch first reconciles. ]]

-- A combination's needs: 'en', 'billing:3' (see "Proficiency").
local function needs_of(sig)
  local needs = {}
  for item in string.gmatch(sig, '[^,]+') do needs[#needs + 1] = item end
  return needs
end

-- A combination's skills, without their minimum levels.
local function skills_of(sig)
  local skills = {}
  for item in string.gmatch(sig, '[^,]+') do skills[#skills + 1] = (split_need(item)) end
  return skills
end

local function unpark(tag, sig)
  local skill = redis.call('HGET', tag .. ':parked_on', sig)
  if skill then
    redis.call('SREM', k_parked(tag, skill), sig)
    redis.call('HDEL', tag .. ':parked_on', sig)
  end
end

local function park(tag, sig)
  local best, fewest = nil, nil
  for _, skill in ipairs(skills_of(sig)) do
    local n = redis.call('SCARD', k_skill(tag, skill))
    if fewest == nil or n < fewest then best, fewest = skill, n end
    if n == 0 then break end
  end
  redis.call('ZREM', tag .. ':ready', sig)
  redis.call('SADD', k_parked(tag, best), sig)
  redis.call('HSET', tag .. ':parked_on', sig, best)
end

-- The arrival score of a combination's oldest contact, or nil if none waits.
local function head_score(tag, sig)
  local head = redis.call('ZRANGE', k_combo(tag, sig), 0, 0, 'WITHSCORES')
  if #head == 0 then return nil end
  return head[2]
end

-- Priority as virtual age: a contact's place in its combination's FIFO (and so in
-- ready) is its queue score minus its head start (priority x the center's ms per point,
-- fixed when it is queued), as if it had waited that much longer. The queue keeps the
-- real arrival. Formatted like the queue score, so that recomputing it from the queue
-- score gives the very same double (dispatch compares them).
local function virtual_score(queue_score, head_start)
  if not head_start or head_start == 0 then return queue_score end
  return string.format('%.3f', tonumber(queue_score) - head_start)
end

-- The head start a contact's document records (0: none, or a document written before
-- priorities existed).
local function head_start_of(tag, cid)
  local raw = redis.call('JSON.GET', k_contact(tag, cid), '$.head_start_ms')
  local found = raw and cjson.decode(raw)
  return found and tonumber(found[1]) or 0
end

local function make_ready(tag, sig)
  local score = head_score(tag, sig)
  if score then redis.call('ZADD', tag .. ':ready', score, sig) end
end

-- A combination new to the index is ready if an available agent can serve it now, else
-- parked at once: a flood of contacts nobody can serve never reaches a dispatch round.
-- ahead: the contact has a head start, so it may be its combination's new head (one
-- without is never: it arrived last, and nobody's virtual arrival is later than theirs).
-- Returns whether a combination new to the index was parked (nil: it was there already).
-- (A combination nobody waits with is neither ready nor parked: acd.invariants checks it,
-- and every function that empties one takes it out of both.)
local function index_add(tag, sig, score, cid, ahead)
  redis.call('ZADD', k_combo(tag, sig), score, cid)
  redis.call('HINCRBY', tag .. ':meta', 'indexed', 1)
  if redis.call('HINCRBY', tag .. ':sigs', sig, 1) == 1 then
    if anyone_available(tag, needs_of(sig)) then
      redis.call('ZADD', tag .. ':ready', score, sig)
      return false
    end
    park(tag, sig)
    return true
  elseif ahead then
    redis.call('ZADD', tag .. ':ready', 'XX', 'LT', score, sig)  -- only if it is ready
  end
  return nil
end

local function index_remove(tag, sig, cid)
  if redis.call('ZREM', k_combo(tag, sig), cid) == 0 then return end
  redis.call('HINCRBY', tag .. ':meta', 'indexed', -1)
  if redis.call('HINCRBY', tag .. ':sigs', sig, -1) <= 0 then
    redis.call('HDEL', tag .. ':sigs', sig)
    redis.call('ZREM', tag .. ':ready', sig)
    unpark(tag, sig)
  else
    local score = head_score(tag, sig)
    redis.call('ZADD', tag .. ':ready', 'XX', score, sig)  -- only if it is ready
  end
end

-- A contact leaves the queue and the index (assigned or abandoned); keys[2] is the queue,
-- sig its combination (contact_sig).
local function unqueue(keys, id, sig)
  redis.call('ZREM', keys[2], id)
  index_remove(tag_of(keys[2]), sig, id)
end

--[[ Un-parking is bounded work. An agent becoming available can serve every parked
combination that is a subset of its skills, and there may be thousands (all contacts
queued before a center opens, say): moving them all in one call would hold Redis for tens
of ms. So the agent's wake-up is a job in {tag}:unpark, and each call does at most
UNPARK_UNITS of that work (an examined combination costs 1, a moved one 4: ~1 ms in all);
dispatch finishes the jobs before it assigns anything, so the order in which contacts are
served is exactly what it would be had every job run at once.
A job is 's|<next subset mask>|<skills>' (asking for each subset of the agent's skills is
cheaper when it has few) or 'f|<skill number>|<SSCAN cursor>|<skills>' (reading the
combinations filed under each of its skills, when it has many). ]]
local DISPATCH_WORK = 400  -- see acd_dispatch: 25 assignments of agents with 8 skills

local function move_if_parked(tag, sig)
  if redis.call('HEXISTS', tag .. ':parked_on', sig) == 1 then
    unpark(tag, sig)
    make_ready(tag, sig)
    unpark_units = unpark_units - 4
  end
end

-- Runs a job until it ends (returns nil) or the call's units run out (returns the job
-- left to do).
local function run_unpark_job(tag, job)
  local fields = {}
  for field in string.gmatch(job, '[^|]+') do fields[#fields + 1] = field end
  local skills = skills_of(fields[#fields])
  if fields[1] == 's' then
    local n = #skills
    for mask = tonumber(fields[2]), 2 ^ n - 1 do
      if unpark_units <= 0 then return 's|' .. mask .. '|' .. fields[3] end
      local subset = {}
      for i = 1, n do
        if bit.band(mask, 2 ^ (i - 1)) ~= 0 then subset[#subset + 1] = skills[i] end
      end
      unpark_units = unpark_units - 1
      move_if_parked(tag, table.concat(subset, ','))
    end
    return nil
  end
  local has = {}  -- skill -> the agent's level (the job lists 'skill:L' above 1)
  for _, item in ipairs(needs_of(fields[#fields])) do
    local skill, level = split_need(item)
    has[skill] = level
  end
  local i, cursor = tonumber(fields[2]), fields[3]
  while i <= #skills do
    if unpark_units <= 0 then return 'f|' .. i .. '|' .. cursor .. '|' .. fields[4] end
    local page = redis.call('SSCAN', k_parked(tag, skills[i]), cursor, 'COUNT', 64)
    for _, sig in ipairs(page[2]) do
      unpark_units = unpark_units - 1
      local all = true
      for _, item in ipairs(needs_of(sig)) do
        local needed, min = split_need(item)
        if not has[needed] or has[needed] < min then all = false break end
      end
      if all then move_if_parked(tag, sig) end
    end
    cursor = page[1]
    if cursor == '0' then i = i + 1 end
  end
  return nil
end

-- Runs pending un-park jobs with what is left of this call's units; true when none is
-- left. Nothing parked means nothing to move: the jobs are dropped.
local function drain_unpark(tag)
  local key = tag .. ':unpark'
  while true do
    local job = redis.call('LINDEX', key, 0)
    if not job then return true end
    if redis.call('HLEN', tag .. ':parked_on') == 0 then
      redis.call('DEL', key)
      return true
    end
    if unpark_units <= 0 then return false end
    local rest = run_unpark_job(tag, job)
    if rest then redis.call('LSET', key, 0, rest) else redis.call('LPOP', key) end
  end
end

-- An agent with these skills is available: every parked combination it can serve is
-- made ready again, now or (when there are many) by the next calls: see above. levels:
-- its document's (nil: none above 1). Asking for subsets of its skills finds only
-- combinations without minimums, so an agent with levels reads the combinations filed
-- under its skills ('f'), its levels in the job; one without levels serves no
-- combination with minimums (each needs a level above 1): as before proficiency.
local function wake_parked(tag, skills, levels)
  if redis.call('HLEN', tag .. ':parked_on') == 0 then return end  -- the usual case
  local filed = 0
  for _, skill in ipairs(skills) do filed = filed + redis.call('SCARD', k_parked(tag, skill)) end
  if filed == 0 then return end
  local sorted = {}
  for i, skill in ipairs(skills) do sorted[i] = skill end
  table.sort(sorted)  -- a combination's name lists its skills sorted
  local n = #sorted
  if has_levels(levels) then
    redis.call('RPUSH', tag .. ':unpark', 'f|1|0|' .. agent_items(sorted, levels))
  elseif n <= 16 and 2 ^ n - 1 <= filed then
    redis.call('RPUSH', tag .. ':unpark', 's|1|' .. table.concat(sorted, ','))
  else
    redis.call('RPUSH', tag .. ':unpark', 'f|1|0|' .. table.concat(sorted, ','))
  end
  drain_unpark(tag)
end

-- The queue was written around the index (a lesson's textbook dispatcher pops contacts
-- and pushes them back): rebuild the index from the queue. Costs one pass over both;
-- the ACD's own functions never need it.
local function reconcile(tag, queue)
  for _, sig in ipairs(redis.call('HKEYS', tag .. ':sigs')) do
    unpark(tag, sig)
    redis.call('DEL', k_combo(tag, sig))
  end
  redis.call('DEL', tag .. ':sigs', tag .. ':ready')
  local entries = redis.call('ZRANGE', queue, 0, -1, 'WITHSCORES')
  local indexed = 0
  for i = 1, #entries, 2 do
    local doc = json_get(k_contact(tag, entries[i]), '.')
    if doc then
      local head_start = tonumber(doc.head_start_ms) or 0
      index_add(tag, contact_sig(doc), virtual_score(entries[i + 1], head_start),
        entries[i], head_start > 0)
      indexed = indexed + 1
    else
      redis.call('ZREM', queue, entries[i])  -- its document is gone: nobody can serve it
    end
  end
  redis.call('HSET', tag .. ':meta', 'indexed', indexed)
end

-- Availability: an agent's score is the same in every one of its skill sets (the ms it
-- became available). That is what lets dispatch find the longest available agent by
-- walking one set in order instead of intersecting them all.
local function make_available(tag, id, agent, since)
  for _, skill in ipairs(agent.skills) do
    redis.call('ZADD', k_avail(tag, skill), since, id)
  end
  if agent.in_fewest then fewest_add(tag, id, agent.skills, since) end
  levels_add(tag, id, agent.levels, since)
  wake_parked(tag, agent.skills, agent.levels)
end

local function make_unavailable(tag, id, agent)
  for _, skill in ipairs(agent.skills) do
    redis.call('ZREM', k_avail(tag, skill), id)
  end
  if agent.in_fewest then fewest_remove(tag, id, agent.skills) end
  levels_remove(tag, id, agent.levels)
end

local function load_agent(tag, id)
  local agent = json_get(k_agent(tag, id), '.')
  if not agent then fail('NOTFOUND agent ' .. id) end
  return agent
end
