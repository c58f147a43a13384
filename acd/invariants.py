"""What the ACD promises about a center's state, checked from every side.

The first promise is one contact per agent, and it has two sides that can disagree:
every busy agent names its contact and that contact names the agent back; every assigned
contact names an agent that is busy with exactly that contact, and no agent is named by
two assigned contacts. Checking only the agents' side misses an agent that was released
from a live contact and given another one (both contacts still name it).

:func:`violations` reads the whole center and describes each broken promise. It is many
reads, not one atomic snapshot: run it when nothing changes the center (after a run, in
tests, at the end of a drill), or it may report a change in flight.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any, cast

from acd.agent_choice import FEWEST_SPAN
from acd.center import Center
from acd.commands import command
from acd.levels import DEFAULT_LEVEL, MAX_LEVEL, needs, qualifies, signature
from acd.priority import virtual_arrival

BATCH = 500  # documents per JSON.MGET


async def _docs(center: Center, keys: Sequence[str]) -> list[dict[str, Any] | None]:
    out: list[dict[str, Any] | None] = []
    for start in range(0, len(keys), BATCH):
        chunk = keys[start:start + BATCH]
        raw = await command(center.redis, "JSON.MGET", *chunk, ".")
        out += [json.loads(r) if r else None for r in raw]
    return out


async def _contacts(center: Center) -> dict[str, dict[str, Any]]:
    """Every contact document of the center (ended ones until they expire)."""
    prefix = center.keys.contact("")
    keys = [str(k) async for k in center.redis.scan_iter(
        match=center.keys.pattern("contact"), count=1000)]
    docs = await _docs(center, keys)
    return {k[len(prefix):]: d for k, d in zip(keys, docs, strict=True) if d is not None}


async def _scores(center: Center, pairs: Sequence[tuple[str, str]]) -> list[float | None]:
    """ZSCORE of each (agent, skill) in that skill's availability set, pipelined."""
    out: list[float | None] = []
    for start in range(0, len(pairs), BATCH):
        async with center.redis.pipeline(transaction=False) as pipe:
            for aid, skill in pairs[start:start + BATCH]:
                pipe.zscore(center.keys.avail(skill), aid)
            out += await pipe.execute()
    return out


async def violations(center: Center) -> list[str]:
    """Every way the center's state breaks the ACD's promises; empty when it keeps them."""
    r, k = center.redis, center.keys
    ids = sorted(await cast(Any, r.smembers(k.agents)))
    docs = await _docs(center, [k.agent(i) for i in ids])
    agents = {i: d for i, d in zip(ids, docs, strict=True) if d is not None}
    contacts = await _contacts(center)
    return [*await _availability(center, agents), *_agents_side(agents, contacts),
            *_contacts_side(agents, contacts), *await _queue(center, contacts),
            *await _index(center, agents, contacts), *await _fewest(center, agents),
            *await _wrap_ups(center, agents), *await _levels(center, agents),
            *await _steps_due(center, contacts), *await _offers(center, agents, contacts),
            *_explanations(contacts)]


Docs = dict[str, dict[str, Any]]


async def _availability(center: Center, agents: Docs) -> list[str]:
    """Available agents are in each of their skills' sets with their available_since as
    score; every other agent is in none, and the sets hold nobody else."""
    found = []
    pairs = [(aid, skill) for aid, agent in agents.items() for skill in agent.get("skills", [])]
    for (aid, skill), score in zip(pairs, await _scores(center, pairs), strict=True):
        agent = agents[aid]
        if agent.get("state") == "available" and score != agent.get("available_since"):
            found.append(f"agent {aid} is available since {agent.get('available_since')} "
                         f"but its score in avail:{skill} is {score}")
        elif agent.get("state") != "available" and score is not None:
            found.append(f"agent {aid} is {agent.get('state')} but in avail:{skill}")
    skills = set(await cast(Any, center.redis.smembers(center.keys.skills)))
    skills.update(skill for _, skill in pairs)
    for skill in sorted(skills):
        for aid in map(str, await center.redis.zrange(center.keys.avail(skill), 0, -1)):
            agent = agents.get(aid, {})
            if agent.get("state") != "available" or skill not in agent.get("skills", []):
                found.append(f"avail:{skill} holds {aid}, which is not an available agent "
                             "with that skill")
    return found


