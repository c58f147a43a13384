"""Every key of one center, found with SCAN or, where SCAN is refused, through the
center's own indexes (what Center.wipe deletes and the lessons' cleanup counts).

SCAN is the whole truth and the fast way, but it returns every key name of the database
whatever the user's key patterns: a workshop learner's Redis user (lab.redis_users) may not
run it. Without it the keys are the ones the key schema (acd/keys.py) names, found from
the center's sets, hashes and streams: its agents and their documents, its skills and
their sets, the skill combinations of its index, and the contacts that are queued, filed
in the index, on an agent, or named by an event still in the capped events stream. A key
written around the Functions under another name (a lesson's scratch key) is not found
that way: it stays until an admin wipes the center (``python -m lab workshop remove``).
"""

from __future__ import annotations

import json
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import NoPermissionError

from acd.commands import command
from acd.keys import LEARNER_USER_PREFIX, Keys
from acd.levels import MAX_LEVEL, needs

SCAN_COUNT = 500
PAGE = 1000  # entries or documents one read returns: no read holds Redis for long
FIXED = ("agents", "skills", "queue", "sigs", "ready", "parked_on", "unpark", "meta",
         "stats", "events", "wake", "kpis", "wrap_up", "steps_due", "steps", "outcomes",
         "offers", "excluded")
"""The suffixes of a center's keys that are not per agent, contact, skill or combination."""


async def key_names(redis: Redis, keys: Keys) -> list[str]:
    """Every existing key of the center: SCAN for its hash tag when the user may, else
    the keys its indexes name (see the module's docstring)."""
    if is_learner(redis):
        return await indexed_key_names(redis, keys)
    try:
        return [str(k) async for k in redis.scan_iter(match=keys.pattern(), count=SCAN_COUNT)]
    except NoPermissionError:
        return await indexed_key_names(redis, keys)


def is_learner(redis: Redis) -> bool:
    """Whether ``redis`` connects as a workshop learner, who may not SCAN (nor remove a
    center from the registry): known from its user name, so that no refused attempt fills
    the server's ACL LOG, which the instructor reads."""
    pool = getattr(redis, "connection_pool", None)
    user = getattr(pool, "connection_kwargs", {}).get("username") or ""
    return str(user).startswith(LEARNER_USER_PREFIX)


async def indexed_key_names(redis: Redis, keys: Keys) -> list[str]:
    """The center's keys its indexes name, that exist; no SCAN."""
    r = cast(Any, redis)
    agents = {str(a) for a in await r.smembers(keys.agents)}
    skills = {str(s) for s in await r.smembers(keys.skills)}
    parked_on = {str(k): str(v) for k, v in (await r.hgetall(keys.parked_on)).items()}
    skills |= set(parked_on.values())
    sigs = {str(s) for s in await r.hkeys(keys.waiting_sigs)} | set(parked_on)
    sigs |= {str(s) for s in await r.zrange(keys.ready, 0, -1)}
    contacts = {str(c) for c in await r.zrange(keys.queue, 0, -1)}
    for sig in sigs:
        contacts |= {str(c) for c in await r.zrange(keys.combo(sig), 0, -1)}
        skills |= {s for s in needs(sig) if s}
    from_events = await _named_by_events(redis, keys)
    agents |= from_events["agent"]
    contacts |= from_events["contact"]
    skills |= from_events["skill"]
    ids = sorted(agents)
    for start in range(0, len(ids), PAGE):
        chunk = [keys.agent(i) for i in ids[start:start + PAGE]]
        for raw in await command(redis, "JSON.MGET", *chunk, "$"):
            for doc in json.loads(raw or "[]"):
                skills |= {str(s) for s in doc.get("skills") or []}
                if doc.get("contact"):
                    contacts.add(str(doc["contact"]))
    names = [f"{keys.tag}:{suffix}" for suffix in FIXED]
    names += [keys.agent(i) for i in ids] + [keys.contact(c) for c in sorted(contacts)]
    names += [keys.combo(s) for s in sorted(sigs)]
    for skill in sorted(skills):
        names += [keys.avail(skill), keys.skill_agents(skill), keys.parked(skill),
                  keys.fewest(skill), *(keys.avail_at(level, skill)
                                        for level in range(2, MAX_LEVEL + 1))]
    return await _existing(redis, names)


async def _named_by_events(redis: Redis, keys: Keys) -> dict[str, set[str]]:
    """Agent and contact ids and skills the events stream names (ended contacts are found
    there, and skills no agent has any more)."""
    found: dict[str, set[str]] = {"agent": set(), "contact": set(), "skill": set()}
    after = "-"
    while True:
        page = await cast(Any, redis).xrange(keys.events, after, "+", count=PAGE)
        for _, fields in page:
            for kind, ids in found.items():
                if fields.get(kind):
                    ids.add(str(fields[kind]))
        if len(page) < PAGE:
            return found
        after = "(" + str(page[-1][0])


async def _existing(redis: Redis, names: list[str]) -> list[str]:
    present: list[str] = []
    for start in range(0, len(names), PAGE):
        chunk = names[start:start + PAGE]
        async with redis.pipeline(transaction=False) as pipe:
            for name in chunk:
                pipe.exists(name)
            flags = await pipe.execute()
        present += [n for n, f in zip(chunk, flags, strict=True) if f]
    return present
