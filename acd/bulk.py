"""Bulk operations: what changes many agents or contacts of a center, in bounded calls.

Opening or closing a center, deleting a skill and deleting a center are many Redis
Function calls, each changing at most ``batch`` agents or contacts (settings:
``ACD_BULK_BATCH``), each wholly: Redis runs one call at a time, so one call over 5,000
agents made every client of every center wait for it. "Bulk operations" in
acd/lua/06_agents.lua says what a reader sees between batches and why that is safe.
:class:`CenterBulk` is part of :class:`acd.center.Center` (``open``, ``close``,
``delete_skill``, ``delete``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis

from acd.center_part import CenterPart
from acd.commands import command
from acd.errors import InvalidState, NotFound
from acd.functions import Functions
from acd.keys import CENTERS, Keys, valid_name
from acd.models import valid_flag
from acd.settings import get_settings

SCAN_COUNT = 1000  # set members one SSCAN returns (about): reads stay short too
NAMED = 5  # assigned contacts a refusal names


@dataclass(frozen=True, slots=True)
class CenterDeletion:
    """What deleting a center did."""

    center: str
    agents: int  # agents deleted
    abandoned: int  # waiting contacts abandoned (they stay readable until they expire)


@dataclass(frozen=True, slots=True)
class SkillDeletion:
    """What deleting a skill did."""

    skill: str
    agents: int  # agents that had it
    abandoned: int  # waiting contacts that needed it, abandoned (only when forced)


async def agent_ids(redis: Redis, keys: Keys) -> list[str]:
    """Every agent id of the center, sorted, read in short SSCAN steps."""
    found: set[str] = set()
    async for member in redis.sscan_iter(keys.agents, count=SCAN_COUNT):
        found.add(str(member))
    return sorted(found)


async def set_open(fn: Functions, redis: Redis, is_open: bool, batch: int) -> int:
    """Open (every agent not on a contact becomes available) or close the center, ``batch``
    agents per call; returns how many changed now. Stops early, without error, when a
    later open or close started meanwhile (that one covers every agent)."""
    ids = await agent_ids(redis, fn.keys)
    run, changed = "", 0
    # One call even without agents: it records the open flag and emits center_state.
    for start in range(0, max(len(ids), 1), batch):
        done, run = await fn.center_state(is_open, run, ids[start:start + batch])
        if done < 0:
            break
        changed += done
    return changed


async def delete_skill(fn: Functions, skill: str, force: bool, keep_seconds: int,
                       batch: int) -> tuple[int, int]:
    """Remove ``skill`` from every agent, ``batch`` agents or contacts per call; returns
    (agents that lost it, waiting contacts abandoned). Calling again after an interruption
    finishes the deletion (and counts only what it did)."""
    agents = abandoned = 0
    while True:
        lost, dropped, done = await fn.skill_delete(skill, force, keep_seconds, batch)
        agents, abandoned = agents + lost, abandoned + dropped
        if done:
            return agents, abandoned


async def assigned_contacts(redis: Redis, keys: Keys) -> list[str]:
    """The contacts the center's agents are on, read in short steps. (A contact only
    offered to an agent is abandoned with the center: acd_center_delete.)"""
    ids = await agent_ids(redis, keys)
    found: list[str] = []
    for start in range(0, len(ids), SCAN_COUNT):
        chunk = [keys.agent(i) for i in ids[start:start + SCAN_COUNT]]
        states = await command(redis, "JSON.MGET", *chunk, "$.state")
        for raw, state in zip(await command(redis, "JSON.MGET", *chunk, "$.contact"), states,
                              strict=True):
            if json.loads(state or "[]") != ["offered"]:
                found += [c for c in json.loads(raw or "[]") if c]
    return sorted(found)


async def exists(redis: Redis, keys: Keys) -> bool:
    """Registered, or has any of the keys every center with something in it has."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.sismember(CENTERS, keys.center)
        pipe.exists(keys.meta, keys.agents, keys.queue, keys.skills, keys.stats)
        registered, present = await pipe.execute()
    return bool(registered) or int(present) > 0


async def delete_center(fn: Functions, redis: Redis, keep_seconds: int, batch: int
                        ) -> CenterDeletion:
    """Delete the center: refused (InvalidState naming them) while contacts are assigned;
    else its waiting contacts are abandoned, its agents and every other key deleted,
    ``batch`` at a time, and it leaves the set dispatchers serve. NotFound for a center
    that has nothing. Calling again after an interruption finishes the deletion."""
    keys = fn.keys
    if not await exists(redis, keys):
        raise NotFound(f"center {keys.center}")
    # Marked first: from now on no contact becomes assigned, so the check stays true.
    found = await fn.center_delete_mark("begin")
    if found != "purging":
        assigned = await assigned_contacts(redis, keys)
        if assigned:
            await fn.center_delete_mark("abort")
            named = ", ".join(assigned[:NAMED]) + (", ..." if len(assigned) > NAMED else "")
            raise InvalidState(f"center {keys.center} has {len(assigned)} assigned contacts "
                               f"({named}): complete them, then delete it")
    agents = abandoned = 0
    while True:
        dropped, deleted, done = await fn.center_delete_purge(batch, keep_seconds)
        agents, abandoned = agents + deleted, abandoned + dropped
        if done:
            break
    # Last: a deletion interrupted before this is still listed, so DELETE finds it again.
    await cast(Any, redis.srem(CENTERS, keys.center))
    return CenterDeletion(center=keys.center, agents=agents, abandoned=abandoned)


class CenterBulk(CenterPart):
    """A center's bulk operations (see the module); part of :class:`acd.center.Center`."""

    async def open(self) -> int:
        """Every agent not on a contact becomes available (one on a contact, when it
        ends); returns how many changed now. Many short calls, ``ACD_BULK_BATCH`` agents
        each."""
        return await set_open(self._fn, self.redis, True, get_settings().acd_bulk_batch)

    async def close(self) -> int:
        """Every agent not on a contact becomes unavailable (one on a contact, when it
        ends); returns how many changed now. A bulk operation, like open()."""
        return await set_open(self._fn, self.redis, False, get_settings().acd_bulk_batch)

    async def delete_skill(self, skill: str, force: bool = False) -> SkillDeletion:
        """Remove ``skill`` from every agent. Refused (InvalidState, naming them) while
        contacts wait that need it, since nobody could serve them any more; ``force``
        abandons them instead; also refused (InvalidState, naming them) when it is the
        only skill of some agents, and NotFound when no agent has it and no waiting
        contact needs it. Many short calls."""
        settings = get_settings()
        agents, abandoned = await delete_skill(
            self._fn, valid_name("skill", skill), valid_flag("force", force),
            settings.contact_keep_seconds, settings.acd_bulk_batch)
        return SkillDeletion(skill=skill, agents=agents, abandoned=abandoned)

    async def delete(self) -> CenterDeletion:
        """What DELETE /v1/centers/{center} does: refused (InvalidState, naming them) while
        contacts are assigned; else waiting contacts are abandoned and every agent and key
        deleted, in short calls. NotFound if the center has nothing."""
        settings = get_settings()
        return await delete_center(self._fn, self.redis, settings.contact_keep_seconds,
                                        settings.acd_bulk_batch)