def _agents_side(agents: Docs, contacts: Docs) -> list[str]:
    """Every agent has a skill. A busy agent names an assigned contact that names it back;
    an agent that is not busy names no contact and no next state. (Which skills is
    checked when a contact is assigned, by the dispatch rule tests: a skill removed from
    an agent on a contact applies from its next contact, as in a real contact center.)"""
    found = []
    for aid, agent in agents.items():
        if not agent.get("skills"):  # it could serve no contact (acd_agent_skill refuses)
            found.append(f"agent {aid} has no skill")
        state, cid, after = agent.get("state"), agent.get("contact"), agent.get("next_state")
        found += _reasons(aid, agent)
        if state == "wrap_up":  # after its contact: on none; may be unavailable next
            if cid is not None or after not in NEXT_STATES:
                found.append(f"agent {aid} is in wrap-up but names contact {cid}, next "
                             f"state {after}")
            continue
        if state not in ("busy", "offered"):
            if cid is not None or after is not None:
                found.append(f"agent {aid} is {state} but names contact {cid}, next state "
                             f"{after}")
            continue
        if state == "offered":
            continue  # its contact, from both sides: _offers
        contact = contacts.get(cid) if cid else None
        if contact is None:
            found.append(f"busy agent {aid} names contact {cid}, which does not exist")
        elif contact.get("state") != "assigned" or contact.get("agent") != aid:
            found.append(f"busy agent {aid} names contact {cid}, which is "
                         f"{contact.get('state')} with agent {contact.get('agent')}")
        if after not in NEXT_STATES:
            found.append(f"busy agent {aid} has next state {after}")
    return found


NEXT_STATES = (None, "unavailable", "logged_out")  # what an agent may ask to be next


def _reasons(aid: str, agent: dict[str, Any]) -> list[str]:
    """A break reason only on an unavailable agent; a pending one only with a pending
    'unavailable' (acd/lua/03_agent_states.lua, "Agent states")."""
    found = []
    if agent.get("reason") is not None and agent.get("state") != "unavailable":
        found.append(f"agent {aid} is {agent.get('state')} with break reason "
                     f"{agent.get('reason')}")
    if agent.get("next_reason") is not None and agent.get("next_state") != "unavailable":
        found.append(f"agent {aid} has next break reason {agent.get('next_reason')} but "
                     f"next state {agent.get('next_state')}")
    return found


def _contacts_side(agents: Docs, contacts: Docs) -> list[str]:
    """An assigned contact names an agent that is busy with exactly that contact, and no
    agent is named by two assigned contacts."""
    found = []
    assigned = {cid: c.get("agent") for cid, c in sorted(contacts.items())
                if c.get("state") == "assigned"}
    for named, n in sorted(Counter(map(str, assigned.values())).items()):
        if n > 1:
            on = ", ".join(cid for cid, a in assigned.items() if a == named)
            found.append(f"agent {named} is named by {n} assigned contacts: {on}")
    for cid, aid in assigned.items():
        agent = agents.get(aid) if aid else None
        if agent is None:
            found.append(f"assigned contact {cid} names agent {aid}, who does not exist")
        elif agent.get("state") != "busy" or agent.get("contact") != cid:
            found.append(f"assigned contact {cid} names agent {aid}, who is "
                         f"{agent.get('state')} on contact {agent.get('contact')}")
    return found


