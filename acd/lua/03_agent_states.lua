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
  -- A member set to null is deleted by the merge: one the document lacks needs no null
  -- (the usual agent, who asked for nothing meanwhile, gets the patch it got before breaks).
  local patch = '{"state":' .. cjson.encode(after) .. ',"available_since":' .. at
    .. ',"contact":null'
  if reason or agent.reason ~= nil then
    patch = patch .. ',"reason":' .. (reason and cjson.encode(reason) or 'null')
  end
  if agent.next_state ~= nil then patch = patch .. ',"next_state":null' end
  if agent.next_reason ~= nil then patch = patch .. ',"next_reason":null' end
  redis.call('JSON.MERGE', k_agent(tag, id), '.', patch .. (extra or '') .. '}')
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
  local key = k_wrap_up(tag)
  return release_due(tag, key, 'wrap_up_due', due, WRAP_UP_RELEASES, function(id, ends)
    local agent = json_get(k_agent(tag, id), '.')
    if not agent or agent.state ~= 'wrap_up' then
      redis.call('ZREM', key, id)  -- deleted or changed around the functions
      return false
    end
    finish_wrap_up(tag, id, agent, ends, 'timer')
    return true
  end)
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
