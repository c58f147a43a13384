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

from acd.center import Center
from acd.commands import command
from acd.feature_invariants import Docs, feature_violations
from acd.levels import needs, qualifies, signature
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
            *await _index(center, agents, contacts),
            *await feature_violations(center, agents, contacts)]




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