async def _queue(center: Center, contacts: Docs) -> list[str]:
    """The queue holds exactly the queued contacts, and the count of each waiting skill
    signature agrees with it."""
    found = []
    queued = set(map(str, await center.redis.zrange(center.keys.queue, 0, -1)))
    waiting = {cid for cid, c in contacts.items() if c.get("state") == "queued"}
    for cid in sorted(queued - waiting):
        state = contacts[cid].get("state") if cid in contacts else "missing"
        found.append(f"queue holds {cid}, which is {state}")
    for cid in sorted(waiting - queued):
        found.append(f"contact {cid} is queued but not in the queue")
    sigs = Counter(signature(contacts[cid].get("skills", []), contacts[cid].get("min_levels"))
                   for cid in queued & waiting)
    stored = {s: int(n) for s, n in (await center.redis.hgetall(center.keys.waiting_sigs)
                                     ).items()}
    if stored != dict(sigs):
        found.append(f"waiting signatures {stored} disagree with the queue {dict(sigs)}")
    return found


async def _index(center: Center, agents: Docs, contacts: Docs) -> list[str]:
    """The waiting contacts' index (acd/lua/02_queue_index.lua) agrees with the queue: each queued
    contact is in its combination's FIFO at its virtual arrival (acd.priority); each
    waiting combination is ready or parked (exactly one); a parked one has no available
    agent with all its skills (else nobody would ever look at it again), unless an agent's
    wake-up is still moving combinations back to ready; the index's count is the queue's
    length."""
    r, k = cast(Any, center.redis), center.keys
    found = []
    queue = {str(m): float(s) for m, s in await r.zrange(k.queue, 0, -1, withscores=True)}
    expected: dict[str, dict[str, float]] = {}
    for cid, score in queue.items():
        doc = contacts.get(cid, {})
        sig = signature(doc.get("skills", []), doc.get("min_levels"))
        expected.setdefault(sig, {})[cid] = virtual_arrival(score, doc.get("head_start_ms"))
    sigs = set(map(str, await r.hkeys(k.waiting_sigs)))
    ready = set(map(str, await r.zrange(k.ready, 0, -1)))
    parked_on = {str(a): str(b) for a, b in (await r.hgetall(k.parked_on)).items()}
    pending_unpark = await r.llen(k.unpark)
    for sig in sorted(sigs | set(expected) | ready | set(parked_on)):
        fifo = {str(m): float(s)
                for m, s in await r.zrange(k.combo(sig), 0, -1, withscores=True)}
        if fifo != expected.get(sig, {}):
            found.append(f"combination {sig}: index holds {fifo}, the queue {expected.get(sig)}")
        if not fifo:
            if sig in ready or sig in parked_on:
                found.append(f"combination {sig} waits for nobody but is ready or parked")
            continue
        if (sig in ready) == (sig in parked_on):
            found.append(f"combination {sig} is {'both' if sig in ready else 'neither'} "
                         "ready and parked")
        if sig in parked_on:
            if not await r.sismember(k.parked(parked_on[sig]), sig):
                found.append(f"combination {sig} is not filed under {parked_on[sig]}")
            if pending_unpark:
                continue  # an agent's wake-up is still moving combinations back to ready
            head = min(fifo, key=lambda c: (fifo[c], c))
            excluded = json.loads(await r.hget(k.excluded, head) or "{}")
            able = [a for a, d in agents.items() if d.get("state") == "available"
                    and qualifies(d.get("levels") or {}, d.get("skills", []), needs(sig))
                    and a not in excluded]
            if able:
                found.append(f"combination {sig} is parked but {able} could serve it")
    indexed = int(await r.hget(k.meta, "indexed") or 0)
    if queue and indexed != len(queue):
        found.append(f"the index counts {indexed} contacts, the queue holds {len(queue)}")
    return found



