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
  local key = k_steps_due(tag)
  return release_due(tag, key, 'step_due', due, STEP_RELEASES, function(cid, _, now)
    local contact = json_get(k_contact(tag, cid), '.')
    local step = contact and next_step(contact)
    if not step or not redis.call('ZSCORE', tag .. ':queue', cid) then
      redis.call('ZREM', key, cid)  -- assigned, ended or gone: its steps are over
      return false
    end
    take_step(tag, cid, contact, step, now)  -- schedules its next step, if any
    return true
  end)
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
