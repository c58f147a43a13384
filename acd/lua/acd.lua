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

Every call is short: Redis runs one call at a time, so a call that walks a whole center
(5,000 agents x 32 skills took 0.4 s in one call) makes every other client of every center
wait that long. What changes many agents or contacts (open/close, skill delete, center
delete) is a bulk operation of many calls, each changing at most a batch of them and each
whole for every agent or contact it touches: see "Bulk operations" below.

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

--[[ Proficiency (issue 14): a level 1-5 per skill of an agent, a minimum per skill of a
contact. An agent's document holds 'levels' only for skills above level 1 (a skill it
lists without one is at level 1, the level of merely having it), so agents and contacts
without levels are stored, indexed and dispatched exactly as before.
  {tag}:avail_at:<L>:<skill>  zset, L = 2..5: the available agents having the skill at
                              level L or more, score = available_since (the same score as
                              in avail:<skill>, so the LAA walk below works on any mix of
                              these sets and the avail sets)
A contact's needs are items 'skill' (any level) or 'skill:L' (level L or more, L > 1):
its combination ('signature') lists them sorted by skill, 'billing:3,en', so contacts
with the same skills and minimums share a FIFO, and the walk for it is the LAA walk over
avail:en and avail_at:3:billing: bounded like LAA, no level read per candidate.
meta 'proficiency' is set once some agent of the center has a level above 1: only then
does a claim read an agent's levels (to leave its avail_at sets) and does the agent choice
best_proficiency rank by level. ]]
local MAX_LEVEL = 5

local function k_avail_at(tag, level, skill)
  return tag .. ':avail_at:' .. level .. ':' .. skill
end

-- 'billing:3' -> 'billing', 3; 'en' -> 'en', 1.
local function split_need(item)
  local skill, level = string.match(item, '^([^:]+):(%d+)$')
  if skill then return skill, tonumber(level) end
  return item, 1
end

-- The availability set a need walks: avail:<skill>, or avail_at:<L>:<skill>.
local function k_need(tag, item)
  if not string.find(item, ':', 1, true) then return k_avail(tag, item) end
  local skill, level = split_need(item)
  return k_avail_at(tag, level, skill)
end

-- An agent's level of a skill (levels: its document's map, nil when it has none).
local function level_of(levels, skill)
  return levels and tonumber(levels[skill]) or 1
end

-- An available agent joins (ZADD, score since) or leaves (ZREM) the avail_at sets of its
-- levels above 1.
local function levels_add(tag, id, levels, since)
  if not levels then return end
  for skill, level in pairs(levels) do
    for l = 2, tonumber(level) do redis.call('ZADD', k_avail_at(tag, l, skill), since, id) end
  end
end

local function levels_remove(tag, id, levels, sizes)
  if not levels then return end
  for skill, level in pairs(levels) do
    for l = 2, tonumber(level) do
      local removed = redis.call('ZREM', k_avail_at(tag, l, skill), id)
      local item = skill .. ':' .. l
      if sizes and sizes[item] then sizes[item] = sizes[item] - removed end
    end
  end
end

-- Whether the agent has any level above 1.
local function has_levels(levels)
  return levels ~= nil and next(levels) ~= nil
end

-- A contact's signature: its needs sorted by skill ('billing:3,en'); without minimums
-- its skills joined, as before proficiency.
local function contact_sig(contact)
  local mins = contact.min_levels
  if type(mins) ~= 'table' or next(mins) == nil then return table.concat(contact.skills, ',') end
  local items = {}
  for i, skill in ipairs(contact.skills) do
    local min = tonumber(mins[skill]) or 1
    items[i] = min > 1 and (skill .. ':' .. min) or skill
  end
  return table.concat(items, ',')
end

-- An agent's skills with its levels as needs items, sorted by skill ('billing:3,en'):
-- the un-park job of an agent with levels carries them (see wake_parked).
local function agent_items(sorted_skills, levels)
  local items = {}
  for i, skill in ipairs(sorted_skills) do
    local level = level_of(levels, skill)
    items[i] = level > 1 and (skill .. ':' .. level) or skill
  end
  return table.concat(items, ',')
end

local function json_get(key, path)
  local raw = redis.call('JSON.GET', key, path)
  if not raw then return nil end
  return cjson.decode(raw)
end

local function event(tag, kind, ...)
  redis.call('XADD', tag .. ':events', 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'type', kind, ...)
end

local function wake(tag, why)
  redis.call('XADD', tag .. ':wake', 'MAXLEN', '~', WAKE_MAXLEN, '*', 'why', why)
end

-- A center's keys are '{acd:<center>}:...': the name is what lies inside the tag.
local function center_of(tag)
  return string.match(tag, '^{acd:(.*)}$') or tag
end

-- While a center is being deleted (see acd_center_delete) nothing may add to it: its
-- deletion then ends, and what it deletes stays deleted. Contacts may still end.
local function refuse_if_deleting(tag)
  if redis.call('HEXISTS', tag .. ':meta', 'deleting') == 1 then
    fail('STATE center ' .. center_of(tag) .. ' is being deleted (DELETE it again if '
      .. 'that was interrupted)')
  end
end

-- While a skill is being deleted (see acd_skill_delete) no contact needing it is queued
-- and no agent gains it: the deletion then ends, and what it checked stays true.
-- marks: meta's 'deleting_skill:<skill>' fields of these skills, from marks[after + 1] on.
local function refuse_marked_skills(skills, marks, after)
  for i, skill in ipairs(skills) do
    if marks[after + i] then
      fail('STATE skill ' .. skill .. ' is being deleted (DELETE it again if that '
        .. 'was interrupted)')
    end
  end
end

local function refuse_skills_being_deleted(tag, skills)
  if #skills == 0 then return end
  local fields = {}
  for i, skill in ipairs(skills) do fields[i] = 'deleting_skill:' .. skill end
  refuse_marked_skills(skills, redis.call('HMGET', tag .. ':meta', unpack(fields)), 0)
end

local function last_wake_id(tag)
  local last = redis.call('XREVRANGE', tag .. ':wake', '+', '-', 'COUNT', 1)
  if #last == 0 then return '0-0' end
  return last[1][1]
end

-- What a walk chose from, for the assignment's explanation (see "Explanations"): the
-- agents of the deciding page present in every set, in the walk's order (the rule's),
-- their scores there (rows: the page WITHSCORES), and how far the smallest set was read.
local function saw(seen, skill, size, read, candidates, rows)
  local score_of = {}
  for j = 1, #rows, 2 do score_of[rows[j]] = rows[j + 1] end
  seen.candidates, seen.score_of = candidates, score_of
  seen.skill, seen.size, seen.read = skill, size, read
end