async def _fewest(center: Center, agents: Docs) -> list[str]:
    """The agent choice's sets (acd.agent_choice): an agent flagged in_fewest is in the
    fewest set of each of its skills exactly while available, scored by its skill count
    then available_since; nobody else is in them. Once a switch is done, every agent is
    flagged (fewest_skills) or none is (longest_available)."""
    r, k = cast(Any, center.redis), center.keys
    found = []
    index = await r.hget(k.meta, "agent_choice_index")
    flagged = {aid for aid, a in agents.items() if a.get("in_fewest")}
    if index == "ready" and flagged != set(agents):
        found.append(f"agent choice is ready but {sorted(set(agents) - flagged)} are not "
                     "in its sets")
    if index is None and flagged:
        found.append(f"agent choice is longest_available but {sorted(flagged)} are flagged")
    expected: dict[str, dict[str, float]] = {}
    for aid in flagged:
        agent = agents[aid]
        if agent.get("state") == "available":
            score = len(agent["skills"]) * FEWEST_SPAN + agent["available_since"]
            for skill in agent["skills"]:
                expected.setdefault(skill, {})[aid] = float(score)
    skills = set(await r.smembers(k.skills)) | set(expected)
    skills |= {s for a in agents.values() for s in a.get("skills", [])}
    for skill in sorted(skills):
        held = {str(m): float(s) for m, s in await r.zrange(k.fewest(skill), 0, -1,
                                                             withscores=True)}
        if held != expected.get(skill, {}):
            found.append(f"fewest:{skill} holds {held}, expected {expected.get(skill, {})}")
    return found


async def _timers(center: Center, key: str) -> dict[str, float]:
    """A timer set (wrap-up ends, steps due, offers): member -> when, in server ms."""
    pairs = await cast(Any, center.redis).zrange(key, 0, -1, withscores=True)
    return {str(m): float(s) for m, s in pairs}


async def _next_due(center: Center, field: str, timers: dict[str, float], what: str
                    ) -> list[str]:
    """The center's next due time (meta ``field``) is no later than the timers' first:
    a round waits until then, so a later one would end the first timer late."""
    due = await cast(Any, center.redis).hget(center.keys.meta, field)
    if timers and (due is None or float(due) > min(timers.values())):
        return [f"the next {what} at {min(timers.values())} but the center expects one "
                f"at {due}"]
    return []


async def _wrap_ups(center: Center, agents: Docs) -> list[str]:
    """An agent in wrap-up has its entry in the wrap-up set, scored with its
    wrap_up_until; the set holds nobody else; the center's next due time (meta
    wrap_up_due) is no later than the set's first end, or a round would end it late.
    (Not being in any availability set is checked by _availability.)"""
    k = center.keys
    found = []
    ends = await _timers(center, k.wrap_up)
    for aid, agent in agents.items():
        if agent.get("state") != "wrap_up":
            continue
        until = agent.get("wrap_up_until")
        if aid not in ends:
            found.append(f"agent {aid} is in wrap-up but not in the wrap-up set")
        elif until is None or ends[aid] != float(until):
            found.append(f"agent {aid} is in wrap-up until {until}, the set says {ends[aid]}")
    for aid in sorted(ends):
        if agents.get(aid, {}).get("state") != "wrap_up":
            found.append(f"the wrap-up set holds {aid}, which is not an agent in wrap-up")
    return found + await _next_due(center, "wrap_up_due", ends, "wrap-up ends")


async def _levels(center: Center, agents: Docs) -> list[str]:
    """The per-skill-and-level availability sets (acd.levels): avail_at:<L>:<skill> holds
    exactly the available agents with the skill at level L or above, at available_since;
    an agent's levels name only skills it has, above the default."""
    found = []
    skills: set[str] = set()
    for aid, agent in agents.items():
        levels = agent.get("levels") or {}
        skills.update(agent.get("skills", []))
        wrong = {s: v for s, v in levels.items()
                 if s not in agent.get("skills", []) or not DEFAULT_LEVEL < v <= MAX_LEVEL}
        if wrong:
            found.append(f"agent {aid} has levels {wrong} of skills it lacks or out of range")
    wanted = [(level, skill) for skill in sorted(skills) for level in range(2, MAX_LEVEL + 1)]
    if not wanted:
        return found
    if not any(a.get("levels") for a in agents.values()):  # the usual case: one read
        keys = [center.keys.avail_at(level, skill) for level, skill in wanted]
        if not await center.redis.exists(*keys):
            return found
    async with center.redis.pipeline(transaction=False) as pipe:
        for level, skill in wanted:
            pipe.zrange(center.keys.avail_at(level, skill), 0, -1, withscores=True)
        held_all = await pipe.execute()
    for (level, skill), held in zip(wanted, held_all, strict=True):
        expected = {aid: float(a["available_since"]) for aid, a in agents.items()
                    if a.get("state") == "available" and skill in a.get("skills", [])
                    and (a.get("levels") or {}).get(skill, DEFAULT_LEVEL) >= level}
        got = {str(m): float(sc) for m, sc in held}
        if got != expected:
            found.append(f"avail_at:{level}:{skill} holds {got}, expected {expected}")
    return found


