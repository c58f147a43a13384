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
  -- (Its combination: only an abandoned contact needs it, for the index and the KPIs.)
  local sig = contact.state ~= 'assigned' and contact_sig(contact)
  local wait = 0
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


register('acd_contact_create', contact_create)
register('acd_contact_end', contact_end, true)