-- The longest available agent that has every skill: walk the smallest availability set
-- in score order (oldest first) and keep the first agent present in all the others.
-- No intersection is built; with plenty of agents the first page answers.
-- sizes caches the sets' sizes (skill -> ZCARD) for one dispatch call; claim keeps it
-- exact. Which set is walked only changes the cost, never the answer: an agent's score
-- is the same in all its sets, so any of them walked in order meets the LAA agent first.
-- set_of names the sets (k_avail for LAA; see "Agent choice" below for the other);
-- accept, if given, picks among a page's agents present in every set (nil: none fits).
-- seen, if given, is told what the answer was chosen from (see "Explanations").
local function first_in_all(tag, skills, sizes, set_of, accept, seen)
  local sets, first, smallest = {}, 1, nil
  for i, skill in ipairs(skills) do
    local size = sizes[skill]
    if size == nil then
      size = redis.call('ZCARD', set_of(tag, skill))
      sizes[skill] = size
    end
    if size == 0 then return nil end
    sets[i] = set_of(tag, skill)
    if smallest == nil or size < smallest then first, smallest = i, size end
  end
  sets[1], sets[first] = sets[first], sets[1]
  -- One skill: its set's first agent is the answer, the only one worth reading.
  local page, start = (#sets == 1 and not accept and not seen) and 1 or 8, 0
  while start < smallest do
    local candidates, rows = nil, nil
    if seen then
      rows = redis.call('ZRANGE', sets[1], start, start + page - 1, 'WITHSCORES')
      candidates = {}
      for j = 1, #rows, 2 do candidates[#candidates + 1] = rows[j] end
    else
      candidates = redis.call('ZRANGE', sets[1], start, start + page - 1)
    end
    local read = start + #candidates
    for i = 2, #sets do
      if #candidates == 0 then break end
      local scores = redis.call('ZMSCORE', sets[i], unpack(candidates))
      local kept = {}
      for j, score in ipairs(scores) do
        if score then kept[#kept + 1] = candidates[j] end
      end
      candidates = kept
    end
    if #candidates > 0 then
      if seen then saw(seen, skills[first], smallest, read, candidates, rows) end
      if not accept then return candidates[1] end
      local chosen = accept(candidates)
      if chosen then return chosen end
    end
    start = start + page
    page = math.min(page * 4, 512)
  end
  return nil
end

-- A walk's accept that skips agents (skip: a set, nil: none; see "Offers"), telling seen
-- what is left to choose from.
local function skipping(skip, seen)
  if not skip then return nil end
  return function(candidates)
    local kept = {}
    for _, aid in ipairs(candidates) do if not skip[aid] then kept[#kept + 1] = aid end end
    if seen then seen.candidates = kept end
    return kept[1]
  end
end

-- needs: a combination's items ('en', 'billing:3'; see "Proficiency" above).
-- skip (nil: none): agents the contact may not be offered now (see "Offers").
local function longest_available(tag, needs, sizes, seen, skip)
  return first_in_all(tag, needs, sizes, k_need, skipping(skip, seen), seen)
end

-- Whether some available agent has all these skills (with one skill, anyone in its set).
-- needs: a combination's items, as for longest_available.
local function anyone_available(tag, needs)
  if #needs == 1 then return redis.call('ZCARD', k_need(tag, needs[1])) > 0 end
  return longest_available(tag, needs, {}) ~= nil
end

--[[ Agent choice: fewest skills first, then longest available (issue 14).
A center's meta 'agent_choice' is 'longest_available' (absent: the default, LAA) or
'fewest_skills': the qualified agent with the fewest skills in all wins, ties by LAA, so
specialists take what they can and generalists stay free for the contacts only they can
serve (OpenACD's tie-break).
Bounded like LAA, by the same walk: {tag}:fewest:<skill> holds the agents of
avail:<skill> scored skills * 1e13 + available_since (ms, < 1e13 until the year 2286;
exact in a double up to 900 skills). That score too is the same in each of an agent's
sets, so the walk meets the best agent first. Cost per choice: the LAA walk's (a ZCARD per
skill, cached for the round, a page of the smallest set, a ZMSCORE per other skill) plus
one ZMSCORE of avail:<first skill>, which passes over an entry a write around the
functions left behind (a lesson's textbook dispatcher takes agents out of avail:<skill>
only); independent of the number of agents while the first page holds a qualified one.
Why a flag in the agent document ('in_fewest'): the functions that move agents in and out
of avail:<skill> read the agent's document anyway, so the flag tells them to keep these
sets too without reading the center's meta: the default (LAA) path runs no extra command.
Switching (acd_agent_choice) is a bulk operation: a run marks meta 'agent_choice_index'
'building' (or 'clearing'), sets (clears) every agent's flag and entries batch by batch,
and its last call makes it 'ready' (removes it). Dispatch walks these sets only when
'ready'; while a switch is under way it ranks by LAA, and while any flag may be set a
claimed agent leaves these sets whatever its flag (a ZREM of nobody changes nothing). ]]
local FEWEST_SPAN = 1e13

local function k_fewest(tag, skill) return tag .. ':fewest:' .. skill end

local function fewest_add(tag, id, skills, since)
  local score = string.format('%.0f', #skills * FEWEST_SPAN + tonumber(since))
  for _, skill in ipairs(skills) do redis.call('ZADD', k_fewest(tag, skill), score, id) end
end

local function fewest_remove(tag, id, skills)
  for _, skill in ipairs(skills) do redis.call('ZREM', k_fewest(tag, skill), id) end
end

-- needs: the combination's items. The fewest sets know no levels: a candidate must also
-- be in the set of each need with a minimum (which also shows it is still available).
local function fewest_skills_first(tag, needs, sizes, seen, skip)
  local skills, live = {}, {k_need(tag, needs[1])}
  for i, item in ipairs(needs) do
    skills[i] = split_need(item)
    if i > 1 and string.find(item, ':', 1, true) then live[#live + 1] = k_need(tag, item) end
  end
  return first_in_all(tag, skills, sizes, k_fewest, function(candidates)
    local kept = candidates
    for _, key in ipairs(live) do
      local scores, still = redis.call('ZMSCORE', key, unpack(kept)), {}
      for j, score in ipairs(scores) do if score then still[#still + 1] = kept[j] end end
      if #still == 0 then return nil end
      kept = still
    end
    if skip then
      local allowed = {}
      for _, aid in ipairs(kept) do if not skip[aid] then allowed[#allowed + 1] = aid end end
      kept = allowed
    end
    if seen then seen.candidates = kept end  -- an agent no longer available is no candidate
    return kept[1]
  end, seen)
end

--[[ Agent choice best_proficiency (issue 14): the qualified agent whose lowest level over
the contact's skills is highest (its weakest skill decides how well it serves this
contact), ties by LAA. Exact and bounded: for L = 5 down to 2, the LAA walk over each
need raised to L (avail_at:<L>:<skill>, or the need's own minimum if higher); the first
level where some agent has them all gives the answer. At most 4 walks more than LAA; a
level nobody has costs a ZCARD (cached for the round) and stops there. Returns nil when
nobody has every skill at level 2 or more: then LAA decides among everyone qualified. ]]
local function best_proficiency(tag, needs, sizes, seen, skip)
  for level = MAX_LEVEL, 2, -1 do
    local raised, any = {}, false
    for i, item in ipairs(needs) do
      local skill, min = split_need(item)
      if min < level then any = true end
      raised[i] = skill .. ':' .. math.max(min, level)
    end
    if not any then return nil end  -- the needs' own minimums: the LAA walk itself
    local aid = first_in_all(tag, raised, sizes, k_need, skipping(skip, seen), seen)
    if aid then return aid end
  end
  return nil
end

-- The agent a round gives a contact with these needs. fewest: nil when no agent may be in
-- the fewest sets (the default), else {ready = walk them?, sizes = their ZCARD cache};
-- best: the agent choice best_proficiency, in a center where some agent has levels.
-- seen: nil, or a table the walk fills for the assignment's explanation (its rule too).
-- skip (nil: none): agents the contact may not be offered now (see "Offers").
local function choose_agent(tag, needs, sizes, fewest, best, seen, skip)
  if fewest and fewest.ready then
    local aid = fewest_skills_first(tag, needs, fewest.sizes, seen, skip)
    if aid then
      if seen then seen.rule = 'fewest_skills' end
      return aid
    end
  end
  if best then
    local aid = best_proficiency(tag, needs, sizes, seen, skip)
    if aid then
      if seen then seen.rule = 'best_proficiency' end
      return aid
    end
  end
  if seen then seen.rule = 'longest_available' end
  return longest_available(tag, needs, sizes, seen, skip)
end

-- A new agent joins the fewest sets' bookkeeping when a switch to fewest_skills started
-- (or ended) before it was created. Also what refuse_if_deleting checks, in one read.
local function refuse_if_deleting_or_indexed(tag)
  local meta = redis.call('HMGET', tag .. ':meta', 'deleting', 'agent_choice_index')
  if meta[1] then refuse_if_deleting(tag) end
  return meta[2] == 'building' or meta[2] == 'ready'
end

-- An agent of the fewest sets gained (op 'add') or lost a skill: its count changed, so
-- its score in every set does; it leaves the lost skill's set.
local function fewest_skill_changed(tag, id, agent, skill, op)
  if not agent.in_fewest then return end
  local skills = {}
  for _, s in ipairs(agent.skills) do if s ~= skill then skills[#skills + 1] = s end end
  if op == 'add' then skills[#skills + 1] = skill else redis.call('ZREM', k_fewest(tag, skill), id) end
  if agent.state == 'available' then fewest_add(tag, id, skills, agent.available_since) end
end

-- A skill being deleted (acd_skill_delete) left this agent's document: with the center's
-- fewest sets in use, its count changed too.
local function fewest_skill_deleted(tag, id, skill)
  redis.call('ZREM', k_fewest(tag, skill), id)
  local agent = json_get(k_agent(tag, id), '.')
  if agent and agent.in_fewest and agent.state == 'available' then
    fewest_add(tag, id, agent.skills, agent.available_since)
  end
end

-- A round claimed this agent: it leaves the fewest sets (sizes: the round's cache of
-- their sizes, see first_in_all).
local function fewest_claimed(tag, id, skills, sizes)
  for _, skill in ipairs(skills) do
    local removed = redis.call('ZREM', k_fewest(tag, skill), id)
    if sizes[skill] then sizes[skill] = sizes[skill] - removed end
  end
end

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
local UNPARK_UNITS = 512
local DISPATCH_WORK = 400  -- see acd_dispatch: 25 assignments of agents with 8 skills
local unpark_units = UNPARK_UNITS  -- what is left for this call; register() resets it

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

--[[ Agent states (issue 14): available, unavailable (a break when it has a reason),
logged_out, and the ACD's own busy, wrap_up (and offered, see "Offers").
Why a break is 'unavailable' with a reason (document member 'reason', a short code like
'lunch') rather than a state of its own: that is what real ACDs do ("not ready" with a
reason code), and every rule about an agent who takes no contact (no availability set,
not ready after a contact, center close) applies to a break unchanged, so a client that
knows only 'unavailable' stays right even when the ACD itself puts an agent on a break
(missed offers). logged_out is its own state because one rule differs: opening the
center makes agents available, and a logged-out agent is not at work (nor is one on a
break: opening ends neither). ]]
local REASON_MAX = 32

-- A state a caller may ask for: nil when it is not one; reason must be a short code.
local function check_wanted(state, reason)
  if state ~= 'available' and state ~= 'unavailable' and state ~= 'logged_out' then
    fail('INVALID state ' .. tostring(state) .. ': available, unavailable or logged_out')
  end
  if reason == '' then reason = nil end
  if reason and (state ~= 'unavailable' or #reason > REASON_MAX
                 or not string.match(reason, '^[a-z][a-z0-9_]*$')) then
    fail('INVALID break reason ' .. reason .. ': a code of 1-32 lowercase letters, digits'
      .. " or '_', with state unavailable")
  end
  return reason
end

-- Opening or closing the center leaves alone an agent on a break or logged out, or
-- about to be (after its contact): each chose that itself.
local function keeps_own_state(agent)
  return agent.state == 'logged_out' or agent.reason ~= nil or agent.next_state == 'logged_out'
    or agent.next_reason ~= nil
end

-- The fields of an event about a state and its reason (none when there is no reason, so
-- the events of agents who never take a break are as before).
local function with_reason(reason, ...)
  local fields = {...}
  if reason then
    fields[#fields + 1] = 'reason'
    fields[#fields + 1] = reason
  end
  return unpack(fields)
end

-- What an agent becomes when its contact (or wrap-up) ends: what it asked for meanwhile
-- (next_state, next_reason), else available.
local function state_after(agent)
  return agent.next_state or 'available', agent.next_reason
end

-- The agent leaves busy, wrap_up or offered for state_after's state, available since
-- 'since'; returns that state. The caller emits the event.
local function leave_for(tag, id, agent, since, extra)
  local after, reason = state_after(agent)
  local at = 'null'
  if after == 'available' then
    make_available(tag, id, agent, since)
    at = string.format('%d', since)
  end
  redis.call('JSON.MERGE', k_agent(tag, id), '.', '{"state":' .. cjson.encode(after)
    .. ',"reason":' .. (reason and cjson.encode(reason) or 'null') .. ',"available_since":'
    .. at .. ',"contact":null,"next_state":null,"next_reason":null' .. (extra or '') .. '}')
  return after, reason
end

--[[ Wrap-up (after-contact work, issue 14).
A center's meta 'wrap_up_ms' (absent: 0, none) is how long an agent whose contact is
completed stays in state 'wrap_up' before it becomes available: in no availability set,
on no contact, with an entry in {tag}:wrap_up (score: the ms its wrap-up ends, server
clock; also its document's wrap_up_until). 'unavailable' asked meanwhile (or before, while
busy) is kept in next_state and applies at the end, as "not ready after wrap-up" does in
real ACDs; 'available' is refused unless it cancels that. acd_wrap_up_end ends one now.
The timer runs in Redis, not in a client: every dispatch round (any dispatcher's) first
ends the wrap-ups that are due, WRAP_UP_RELEASES at most per call, so a dispatcher killed
during a wrap-up strands nobody; the round's reply tells dispatchers when the next is due.
meta 'wrap_up_due' is never later than the earliest end in {tag}:wrap_up (an early end
can leave it earlier: the round then finds nothing due and reads the next), so a round
with none due pays only for reading that field with the others it reads. ]]
local WRAP_UP_RELEASES = 25

local function k_wrap_up(tag) return tag .. ':wrap_up' end

-- The agent on a completed contact starts its wrap-up. next_state stays: asked while
-- busy, it applies at the wrap-up's end.
local function start_wrap_up(tag, id, now, wrap_ms)
  local ends = string.format('%d', now + wrap_ms)
  redis.call('ZADD', k_wrap_up(tag), ends, id)
  redis.call('JSON.MERGE', k_agent(tag, id), '.', '{"state":"wrap_up","available_since":null,'
    .. '"contact":null,"wrap_up_until":' .. ends .. '}')
  event(tag, 'wrap_up_started', 'agent', id, 'until', ends)
  local due = redis.call('HGET', tag .. ':meta', 'wrap_up_due')
  if not due or tonumber(ends) < tonumber(due) then
    redis.call('HSET', tag .. ':meta', 'wrap_up_due', ends)
    -- Blocked dispatchers only know the ends that were due before this one: a round
    -- tells them this one (see acd_dispatch's reply).
    wake(tag, 'wrap_up')
  end
end

-- The wrap-up ends: the agent becomes what it asked for meanwhile, else available since
-- 'since' (its LAA score: the wrap-up's end when the timer ends it, now when ended early).
-- how: 'timer' | 'ended' (acd_wrap_up_end) | 'repair'. Returns the state it is in now.
local function finish_wrap_up(tag, id, agent, since, how)
  redis.call('ZREM', k_wrap_up(tag), id)
  local after, reason = leave_for(tag, id, agent, since, ',"wrap_up_until":null')
  event(tag, 'wrap_up_ended', with_reason(reason, 'agent', id, 'state', after, 'how', how))
  return after
end

-- Ends the wrap-ups due by the server's clock (due: meta 'wrap_up_due', nil when none is
-- pending), the earliest first, at most WRAP_UP_RELEASES. Returns how many it ended and
-- the ms until the next end (0: more are due already; nil: none pending).
local function release_wrap_ups(tag, due)
  if not due then return 0, nil end
  local now = now_ms()
  if now < due then return 0, due - now end
  local key, ended = k_wrap_up(tag), 0
  local rows = redis.call('ZRANGE', key, '-inf', now, 'BYSCORE', 'LIMIT', 0, WRAP_UP_RELEASES,
    'WITHSCORES')
  for i = 1, #rows, 2 do
    local agent = json_get(k_agent(tag, rows[i]), '.')
    if agent and agent.state == 'wrap_up' then
      finish_wrap_up(tag, rows[i], agent, tonumber(rows[i + 1]), 'timer')
      ended = ended + 1
    else
      redis.call('ZREM', key, rows[i])  -- deleted or changed around the functions
    end
  end
  local next_end = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if #next_end == 0 then
    redis.call('HDEL', tag .. ':meta', 'wrap_up_due')
    return ended, nil
  end
  redis.call('HSET', tag .. ':meta', 'wrap_up_due', next_end[2])
  return ended, math.max(0, tonumber(next_end[2]) - now)
end

-- A dispatch round's reply {assigned, wake id, pairs...} ends with the ms until the next
-- wrap-up end while one is pending, so a dispatcher's wait ends in time for it; when more
-- are due already, a 'more' wake (after the id returned) makes the next round start now.
local function with_wrap_up(tag, reply, wrap_in)
  if wrap_in == nil then return reply end
  if wrap_in == 0 then wake(tag, 'more') end
  reply[#reply + 1] = wrap_in
  return reply
end

--[[ Steps by waiting time: requirement relaxation, overflow, maximum wait (issue 14).
A contact may carry steps: its own (acd_contact_create's ARGV[6]) or else its center's
default for its combination ({tag}:steps, combination -> steps JSON; meta 'step_defaults'
counts them, read with 'last_queued', so a center without any pays nothing):
  {after_ms, skills}  once it has waited after_ms it needs these skills instead: fewer
                      (relaxed) or others (overflowed). It keeps its place: its queue score
                      and its virtual arrival stay, so it stands in the new FIFO as if it
                      had always been there (index_remove + index_add with its score).
  {after_ms, close}   once it has waited after_ms it ends, state 'closed', with that
                      reason (the maximum wait); keep_s: how long it stays readable.
Its document holds steps and, once one is taken, steps_taken (the next is steps[#taken+1]).
The timer is Redis's, not a client's: {tag}:steps_due (score: the ms the contact's next
step is due, queued_at + after_ms), and meta 'step_due' is never later than its earliest
entry (as wrap_up_due), so a round with no step pending pays one more field of an HMGET it
makes anyway. Each dispatch round that may assign takes the due steps first (at most
STEP_RELEASES), and tells dispatchers when the next is due with its wrap-up timer; the
reconciler takes them too (acd_steps_release). A step due while its contact is assigned
or ended does nothing: the entry is dropped (a contact requeued by a repair is scheduled
again). A step into a skill being deleted is skipped: no contact may start needing it. ]]
local STEP_RELEASES = 25

local function k_steps_due(tag) return tag .. ':steps_due' end

-- Steps as stored: after_ms increasing whole ms > 0; each names sorted skills or a close
-- reason, not both; a close is last. The Python side checks the same with clearer words.
local function check_steps(steps)
  if type(steps) ~= 'table' then fail('INVALID steps: a JSON array') end
  local before = 0
  for i, step in ipairs(steps) do
    local after = type(step) == 'table' and tonumber(step.after_ms)
    if not after or after <= before or after ~= math.floor(after) then
      fail('INVALID step ' .. i .. ': after_ms must be whole ms, more than the step before')
    end
    before = after
    local skills = type(step.skills) == 'table' and #step.skills > 0
    if skills == (type(step.close) == 'string') then
      fail('INVALID step ' .. i .. ': give skills (non-empty) or close, not both')
    end
    if step.close and i < #steps then fail('INVALID step ' .. i .. ': a close is the last') end
  end
  return steps
end

-- The contact's next step is due at ms due (nil: none left).
local function schedule_step(tag, cid, due)
  if not due then
    redis.call('ZREM', k_steps_due(tag), cid)
    return
  end
  local at = string.format('%d', due)
  redis.call('ZADD', k_steps_due(tag), at, cid)
  local first = redis.call('HGET', tag .. ':meta', 'step_due')
  if not first or due < tonumber(first) then
    redis.call('HSET', tag .. ':meta', 'step_due', at)
    wake(tag, 'step')  -- blocked dispatchers only know the steps due before this one
  end
end

local function next_step(contact)
  if contact.state ~= 'queued' or type(contact.steps) ~= 'table' then return nil end
  local taken = type(contact.steps_taken) == 'table' and #contact.steps_taken or 0
  return contact.steps[taken + 1]
end

local function record_step(key, contact, taken)
  if type(contact.steps_taken) == 'table' and #contact.steps_taken > 0 then
    redis.call('JSON.ARRAPPEND', key, '.steps_taken', cjson.encode(taken))
  else
    redis.call('JSON.SET', key, '.steps_taken', '[' .. cjson.encode(taken) .. ']')
  end
end

local function is_subset(small, big)
  local has = {}
  for _, s in ipairs(big) do has[s] = true end
  for _, s in ipairs(small) do if not has[s] then return false end end
  return #small <= #big  -- the same skills in another combination: minimum levels dropped
end

-- Takes a queued contact's next step (step) now.
local function take_step(tag, cid, contact, step, now)
  -- from: its combination, minimum levels included ("Proficiency"); a step's skills are
  -- needed at any level, so a step also drops the minimum levels.
  local key, from = k_contact(tag, cid), contact_sig(contact)
  local wait = math.max(0, now - tonumber(contact.queued_at))
  local taken = {after_ms = step.after_ms, at = now, before = contact.skills}
  local later = contact.steps[(type(contact.steps_taken) == 'table'
    and #contact.steps_taken or 0) + 2]
  if step.close then
    unqueue({tag .. ':queue', tag .. ':queue'}, cid, from)
    taken.close = step.close
    record_step(key, contact, taken)
    redis.call('JSON.MSET', key, '.state', '"closed"', key, '.ended_at', now, key,
      '.close_reason', cjson.encode(step.close))
    redis.call('EXPIRE', key, tonumber(step.keep_s) or 3600)
    redis.call('ZREM', k_steps_due(tag), cid)
    redis.call('HINCRBY', tag .. ':stats', 'closed', 1)
    redis.call('HINCRBY', tag .. ':outcomes', 'closed|' .. from, 1)
    event(tag, 'contact_closed', 'contact', cid, 'reason', step.close, 'wait_ms', wait,
      'skills', from)
    return
  end
  table.sort(step.skills)  -- a combination's name lists its skills sorted
  local to = table.concat(step.skills, ',')
  local deleting = false
  for _, skill in ipairs(step.skills) do
    if redis.call('HEXISTS', tag .. ':meta', 'deleting_skill:' .. skill) == 1 then
      deleting = true
    end
  end
  if deleting then
    taken.skipped = 'skill_deleting'
    record_step(key, contact, taken)
    event(tag, 'contact_step_skipped', 'contact', cid, 'skills', to, 'reason', 'skill_deleting')
  elseif to ~= from then
    local score = redis.call('ZSCORE', k_combo(tag, from), cid)
      or virtual_score(redis.call('ZSCORE', tag .. ':queue', cid),
        tonumber(contact.head_start_ms) or 0)
    index_remove(tag, from, cid)
    index_add(tag, to, score, cid, true)
    taken.skills = step.skills
    record_step(key, contact, taken)
    redis.call('JSON.SET', key, '.skills', cjson.encode(step.skills))
    if contact.min_levels then redis.call('JSON.MERGE', key, '.', '{"min_levels":null}') end
    if is_subset(step.skills, contact.skills) then
      redis.call('HINCRBY', tag .. ':stats', 'relaxed', 1)
      redis.call('HINCRBY', tag .. ':outcomes', 'relaxed|' .. from, 1)
      event(tag, 'contact_relaxed', 'contact', cid, 'from', from, 'to', to, 'wait_ms', wait)
    else
      redis.call('HINCRBY', tag .. ':stats', 'overflowed', 1)
      redis.call('HINCRBY', tag .. ':outcomes', 'overflowed|' .. from, 1)
      event(tag, 'contact_overflowed', 'contact', cid, 'from', from, 'to', to, 'wait_ms', wait)
    end
    if redis.call('HEXISTS', tag .. ':parked_on', to) == 0 then wake(tag, 'step') end
  else
    taken.skills = step.skills
    record_step(key, contact, taken)
  end
  schedule_step(tag, cid, later and tonumber(contact.queued_at) + later.after_ms or nil)
end

-- Takes the steps due by the server's clock (due: meta 'step_due', nil when none is
-- pending), the earliest first, at most STEP_RELEASES. Returns how many it took and the
-- ms until the next is due (0: more are due already; nil: none pending).
local function release_steps(tag, due)
  if not due then return 0, nil end
  local now = now_ms()
  if now < due then return 0, due - now end
  local key, taken = k_steps_due(tag), 0
  for _, cid in ipairs(redis.call('ZRANGE', key, '-inf', now, 'BYSCORE', 'LIMIT', 0,
      STEP_RELEASES)) do
    local contact = json_get(k_contact(tag, cid), '.')
    local step = contact and next_step(contact)
    if step and redis.call('ZSCORE', tag .. ':queue', cid) then
      take_step(tag, cid, contact, step, now)
      taken = taken + 1
    else
      redis.call('ZREM', key, cid)  -- assigned, ended or gone: its steps are over
    end
  end
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if #first == 0 then
    redis.call('HDEL', tag .. ':meta', 'step_due')
    return taken, nil
  end
  redis.call('HSET', tag .. ':meta', 'step_due', first[2])
  return taken, math.max(0, tonumber(first[2]) - now)
end

-- A queued contact with a step to take has its entry in the due set at queued_at + that
-- step's after_ms, and meta 'step_due' is no later (acd_repair_contact).
local function fix_step_due(tag, cid, contact, changed)
  local step = next_step(contact)
  if not step then return changed end
  local due = tonumber(contact.queued_at) + step.after_ms
  local at = redis.call('ZSCORE', k_steps_due(tag), cid)
  local first = redis.call('HGET', tag .. ':meta', 'step_due')
  if not at or tonumber(at) ~= due or not first or tonumber(first) > due then
    schedule_step(tag, cid, due)
    changed[#changed + 1] = 'step_due'
  end
  return changed
end

--[[ Offers (issue 14): with a center's offer timeout (meta 'offer_ms'; absent: off, a
round assigns as it always did), a round offers instead of assigning: the contact and the
agent are 'offered' to each other (the agent reserved: in no availability set, so no other
contact gets it; the contact out of the queue and the index, so no other agent does), with
a deadline. Accepted (acd_offer_accept), it is an assignment, as a round makes one.
Rejected (acd_offer_reject) or timed out, it is a miss: the contact goes back to its place
(its queue score, kept in its document as 'queue_score', and so its virtual arrival: it
keeps its age), the agent is available again (since now) and is not offered that contact
again for the center's back-off (meta 'offer_backoff_ms'); after 'offer_misses' missed
offers in a row it goes on a break instead (reason 'missed_offers').
Timers run in Redis, like wrap-ups: {tag}:offers holds 'o|<contact>' scored by its offer's
deadline and 'x|<contact>|<agent>' by the end of an exclusion; meta 'offer_due' is never
later than its first score; every dispatch round first expires what is due, OFFER_EXPIRIES
at most per call, so no client needs to be alive for a timeout.
Exclusions: {tag}:excluded maps a contact to {agent: ms its exclusion ends}. A round reads
it only while it holds anything (one HLEN per round), and a contact's entry only for a
combination's head; the walk skips those agents. A head whose only qualified agents are
excluded parks its combination; the exclusion's end moves it back to ready (the excluded
agent, still available, wakes nothing). So a combination whose head excluded the only free
agents waits, for at most the back-off, unless another agent becomes available. ]]
local OFFER_EXPIRIES = 25
local MISSED_OFFERS = 'missed_offers'

local function k_offers(tag) return tag .. ':offers' end
local function k_excluded(tag) return tag .. ':excluded' end

-- A timer (member of {tag}:offers) ends at 'at': the center's next due time is no later.
local function offer_timer(tag, member, at)
  local ends = string.format('%d', at)
  redis.call('ZADD', k_offers(tag), ends, member)
  local due = redis.call('HGET', tag .. ':meta', 'offer_due')
  if not due or at < tonumber(due) then
    redis.call('HSET', tag .. ':meta', 'offer_due', ends)
    wake(tag, 'offer')  -- blocked dispatchers learn of it from the next round's reply
  end
end

-- The agents a contact may not be offered now (nil: none), one HGET.
local function excluded_for(tag, cid)
  local raw = redis.call('HGET', k_excluded(tag), cid)
  return raw and cjson.decode(raw) or nil
end

-- The contact goes back to its place: the queue at its queue score, its combination at
-- its virtual arrival (index_add counts it again and readies or parks its combination).
local function requeue_offered(tag, cid, contact)
  local score = string.format('%.3f', contact.queue_score or contact.queued_at)
  redis.call('JSON.MERGE', k_contact(tag, cid), '.',
    '{"state":"queued","agent":null,"offer_until":null,"queue_score":null}')
  redis.call('ZADD', tag .. ':queue', score, cid)
  local head_start = tonumber(contact.head_start_ms) or 0
  index_add(tag, contact_sig(contact), virtual_score(score, head_start), cid, true)
  if contact.steps then  -- its step timer was dropped while it was out of the queue
    contact.state = 'queued'
    fix_step_due(tag, cid, contact, {})
  end
end

-- An offer is missed (how: 'rejected' | 'timed_out'): the contact back to its place, the
-- agent excluded from it for the back-off, and available since now, or what it asked for
-- meanwhile, or on a break after the center's limit of missed offers in a row.
local function miss_offer(tag, cid, contact, aid, agent, how, now)
  redis.call('ZREM', k_offers(tag), 'o|' .. cid)
  requeue_offered(tag, cid, contact)
  local limits = redis.call('HMGET', tag .. ':meta', 'offer_misses', 'offer_backoff_ms')
  local backoff = tonumber(limits[2] or 0)
  if backoff > 0 then
    local excluded = excluded_for(tag, cid) or {}
    excluded[aid] = now + backoff
    redis.call('HSET', k_excluded(tag), cid, cjson.encode(excluded))
    offer_timer(tag, 'x|' .. cid .. '|' .. aid, now + backoff)
  end
  local missed = (tonumber(agent.missed_offers) or 0) + 1
  local most = tonumber(limits[1] or 0)
  if agent.next_state == nil and most > 0 and missed >= most then
    agent.next_state, agent.next_reason = 'unavailable', MISSED_OFFERS
  end
  if agent.next_state ~= nil then missed = 0 end  -- a break or a log-out starts afresh
  local after, reason = leave_for(tag, aid, agent, now, ',"offer_until":null,"missed_offers":'
    .. (missed > 0 and string.format('%d', missed) or 'null'))
  event(tag, 'offer_' .. how, with_reason(reason, 'contact', cid, 'agent', aid, 'state', after))
  wake(tag, 'offer')
end

-- The agent's and the contact's documents of an offer, if both still say so (else nil).
local function offer_of(tag, cid, aid)
  local contact = json_get(k_contact(tag, cid), '.')
  if not contact or contact.state ~= 'offered' then return nil end
  aid = aid or contact.agent
  local agent = type(aid) == 'string' and json_get(k_agent(tag, aid), '.')
  if not agent or agent.state ~= 'offered' or agent.contact ~= cid or contact.agent ~= aid then
    return nil
  end
  return contact, aid, agent
end

-- An exclusion is over: the agent may be offered the contact again, and the contact's
-- combination, if parked for lack of anyone else, is looked at again.
local function end_exclusion(tag, cid, aid)
  local excluded = excluded_for(tag, cid)
  if excluded then
    excluded[aid] = nil
    if next(excluded) == nil then
      redis.call('HDEL', k_excluded(tag), cid)
    else
      redis.call('HSET', k_excluded(tag), cid, cjson.encode(excluded))
    end
  end
  local contact = json_get(k_contact(tag, cid), '.')
  if contact and redis.call('ZSCORE', tag .. ':queue', cid) then
    move_if_parked(tag, contact_sig(contact))  -- its combination, minimum levels too
    wake(tag, 'offer')
  end
end

-- Expires the offers and ends the exclusions that are due by the server's clock (due:
-- meta 'offer_due', nil when none is pending), the earliest first, at most
-- OFFER_EXPIRIES. Returns how many and the ms until the next (0: more due; nil: none).
local function expire_offers(tag, due)
  if not due then return 0, nil end
  local now = now_ms()
  if now < due then return 0, due - now end
  local key, done = k_offers(tag), 0
  for _, member in ipairs(redis.call('ZRANGE', key, '-inf', now, 'BYSCORE', 'LIMIT', 0,
                                     OFFER_EXPIRIES)) do
    redis.call('ZREM', key, member)
    local kind, cid, aid = string.match(member, '^(%a)|([^|]+)|?(.*)$')
    if kind == 'o' then
      local contact, agent_id, agent = offer_of(tag, cid, nil)
      if contact then miss_offer(tag, cid, contact, agent_id, agent, 'timed_out', now) end
    elseif kind == 'x' then
      end_exclusion(tag, cid, aid)
    end
    done = done + 1
  end
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if #first == 0 then
    redis.call('HDEL', tag .. ':meta', 'offer_due')
    return done, nil
  end
  redis.call('HSET', tag .. ':meta', 'offer_due', first[2])
  return done, math.max(0, tonumber(first[2]) - now)
end

-- The sooner of two timers in ms (nil: none).
local function sooner(a, b)
  if a == nil then return b end
  if b == nil then return a end
  return math.min(a, b)
end

-- An offered contact ends before its answer (the caller hung up): it is abandoned as a
-- waiting one is; the agent is available again, not counted as missing it.
local function withdraw_offer(tag, cid, contact, now)
  redis.call('ZREM', k_offers(tag), 'o|' .. cid)
  local aid = contact.agent
  local agent = type(aid) == 'string' and json_get(k_agent(tag, aid), '.')
  if agent and agent.state == 'offered' and agent.contact == cid then
    local after, reason = leave_for(tag, aid, agent, now, ',"offer_until":null')
    if after == 'available' then wake(tag, 'agent') end
    event(tag, 'offer_withdrawn', with_reason(reason, 'contact', cid, 'agent', aid, 'state', after))
  end
  redis.call('JSON.MERGE', k_contact(tag, cid), '.',
    '{"agent":null,"offer_until":null,"queue_score":null}')
end

-- An agent on a contact (or in wrap-up, or offered one) keeps it until it ends: no state
-- change releases it. 'unavailable' (with or without a reason) or 'logged_out' asked then
-- is kept in next_state (and next_reason) and applies when it ends (end_contact_of);
-- 'available' cancels it, and is refused (STATE, naming the contact) when none is
-- pending: an agent cannot become available before its contact ends.
-- quiet: the caller wakes the dispatchers once for a batch of agents (acd_center_state).
local function set_agent_state(tag, id, agent, state, now, quiet, reason)
  local key = k_agent(tag, id)
  if agent.state == 'busy' or agent.state == 'wrap_up' or agent.state == 'offered' then
    local pending = agent.next_state ~= nil
    if state ~= 'available' then
      if agent.next_state == state and agent.next_reason == reason then return end
      redis.call('JSON.MERGE', key, '.', '{"next_state":' .. cjson.encode(state)
        .. ',"next_reason":' .. (reason and cjson.encode(reason) or 'null') .. '}')
    else
      if not pending and agent.state == 'wrap_up' then
        fail('STATE agent ' .. id .. ' is in wrap-up until ' .. tostring(agent.wrap_up_until)
          .. ': it becomes available when that ends (or end it now)')
      end
      if not pending then
        fail('STATE agent ' .. id .. ' is on contact ' .. tostring(agent.contact)
          .. ': it becomes available when that contact ends')
      end
      redis.call('JSON.MERGE', key, '.', '{"next_state":null,"next_reason":null}')
    end
    event(tag, 'agent_next_state', with_reason(reason, 'agent', id, 'next_state', state))
    return
  end
  if agent.state == state and agent.reason == reason then return end
  if state == 'available' then
    make_available(tag, id, agent, now)
    redis.call('JSON.MERGE', key, '.', '{"state":"available","reason":null,"available_since":'
      .. string.format('%d', now) .. '}')
    if not quiet then wake(tag, 'agent') end
  else
    make_unavailable(tag, id, agent)
    redis.call('JSON.MERGE', key, '.', '{"state":' .. cjson.encode(state) .. ',"reason":'
      .. (reason and cjson.encode(reason) or 'null') .. ',"available_since":null}')
  end
  event(tag, 'agent_state', with_reason(reason, 'agent', id, 'state', state))
end

-- The contact an agent is on has ended: the agent leaves 'busy' for the state it asked
-- for meanwhile, else 'available'; or for 'wrap_up' first, when the center has a wrap-up
-- time (wrap_ms > 0, see "Wrap-up").
local function end_contact_of(tag, id, agent, now, wrap_ms)
  if wrap_ms and wrap_ms > 0 then return start_wrap_up(tag, id, now, wrap_ms) end
  local after, reason = leave_for(tag, id, agent, now)
  if after == 'available' then wake(tag, 'agent') end
  event(tag, 'agent_state', with_reason(reason, 'agent', id, 'state', after))
end

-- The center's skill list names only skills some agent has.
local function forget_unused_skill(tag, skills_key, skill)
  if redis.call('SCARD', k_skill(tag, skill)) == 0 then
    redis.call('SREM', skills_key, skill)
  end
end

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

--[[ Contact documents hold no string of their own: the id is only in the key. RedisJSON
keeps one copy of every distinct string of every document of the server in one table,
which grows by doubling in a single call when 7/8 full (tens of ms at 114,689 strings: a
contact id per document would make some create that slow); the other strings of a
contact (skills, states, agent ids) are shared. Replies still carry the id: added here. ]]
local function contact_json(id, stored)
  return '{"id":' .. cjson.encode(id) .. ',' .. string.sub(stored, 2)
end

--[[ acd_contact_create
KEYS[1] contact document  KEYS[2] queue  KEYS[3] waiting signatures hash  KEYS[4] stats
KEYS[5] center meta hash
ARGV[1] id  ARGV[2] skills JSON array, sorted and unique  ARGV[3] signature 'a,b'
ARGV[4] most contacts that may wait in the center (0: no cap): beyond it, LIMIT
ARGV[5] priority, an integer 0..100 (the caller checks it; absent: 0)
ARGV[6] minimum levels, a JSON object skill -> 2..5 of some of its skills (absent or '':
none; see "Proficiency"): the signature must list them ('billing:3,en'), else INVALID
ARGV[7] steps by waiting time, a JSON array (absent or '': the center's default for the
combination, if any; '[]': none; see "Steps by waiting time")  ARGV[8] seconds a closed
contact stays readable
The queue score is the ms of arrival, made strictly increasing (+0.001 ms when two
contacts arrive in the same ms): otherwise equal scores would order by contact id, not
by arrival. The contact joins its combination's FIFO too (see the index above), at its
virtual arrival: the queue score minus priority x the center's meta 'priority_ms' (ms of
waiting a point is worth; none: 0, priorities change nothing). The dispatchers are woken
unless that combination is parked (nobody can serve it now).
The document holds no string of its own: its id is in its key only (see contact_json).
Returns the contact JSON, its id included. ]]
local function contact_create(keys, args)
  local tag = tag_of(keys[1])
  local skills = cjson.decode(args[2])
  -- One read of the center's meta for every check and setting below.
  local fields = {'deleting', 'last_queued', 'priority_ms', 'step_defaults'}
  for i, skill in ipairs(skills) do fields[4 + i] = 'deleting_skill:' .. skill end
  local meta = redis.call('HMGET', keys[5], unpack(fields))
  if meta[1] then refuse_if_deleting(tag) end
  if redis.call('EXISTS', keys[1]) == 1 then fail('EXISTS contact ' .. args[1]) end
  refuse_marked_skills(skills, meta, 4)
  local cap = tonumber(args[4] or 0)
  if cap > 0 and redis.call('ZCARD', keys[2]) >= cap then
    fail('LIMIT ' .. cap .. ' contacts wait in this center already (its cap): retry later')
  end
  local now = now_ms()
  local priority = tonumber(args[5] or 0)
  local head_start = priority * tonumber(meta[3] or 0)
  local contact = {skills = skills, state = 'queued', priority = priority,
    head_start_ms = head_start, agent = cjson.null, queued_at = now,
    assigned_at = cjson.null, ended_at = cjson.null}
  if args[6] and args[6] ~= '' then
    contact.min_levels = cjson.decode(args[6])
    if contact_sig(contact) ~= args[3] then
      fail('INVALID minimum levels ' .. args[6] .. ' do not match signature ' .. args[3])
    end
  end
  local steps = steps_of_new_contact(tag, args[3], args[7], meta[4], args[8])
  contact.steps = steps
  local stored = cjson.encode(contact)
  redis.call('JSON.SET', keys[1], '.', stored)
  if steps then schedule_step(tag, args[1], now + steps[1].after_ms) end
  local score = now
  local last = tonumber(meta[2] or 0)
  if score <= last then score = last + 0.001 end
  score = string.format('%.3f', score)
  redis.call('HSET', keys[5], 'last_queued', score)
  redis.call('ZADD', keys[2], score, args[1])
  local parked = index_add(tag, args[3], virtual_score(score, head_start), args[1],
    head_start > 0)
  redis.call('HINCRBY', keys[4], 'offered', 1)
  event(tag, 'contact_queued', 'contact', args[1])
  if parked == nil then parked = redis.call('HEXISTS', tag .. ':parked_on', args[3]) == 1 end
  if not parked then wake(tag, 'contact') end
  return contact_json(args[1], stored)
end

--[[ acd_contact_end
KEYS[1] contact document  KEYS[2] queue  KEYS[3] waiting signatures hash  KEYS[4] stats
ARGV[1] id  ARGV[2] 'complete' | 'abandon'  ARGV[3] seconds to keep the ended contact
complete: an assigned contact ends; its agent, if still on it, becomes available again
  (unavailable if it asked for that while on the contact).
  A queued contact that is completed was never answered: it is abandoned.
abandon: a queued contact leaves the queue at once; an assigned one fails with STATE.
An offered contact that is completed or abandoned was never answered: it is abandoned,
and the agent it was offered to is available again (offer_withdrawn).
Ending an ended contact changes nothing. Returns the contact JSON, its id included. ]]
local function contact_end(keys, args)
  local tag = tag_of(keys[1])
  local id, how = args[1], args[2]
  local contact = json_get(keys[1], '.')
  if not contact then fail('NOTFOUND contact ' .. id) end
  if contact.state == 'assigned' and how == 'abandon' then
    fail('STATE contact ' .. id .. ' is assigned: complete it instead')
  end
  if contact.state ~= 'queued' and contact.state ~= 'assigned' and contact.state ~= 'offered' then
    return contact_json(id, redis.call('JSON.GET', keys[1], '.'))
  end
  local now = now_ms()
  local final = 'completed'
  if contact.steps then redis.call('ZREM', k_steps_due(tag), id) end
  local sig, wait = contact_sig(contact), 0
  if contact.state == 'offered' then  -- never answered: abandoned (see "Offers")
    final = 'abandoned'
    withdraw_offer(tag, id, contact, now)
    wait = math.max(0, now - tonumber(contact.queued_at))
    redis.call('HINCRBY', keys[4], 'abandoned', 1)
    redis.call('HINCRBY', keys[4], 'abandon_wait_ms', wait)
  elseif contact.state == 'queued' then
    final = 'abandoned'
    unqueue(keys, id, sig)
    -- Abandonment is a KPI with its wait, per combination too ({tag}:outcomes).
    wait = math.max(0, now - tonumber(contact.queued_at))
    redis.call('HINCRBY', keys[4], 'abandoned', 1)
    redis.call('HINCRBY', keys[4], 'abandon_wait_ms', wait)
    redis.call('HINCRBY', tag .. ':outcomes', 'abandoned|' .. sig, 1)
    redis.call('HINCRBY', tag .. ':outcomes', 'abandon_wait_ms|' .. sig, wait)
  else
    redis.call('HINCRBY', keys[4], 'completed', 1)
    local akey = k_agent(tag, contact.agent)
    local agent = json_get(akey, '.')
    if agent and agent.state == 'busy' and agent.contact == id then
      local wrap_ms = tonumber(redis.call('HGET', tag .. ':meta', 'wrap_up_ms') or 0)
      end_contact_of(tag, contact.agent, agent, now, wrap_ms)
    end
  end
  redis.call('JSON.MSET', keys[1], '.state', cjson.encode(final), keys[1], '.ended_at', now)
  redis.call('EXPIRE', keys[1], tonumber(args[3]))
  if final == 'abandoned' then
    event(tag, 'contact_abandoned', 'contact', id, 'wait_ms', wait, 'skills', sig)
  else
    event(tag, 'contact_completed', 'contact', id)
  end
  -- (Read back: steps, offers and wrap-up may have written more than this function knows.)
  return contact_json(id, redis.call('JSON.GET', keys[1], '.'))
end

-- Claim agent aid for contact cid. Reads only the agent's skills and writes each
-- document with one JSON.MERGE. A merge patch deletes a member set to null: while an
-- agent is not available its document has no available_since at all. The contact leaves
-- the queue and the index in dispatch (index_served), which knows its combination.
-- leveled: some agent of the center may have levels (meta 'proficiency'): then the
-- whole document is read, still one command, and the agent leaves its avail_at sets.
-- why: the assignment's explanation (JSON text, see "Explanations"), stored with it.
-- offer_until (nil: an assignment): the round offers instead (see "Offers"); queue_score
-- is then kept in the contact's document, its place if the offer is missed.
local function claim(tag, cid, aid, now, sizes, fewest, leveled, why, offer_until, queue_score)
  local akey = k_agent(tag, aid)
  local agent_skills
  if leveled then
    local agent = cjson.decode(redis.call('JSON.GET', akey, '.'))
    agent_skills = agent.skills
    levels_remove(tag, aid, agent.levels, sizes)
  else
    agent_skills = cjson.decode(redis.call('JSON.GET', akey, '.skills'))
  end
  for _, skill in ipairs(agent_skills) do
    local removed = redis.call('ZREM', k_avail(tag, skill), aid)
    if sizes[skill] then sizes[skill] = sizes[skill] - removed end
  end
  if fewest then fewest_claimed(tag, aid, agent_skills, fewest.sizes) end
  local at = string.format('%d', now)
  if offer_until then
    local ends = string.format('%d', offer_until)
    redis.call('JSON.MERGE', akey, '.', '{"state":"offered","available_since":null,"contact":'
      .. cjson.encode(cid) .. ',"offer_until":' .. ends .. '}')
    redis.call('JSON.MERGE', k_contact(tag, cid), '.', '{"state":"offered","agent":'
      .. cjson.encode(aid) .. ',"offer_until":' .. ends .. ',"queue_score":' .. queue_score
      .. (why and ',"explanation":' .. why or '') .. '}')
    return #agent_skills
  end
  redis.call('JSON.MERGE', akey, '.', '{"state":"busy","available_since":null,"contact":'
    .. cjson.encode(cid) .. ',"last_assigned_at":' .. at .. '}')
  redis.call('JSON.MERGE', k_contact(tag, cid), '.', '{"state":"assigned","agent":'
    .. cjson.encode(aid) .. ',"assigned_at":' .. at .. (why and ',"explanation":' .. why or '')
    .. '}')
  return #agent_skills
end

-- The contact a round just served, its combination's head, leaves that FIFO. Less than
-- index_remove, because the round knows more: next_score is the arrival of the contact
-- after it there (nil: none, the combination empties), read with the head; the
-- combination came from ready, so it is not parked; and the round counts the index's
-- entries ('indexed') once, at its end (a call cut short by an error leaves that count
-- off, and the next round rebuilds the index: see reconcile).
local function index_served(tag, sig, cid, next_score)
  redis.call('ZREM', k_combo(tag, sig), cid)
  if next_score then
    redis.call('HINCRBY', tag .. ':sigs', sig, -1)
    redis.call('ZADD', tag .. ':ready', 'XX', next_score, sig)
  else
    redis.call('HDEL', tag .. ':sigs', sig)
    redis.call('ZREM', tag .. ':ready', sig)
  end
end

--[[ A round's copy of the first entries of {tag}:ready ({sig, score} pairs, oldest head
first), so a round reads ready once per page rather than once per assignment. It stays
exact because during a round only the combination being served (the page's first) moves
in ready: its head leaves, so it goes later or leaves. Every entry of the page ranks
before every entry not read yet; ready_moved keeps that true. ]]
local function ready_page(tag, n)
  local flat = redis.call('ZRANGE', tag .. ':ready', 0, n - 1, 'WITHSCORES')
  local page = {}
  for i = 1, #flat, 2 do page[#page + 1] = {flat[i], tonumber(flat[i + 1])} end
  return page
end

-- The page's first combination now has this score in ready (nil: it left ready). It goes
-- back in its place if that is before the page's last entry; else it is dropped, and read
-- again with the next page. On a tie, Redis orders by name, which Lua's string comparison
-- need not match: the page is cut there, so everything left in it still ranks first.
local function ready_moved(page, score)
  local first = table.remove(page, 1)
  if not score then return end
  for i, entry in ipairs(page) do
    if score == entry[2] then
      for j = #page, i, -1 do page[j] = nil end
      return
    end
    if score < entry[2] then
      table.insert(page, i, {first[1], score})
      return
    end
  end
end

--[[ Explanations (issue 14): why a round gave this contact to this agent, recorded as it
decides while the center's meta 'explain' is '1' (acd_explain; off by default: a record
costs Redis time and memory, see the README), in the contact's document: member
'explanation', written by the JSON.MERGE that assigns the contact, so it costs no command
(acd/explanation.py reads it back):
  rule         the agent choice that chose: 'longest_available' | 'fewest_skills' (a rule
               added later records its own name and scores the same way)
  candidates   [[agent, score], ...]: the first EXPLAIN_CANDIDATES agents of the page the
               walk chose from that have every skill and are available, in the walk's
               order, which is the rule's: the winner first. score: the agent's in the
               walked sets (LAA: available_since; fewest_skills: skills x 1e13 + that)
  qualified    how many of that page's agents qualified (candidates lists the first few)
  walked       [skill, its set's size, entries read]: the smallest set, walked in order
  queue_score  the contact's arrival; virtual_arrival: its place among the combinations'
               heads (queue_score minus its head start, see virtual_score)
  next         [contact, virtual arrival]: the next contact of its combination, if any
  heads        [[combination, its head's virtual arrival], ...]: the next ready
               combinations the round had read (EXPLAIN_HEADS at most), ranking after it
Agents the walk did not reach rank after every one listed, and so do combinations not
read, so the winner is first by the rule among all. Bounded: the lists are cut, and the
walk's page and the round's page of ready are what they read anyway (with scores). ]]
local EXPLAIN_CANDIDATES = 5
local EXPLAIN_HEADS = 3

-- A score as JSON: null unless finite (a score written around the functions may be inf),
-- so the record is always valid JSON and the JSON.MERGE that assigns never fails on it.
local function num(value)
  local n = tonumber(value)
  if not n or n ~= n or n == math.huge or n == -math.huge then return 'null' end
  return string.format('%.17g', n)
end

local function pair(name, value) return '[' .. cjson.encode(name) .. ',' .. num(value) .. ']' end

-- head: the combination's first two entries WITHSCORES; page: the round's ready page,
-- the contact's combination first.
local function explanation(seen, head, queued_at, page)
  local listed = {}
  for i = 1, math.min(#seen.candidates, EXPLAIN_CANDIDATES) do
    local id = seen.candidates[i]
    listed[i] = pair(id, seen.score_of[id])
  end
  local heads = {}
  for i = 2, math.min(#page, EXPLAIN_HEADS + 1) do
    heads[#heads + 1] = pair(page[i][1], page[i][2])
  end
  return '{"rule":"' .. seen.rule .. '","candidates":[' .. table.concat(listed, ',')
    .. '],"qualified":' .. #seen.candidates .. ',"walked":[' .. cjson.encode(seen.skill)
    .. ',' .. seen.size .. ',' .. seen.read .. '],"queue_score":' .. num(queued_at)
    .. ',"virtual_arrival":' .. num(head[2]) .. ',"next":' .. (head[3] and pair(head[3], head[4])
    or 'null') .. ',"heads":[' .. table.concat(heads, ',') .. ']}'
end

--[[ acd_dispatch_mode
KEYS[1] center meta hash
ARGV[1] 'automatic' (dispatcher services serve the center) | 'manual' (only explicit
dispatch calls: lessons that run their own dispatcher). Wakes the dispatchers, so a
center switched to automatic is served at once. Returns the previous mode. ]]
local function dispatch_mode(keys, args)
  local tag = tag_of(keys[1])
  local mode = args[1]
  if mode ~= 'automatic' and mode ~= 'manual' then fail('INVALID dispatch mode ' .. mode) end
  refuse_if_deleting(tag)
  local before = redis.call('HGET', keys[1], 'dispatch') or 'automatic'
  if before ~= mode then
    redis.call('HSET', keys[1], 'dispatch', mode)
    event(tag, 'dispatch_mode', 'mode', mode)
    wake(tag, 'mode')
  end
  return before
end

--[[ acd_priority_ms
KEYS[1] center meta hash
ARGV[1] ms of waiting one priority point is worth for contacts queued from now on, an
integer >= 0 (0, the default: priorities change nothing). Contacts already waiting keep the head start they were given. Returns the previous
value. ]]
local function priority_ms(keys, args)
  local before = tonumber(redis.call('HGET', keys[1], 'priority_ms') or 0)
  local ms = tonumber(args[1])
  if not ms or ms < 0 or ms ~= math.floor(ms) then
    fail('INVALID priority ms per point ' .. args[1] .. ': an integer >= 0')
  end
  refuse_if_deleting(tag_of(keys[1]))
  if ms ~= before then
    redis.call('HSET', keys[1], 'priority_ms', string.format('%d', ms))
    event(tag_of(keys[1]), 'priority_ms', 'ms', string.format('%d', ms))
  end
  return before
end

--[[ acd_agent_choice
KEYS[1] center meta hash   KEYS[2] set of the center's agents
ARGV[1] 'longest_available' | 'fewest_skills'   ARGV[2] run: '' starts one; later calls
pass the run the first returned   ARGV[3] '1' on the run's last call   ARGV[4...] the agents
of this batch (the caller walks the agents set after the first call: an agent created
after it is flagged, or not, by acd_agent_create)
One batch of switching how dispatch chooses among qualified agents (see "Agent choice"
and "Bulk operations"): each agent of the batch gets (or loses) its in_fewest flag and its
entries in the fewest sets, wholly. The first call records the choice (event agent_choice
when it changes) and marks meta agent_choice_index 'building' or 'clearing', the last makes
it 'ready' or removes it; a center already settled on the choice asked for changes
nothing. Cost: per agent of the batch, its document (one JSON.MGET for the batch) and a
ZADD or ZREM per skill.
Returns {agents whose flag changed, run, previous choice, 1 when nothing is left to do};
{-1, run, previous, 1} when a later switch started meanwhile (it covers every agent). ]]
local function agent_choice(keys, args)
  local tag = tag_of(keys[1])
  local choice, run = args[1], args[2]
  if choice ~= 'longest_available' and choice ~= 'fewest_skills'
      and choice ~= 'best_proficiency' then
    fail('INVALID agent choice ' .. tostring(choice))
  end
  refuse_if_deleting(tag)
  local meta = redis.call('HMGET', keys[1], 'agent_choice', 'agent_choice_index',
    'agent_choice_run')
  local before = meta[1] or 'longest_available'
  local building = choice == 'fewest_skills'
  if run == '' then
    local settled = building and meta[2] == 'ready' or not building and not meta[2]
    if before == choice and settled then return {0, '', before, 1} end
    run = tostring(redis.call('HINCRBY', keys[1], 'agent_choice_run', 1))
    redis.call('HSET', keys[1], 'agent_choice', choice,
      'agent_choice_index', building and 'building' or 'clearing')
    if before ~= choice then event(tag, 'agent_choice', 'choice', choice) end
  elseif meta[3] ~= run then
    return {-1, run, before, 1}
  end
  local ids, changed = {}, 0
  for i = 4, #args do ids[#ids + 1] = args[i] end
  for i, agent in ipairs(load_agents(tag, ids)) do
    if agent then
      if building then
        if not agent.in_fewest then
          redis.call('JSON.MERGE', k_agent(tag, ids[i]), '.', '{"in_fewest":true}')
          changed = changed + 1
        end
        if agent.state == 'available' then
          fewest_add(tag, ids[i], agent.skills, agent.available_since)
        end
      else
        if agent.in_fewest then
          redis.call('JSON.MERGE', k_agent(tag, ids[i]), '.', '{"in_fewest":null}')
          changed = changed + 1
        end
        fewest_remove(tag, ids[i], agent.skills)
      end
    end
  end
  if args[3] ~= '1' then return {changed, run, before, 0} end
  if building then
    redis.call('HSET', keys[1], 'agent_choice_index', 'ready')
  else
    redis.call('HDEL', keys[1], 'agent_choice_index')
  end
  return {changed, run, before, 1}
end

--[[ acd_dispatch
KEYS[1] queue  KEYS[2] waiting signatures hash  KEYS[3] stats  KEYS[4] center meta hash
ARGV[1] most assignments to make  ARGV[2] most skill combinations to examine (each
look costs a few µs; when it, or the round's work units (DISPATCH_WORK), run out with work
left, a 'more' wake follows the returned id, so a dispatcher's next round starts at once)
ARGV[3] 'service' for a dispatcher service: it assigns nothing while the center's
dispatch mode is manual (checked in the same atomic call, so no round overlaps a
lesson's own dispatcher) | 'explicit' for a call made on purpose (always runs)
First finishes the agents' wake-ups left pending (see wake_parked): while any is left it
assigns nothing and returns with a 'more' wake, so the order of service never depends on
how the wake-ups were split into calls.
Serves the oldest contact some available agent can serve, again and again: the ready
combination with the oldest head (see the index above) gets the longest available agent
with all its skills (with the center's agent choice fewest_skills, once ready: the one
with the fewest skills, then the longest available; same walk and cost plus one ZMSCORE,
see "Agent choice"), or is parked if nobody available has them. A contact nobody can serve
keeps its place and holds up nobody (no head-of-line blocking), and costs a round nothing
once its combination is parked: a round looks only at ready combinations.
Before serving, takes the steps by waiting time that are due (see "Steps by waiting
time"); the reply's last element, while a wrap-up or a step is pending, is the ms until
the sooner of them (see with_wrap_up).
Returns {assigned count, last wake id, contact1, agent1, contact2, agent2, ...}: a
dispatcher that then waits for wake entries after that id misses no wake-up. ]]
local function dispatch(keys, args)
  local tag = tag_of(keys[1])
  -- One read of the center's switches (wrap_up_due: see "Wrap-up"; indexed: reconcile).
  local meta = redis.call('HMGET', keys[4], 'dispatch', 'deleting', 'agent_choice_index',
    'wrap_up_due', 'proficiency', 'agent_choice', 'explain', 'step_due', 'offer_ms',
    'offer_due', 'indexed')
  if meta[2] then
    return {0, last_wake_id(tag)}  -- a center being deleted assigns nothing more
  end
  -- Wrap-ups end on time in manual mode too: only assigning is left to the lesson.
  local _, wrap_in = release_wrap_ups(tag, tonumber(meta[4]))
  local _, offer_in = expire_offers(tag, tonumber(meta[10]))  -- likewise (see "Offers")
  wrap_in = sooner(wrap_in, offer_in)
  if args[3] == 'service' and meta[1] == 'manual' then
    return with_wrap_up(tag, {0, last_wake_id(tag)}, wrap_in)
  end
  local fewest = meta[3] and {ready = meta[3] == 'ready', sizes = {}} or nil
  local leveled = meta[5] and true or false  -- some agent has levels ("Proficiency")
  local best = leveled and meta[6] == 'best_proficiency'
  local explain = meta[7] == '1'  -- record each assignment's explanation (see there)
  if redis.call('ZCARD', keys[1]) ~= tonumber(meta[11] or 0) then
    reconcile(tag, keys[1])
  end
  -- Steps by waiting time that are due move or close their contacts before any is served;
  -- the reply's timer is the sooner of the next wrap-up end and the next step.
  local _, step_in = release_steps(tag, tonumber(meta[8]))
  wrap_in = sooner(wrap_in, step_in)
  if not drain_unpark(tag) then
    local id = last_wake_id(tag)
    wake(tag, 'more')  -- after the id returned: the next round starts at once
    return {0, id}
  end
  local most, budget = tonumber(args[1]), tonumber(args[2])
  local qkeys = {keys[1], keys[1], keys[2]}  -- unqueue() expects the queue at 2
  local now = now_ms()
  local result = {0, ''}
  local sizes = {}  -- availability set sizes, see longest_available
  local examined, assigned, wait_total = 0, 0, 0
  local page = {}  -- the first ready combinations, see ready_page
  local offer_ms, offered = tonumber(meta[9]), 0  -- offers instead of assignments (Offers)
  local excluding = offer_ms and redis.call('HLEN', k_excluded(tag)) > 0
  -- An assignment's cost grows with the agent's skills (it leaves each skill's set): a
  -- round also stops after DISPATCH_WORK units (an assignment: 8 + its agent's skills;
  -- what un-parking did in this call counts too), so a center of agents with 32 skills
  -- gets shorter rounds, not longer calls.
  local work = UNPARK_UNITS - unpark_units
  while assigned < most and examined < budget and work < DISPATCH_WORK do
    if #page == 0 then
      -- (EXPLAIN_HEADS more: the heads an explanation names, see "Explanations")
      page = ready_page(tag, math.min(most - assigned, budget - examined, 32)
        + (explain and EXPLAIN_HEADS or 0))
      if #page == 0 then break end
    end
    local sig = page[1][1]
    examined = examined + 1
    -- Its oldest two contacts: the first is served, the second is its next head.
    local head = redis.call('ZRANGE', k_combo(tag, sig), 0, 1, 'WITHSCORES')
    local cid = head[1]
    local queued_at = cid and redis.call('ZSCORE', keys[1], cid)
    if not queued_at or redis.call('EXISTS', k_contact(tag, cid)) == 0 then
      -- Left the queue around the index (a textbook dispatcher took it) or its document
      -- is gone (nobody can serve it): it leaves the index and the queue.
      if cid then
        unqueue(qkeys, cid, sig)
      else
        redis.call('ZREM', tag .. ':ready', sig)
      end
      page = {}  -- ready changed without the page: read it again
    elseif tonumber(queued_at) ~= tonumber(head[2]) and tonumber(
        virtual_score(queued_at, head_start_of(tag, cid))) ~= tonumber(head[2]) then
      -- (A contact with a head start is always behind its queue score: only it pays for
      -- the JSON.GET above.) Pushed back into the queue with a later score (the textbook's
      -- retry): it takes that place in its combination too, and the round looks again.
      redis.call('ZADD', k_combo(tag, sig), virtual_score(queued_at, head_start_of(tag, cid)),
        cid)
      redis.call('ZADD', tag .. ':ready', 'XX', head_score(tag, sig), sig)
      page = {}
    else
      local seen = explain and {} or nil
      local aid = choose_agent(tag, needs_of(sig), sizes, fewest, best, seen,
        excluding and excluded_for(tag, cid))
      if aid then
        work = work + 8 + claim(tag, cid, aid, now, sizes, fewest, leveled,
          seen and explanation(seen, head, queued_at, page), offer_ms and now + offer_ms,
          queued_at)
        redis.call('ZREM', keys[1], cid)
        index_served(tag, sig, cid, head[4])
        ready_moved(page, head[4] and tonumber(head[4]))
        if offer_ms then
          offer_timer(tag, 'o|' .. cid, now + offer_ms)
          event(tag, 'contact_offered', 'contact', cid, 'agent', aid, 'until',
            string.format('%d', now + offer_ms))
          offered = offered + 1
        else
          local wait = math.max(0, math.floor(now - tonumber(queued_at)))
          wait_total = wait_total + wait
          event(tag, 'contact_assigned', 'contact', cid, 'agent', aid, 'wait_ms', wait)
        end
        assigned = assigned + 1
        result[#result + 1] = cid
        result[#result + 1] = aid
      else
        park(tag, sig)
        ready_moved(page, nil)
      end
    end
  end
  if assigned > offered then
    redis.call('HINCRBY', keys[3], 'assigned', assigned - offered)
    redis.call('HINCRBY', keys[3], 'wait_ms', wait_total)
  end
  if assigned > 0 then
    redis.call('HINCRBY', keys[4], 'indexed', -assigned)  -- see index_served
    if offered > 0 then redis.call('HINCRBY', keys[3], 'offers', offered) end
  end
  result[1] = assigned
  result[2] = last_wake_id(tag)
  local stopped_early = examined >= budget or work >= DISPATCH_WORK
  if stopped_early and redis.call('ZCARD', tag .. ':ready') > 0 then
    wake(tag, 'more')  -- after the id returned: the dispatcher's next wait ends at once
  end
  -- Its own offers' wake-ups precede the id returned: the reply times their deadline.
  if offered > 0 then wrap_in = sooner(wrap_in, offer_ms) end
  return with_wrap_up(tag, result, wrap_in)
end

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

register('acd_agent_create', agent_create)
register('acd_agent_delete', agent_delete, true)
register('acd_agent_update', agent_update)
register('acd_agent_state', agent_state)
register('acd_agent_skill', agent_skill)
register('acd_skill_delete', skill_delete, true)
register('acd_center_state', center_state)
register('acd_center_delete', center_delete, true)
register('acd_contact_create', contact_create)
register('acd_contact_end', contact_end, true)
register('acd_dispatch', dispatch, true)
register('acd_dispatch_mode', dispatch_mode)
register('acd_priority_ms', priority_ms)
register('acd_agent_choice', agent_choice)

--[[ Wrap-up's functions (see "Wrap-up" above for the state itself). ]]

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

--[[ Steps by waiting time's functions (see "Steps by waiting time" above). ]]

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
--[[ Offers' functions (see "Offers" above for the states and timers). ]]

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
      keys[1], '.assigned_at', 'null')
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
    redis.call('JSON.MERGE', keys[1], '.',
      '{"state":"queued","agent":null,"offer_until":null,"queue_score":null}')
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