async def _steps_due(center: Center, contacts: Docs) -> list[str]:
    """A queued contact with a step still to take (acd.steps) has its entry in the due
    set at queued_at + that step's after_ms, and the center's next due time (meta
    step_due) is no later than the set's first entry. Entries of contacts no longer
    queued are allowed: the step does nothing when due, and the entry goes then."""
    k = center.keys
    found = []
    due_set = await _timers(center, k.steps_due)
    for cid, contact in contacts.items():
        steps, taken = contact.get("steps") or [], contact.get("steps_taken") or []
        if contact.get("state") != "queued" or len(taken) >= len(steps):
            continue
        due = contact["queued_at"] + steps[len(taken)]["after_ms"]
        if due_set.get(cid) != float(due):
            found.append(f"contact {cid}'s next step is due at {due}, the set says "
                         f"{due_set.get(cid)}")
    return found + await _next_due(center, "step_due", due_set, "step is due")


async def _offers(center: Center, agents: Docs, contacts: Docs) -> list[str]:
    """An offered agent names an offered contact that names it back, and the other way
    round; each offer has its deadline in the offers set ('o|<contact>' at offer_until);
    the center's next due time is no later than the set's first (acd.offers)."""
    k = center.keys
    found = []
    timers = await _timers(center, k.offers)
    for aid, agent in agents.items():
        if agent.get("state") != "offered":
            continue
        cid = agent.get("contact")
        contact = (contacts.get(cid) if cid else None) or {}
        if contact.get("state") != "offered" or contact.get("agent") != aid:
            found.append(f"offered agent {aid} names contact {cid}, which is "
                         f"{contact.get('state')} with agent {contact.get('agent')}")
    for cid, offered in sorted(contacts.items()):
        if offered.get("state") != "offered":
            continue
        named = offered.get("agent")
        holder = (agents.get(named) if named else None) or {}
        if holder.get("state") != "offered" or holder.get("contact") != cid:
            found.append(f"offered contact {cid} names agent {named}, who is "
                         f"{holder.get('state')} on {holder.get('contact')}")
        if timers.get(f"o|{cid}") != float(offered.get("offer_until") or -1):
            found.append(f"offered contact {cid} until {offered.get('offer_until')}, its "
                         f"timer says {timers.get(f'o|{cid}')}")
    return found + await _next_due(center, "offer_due", timers, "offer timer ends")


def _explanations(contacts: Docs) -> list[str]:
    """An assignment's explanation (acd.explanation) names the contact's own agent
    first, the winner; a contact back in the queue has none (it explained an assignment
    that is over, and would be read as its next one's)."""
    found = []
    for cid, contact in sorted(contacts.items()):
        record = contact.get("explanation")
        if isinstance(record, str):
            record = json.loads(record)
        if not record:
            continue
        agent, state = contact.get("agent"), contact.get("state")
        first = (record.get("candidates") or [[None]])[0][0]
        if state == "queued" or (agent is not None and first != agent):
            found.append(f"contact {cid} is {state} with agent {agent} but its "
                         f"explanation names {first} first")
    return found
