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
-- Its explanation goes: it was the offer's, and would pass for the next assignment's.
local function requeue_offered(tag, cid, contact)
  local score = string.format('%.3f', contact.queue_score or contact.queued_at)
  redis.call('JSON.MERGE', k_contact(tag, cid), '.', '{"state":"queued","agent":null,'
    .. '"offer_until":null,"queue_score":null,"explanation":null}')
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
  local key = k_offers(tag)
  return release_due(tag, key, 'offer_due', due, OFFER_EXPIRIES, function(member, _, now)
    redis.call('ZREM', key, member)
    local kind, cid, aid = string.match(member, '^(%a)|([^|]+)|?(.*)$')
    if kind == 'o' then
      local contact, agent_id, agent = offer_of(tag, cid, nil)
      if contact then miss_offer(tag, cid, contact, agent_id, agent, 'timed_out', now) end
    elseif kind == 'x' then
      end_exclusion(tag, cid, aid)
    end
    return true
  end)
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
