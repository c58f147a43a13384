"""What the routing features promise about a center's state (see acd.invariants).

Each check reads the sets a feature keeps beside the documents (the fewest-skills sets,
wrap-up and offer timers, per-level availability, steps due, explanations) and describes
every way they disagree with the agents' and contacts' documents.
"""

from __future__ import annotations

import json
from typing import Any, cast

from acd.agent_choice import FEWEST_SPAN
from acd.center import Center
from acd.levels import DEFAULT_LEVEL, MAX_LEVEL

Docs = dict[str, dict[str, Any]]


async def feature_violations(center: Center, agents: Docs, contacts: Docs) -> list[str]:
    """Every broken promise of the routing features, given the center's documents."""
    return [*await _fewest(center, agents), *await _wrap_ups(center, agents),
            *await _levels(center, agents), *await _steps_due(center, contacts),
            *await _offers(center, agents, contacts), *_explanations(contacts)]


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
