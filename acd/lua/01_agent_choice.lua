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
-- needs: a combination's items, as for longest_available. One command, not the walk's
-- ZCARD per skill, page and ZMSCORE: ZINTERCARD walks the smallest set in C (an empty
-- one ends it at once) and LIMIT 1 stops at the first agent in all of them.
local function anyone_available(tag, needs)
  if #needs == 1 then return redis.call('ZCARD', k_need(tag, needs[1])) > 0 end
  local args = {#needs}
  for i, item in ipairs(needs) do args[i + 1] = k_need(tag, item) end
  args[#args + 1] = 'LIMIT'
  args[#args + 1] = 1
  return redis.call('ZINTERCARD', unpack(args)) > 0
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
