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


async def violations(center: Center) -> list[str]:
    """Every way the center's state breaks the ACD's promises; empty when it keeps them."""
    r, k = center.redis, center.keys
    ids = sorted(await cast(Any, r.smembers(k.agents)))
    agents = {i: d for i, d in zip(ids, await _docs(center, [k.agent(i) for i in ids]),
                                   strict=True) if d is not None}
    contacts = await _contacts(center)
    found: list[str] = []

    # The agents' side: state, availability sets and the contact each busy agent names.
    skills = set(await cast(Any, r.smembers(k.skills)))
    for aid, agent in agents.items():
        state = agent.get("state")
        for skill in agent.get("skills", []):
            score = await r.zscore(k.avail(skill), aid)
            if state == "available" and score != agent.get("available_since"):
                found.append(f"agent {aid} is available since {agent.get('available_since')}"
                             f" but its score in avail:{skill} is {score}")
            elif state != "available" and score is not None:
                found.append(f"agent {aid} is {state} but in avail:{skill}")
        skills.update(agent.get("skills", []))
        cid = agent.get("contact")
        if state != "busy":
            if cid is not None or agent.get("next_state") is not None:
                found.append(f"agent {aid} is {state} but names contact {cid} / next state "
                             f"{agent.get('next_state')}")
            continue
        contact = contacts.get(cid) if cid else None
        if contact is None:
            found.append(f"busy agent {aid} names contact {cid}, which does not exist")
        elif contact.get("state") != "assigned" or contact.get("agent") != aid:
            found.append(f"busy agent {aid} names contact {cid}, which is "
                         f"{contact.get('state')} with agent {contact.get('agent')}")
        elif not set(contact.get("skills", [])) <= set(agent.get("skills", [])):
            found.append(f"agent {aid} lacks skills of its contact {cid}")
        if agent.get("next_state") not in (None, "unavailable"):
            found.append(f"busy agent {aid} has next state {agent.get('next_state')}")

    # Every availability set holds only available agents with that skill.
    for skill in sorted(skills):
        for aid in map(str, await r.zrange(k.avail(skill), 0, -1)):
            member = agents.get(aid)
            if member is None or member.get("state") != "available" or skill not in member.get(
                    "skills", []):
                found.append(f"avail:{skill} holds {aid}, which is not an available agent "
                             "with that skill")

    # The contacts' side: each assigned contact's agent is on exactly that contact.
    named = Counter(c.get("agent") for c in contacts.values() if c.get("state") == "assigned")
    for aid, n in sorted(named.items(), key=lambda item: str(item[0])):
        if n > 1:
            on = sorted(cid for cid, c in contacts.items()
                        if c.get("state") == "assigned" and c.get("agent") == aid)
            found.append(f"agent {aid} is named by {n} assigned contacts: {', '.join(on)}")
    for cid, contact in sorted(contacts.items()):
        if contact.get("state") != "assigned":
            continue
        aid = contact.get("agent")
        named_agent = agents.get(aid) if aid else None
        if named_agent is None:
            found.append(f"assigned contact {cid} names agent {aid}, who does not exist")
        elif named_agent.get("state") != "busy" or named_agent.get("contact") != cid:
            found.append(f"assigned contact {cid} names agent {aid}, who is "
                         f"{named_agent.get('state')} on contact {named_agent.get('contact')}")

    # The queue: exactly the queued contacts, and the signature counts agree with it.
    queued = set(map(str, await r.zrange(k.queue, 0, -1)))
    waiting = {cid for cid, c in contacts.items() if c.get("state") == "queued"}
    for cid in sorted(queued - waiting):
        found.append(f"queue holds {cid}, which is "
                     f"{contacts[cid].get('state') if cid in contacts else 'missing'}")
    for cid in sorted(waiting - queued):
        found.append(f"contact {cid} is queued but not in the queue")
    sigs = Counter(",".join(contacts[cid].get("skills", [])) for cid in queued & waiting)
    stored = {s: int(n) for s, n in (await r.hgetall(k.waiting_sigs)).items()}
    if stored != dict(sigs):
        found.append(f"waiting signatures {stored} disagree with the queue {dict(sigs)}")
    return found
