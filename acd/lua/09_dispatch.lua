-- The dispatch round (acd_dispatch) and the center switches it reads.

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

register('acd_dispatch', dispatch, true)
register('acd_dispatch_mode', dispatch_mode)
register('acd_priority_ms', priority_ms)
register('acd_agent_choice', agent_choice)
