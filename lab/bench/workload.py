"""The generated workload and how it is loaded into Redis, plus the correctness checks.

One seeded generator gives every dispatcher the same agents (skills) and the same contacts
(required skills, ids). Agents and contacts are written with the library's own functions
(``acd_agent_create``, ``acd_contact_create``), pipelined so setup stays short; nothing is
written behind the library's back.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from redis.asyncio import Redis

from acd.center import Center
from acd.invariants import violations

PIPELINE = 500  # documents per JSON.MGET when checking
CONCURRENCY = 32
T = TypeVar("T")


@dataclass(frozen=True)
class Workload:
    """Agents with ``agent_skills`` of ``skills`` skills each; contacts needing 2-3 of them."""

    agents: int
    contacts: int
    skills: int = 20
    agent_skills: int = 8
    contact_skills: tuple[int, ...] = (2, 3)
    seed: int = 1
    agent_skill_sets: list[list[str]] = field(default_factory=list, repr=False, compare=False)
    contact_specs: list[tuple[str, list[str]]] = field(
        default_factory=list, repr=False, compare=False)

    @classmethod
    def generate(cls, agents: int, contacts: int, skills: int = 20, agent_skills: int = 8,
                 contact_skills: tuple[int, ...] = (2, 3), seed: int = 1) -> Workload:
        rng = random.Random(seed)
        names = [f"s{i:02d}" for i in range(skills)]
        agent_sets = [sorted(rng.sample(names, agent_skills)) for _ in range(agents)]
        specs = [(uuid.UUID(int=rng.getrandbits(128), version=4).hex,
                  sorted(rng.sample(names, rng.choice(contact_skills))))
                 for _ in range(contacts)]
        return cls(agents, contacts, skills, agent_skills, contact_skills, seed,
                   agent_sets, specs)

    def describe(self) -> dict[str, Any]:
        return {
            "agents": self.agents,
            "skills": self.skills,
            "skills_per_agent": self.agent_skills,
            "skills_per_contact": "-".join(str(n) for n in self.contact_skills),
            "contacts": self.contacts,
        }

    @staticmethod
    def agent_id(i: int) -> str:
        return f"a{i:06d}"


async def used_memory(redis: Redis) -> int:
    info = await redis.info("memory")
    return int(info["used_memory"])


async def stream_memory(redis: Redis, center: Center) -> int:
    """Bytes held by the center's capped event and wake streams (excluded from deltas)."""
    total = 0
    for key in (center.keys.events, center.keys.wake):
        usage = await redis.memory_usage(key, samples=0)
        total += int(usage or 0)
    return total


async def _each(items: Sequence[T], work: Callable[[T], Awaitable[object]],
                concurrency: int = CONCURRENCY) -> None:
    """Run ``work`` on every item, ``concurrency`` at a time, in order of start."""
    it = iter(items)

    async def worker() -> None:
        for item in it:
            await work(item)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def create_agents(center: Center, workload: Workload, available: bool) -> None:
    """Create every agent of the workload with Center.create_agent (acd_agent_create)."""

    async def one(i: int) -> None:
        aid = workload.agent_id(i)
        await center.create_agent(aid, "Agent", aid, workload.agent_skill_sets[i], available)

    await _each(range(workload.agents), one)


async def queue_contacts(center: Center, specs: Sequence[tuple[str, list[str]]]) -> None:
    """Queue contacts with Center.create_contact (acd_contact_create), in order.

    One at a time: the queue's order must be the workload's order for every run.
    """
    for cid, skills in specs:
        await center.create_contact(skills, contact_id=cid)


@dataclass
class Check:
    """Correctness of one run, read back from the documents after it."""

    contacts: int = 0
    assigned: int = 0
    still_queued: int = 0
    double_assigned_contacts: int = 0  # a contact reported assigned more than once
    agents_with_two_contacts: int = 0  # an agent named by two assigned contacts
    agent_contact_mismatch: int = 0  # busy agent's .contact does not name the contact
    missing_skill: int = 0  # agent lacks a skill the contact needs
    stats_assigned: int = 0  # the center's 'assigned' counter
    # acd.invariants over the whole center, both sides (not for the naive dispatcher)
    violations: int = 0
    first_violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.double_assigned_contacts == 0 and self.agents_with_two_contacts == 0
                and self.agent_contact_mismatch == 0 and self.missing_skill == 0
                and self.stats_assigned == self.assigned and self.violations == 0)

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "ok": self.ok}


async def check_assignments(center: Center, specs: Sequence[tuple[str, list[str]]],
                            reported: Sequence[tuple[str, str]] | None = None,
                            naive: bool = False, ended_ok: bool = False) -> Check:
    """Read every contact and the agents they name; count what breaks the invariants.

    ``reported`` are the (contact, agent) pairs the dispatcher(s) reported, if known: a
    contact appearing twice there was assigned twice. The naive dispatcher keeps no stats
    counter, so ``naive`` skips that comparison. With ``ended_ok`` (runs that complete
    contacts, freeing their agents for the next ones) a completed contact counts as
    assigned, and only the agents of contacts still assigned are checked.
    """
    check = Check(contacts=len(specs))
    by_agent: dict[str, list[str]] = {}
    for start in range(0, len(specs), PIPELINE):
        chunk = [cid for cid, _ in specs[start:start + PIPELINE]]
        for cid, contact in zip(chunk, await center.get_contacts(chunk), strict=True):
            if contact is None:
                continue
            if ended_ok and contact.state == "completed" and contact.agent:
                check.assigned += 1
            elif contact.state == "assigned" and contact.agent:
                check.assigned += 1
                by_agent.setdefault(contact.agent, []).append(cid)
            elif contact.state == "queued":
                check.still_queued += 1
    check.agents_with_two_contacts = sum(1 for cs in by_agent.values() if len(cs) > 1)
    need = dict(specs)
    agents = sorted(by_agent)
    for start in range(0, len(agents), PIPELINE):
        ids = agents[start:start + PIPELINE]
        for aid, agent in zip(ids, await center.get_agents(ids), strict=True):
            cids = by_agent[aid]
            if agent is None or agent.state != "busy" or agent.contact not in cids:
                check.agent_contact_mismatch += 1
            have = set(agent.skills if agent else [])
            check.missing_skill += sum(1 for c in cids if not set(need[c]) <= have)
    if reported is not None:
        seen: set[str] = set()
        for cid, _ in reported:
            if cid in seen:
                check.double_assigned_contacts += 1
            seen.add(cid)
    counters = await center.counters()
    check.stats_assigned = check.assigned if naive else counters.get("assigned", 0)
    if not naive:  # the textbook dispatcher keeps no agent documents in step
        found = await violations(center)
        check.violations, check.first_violations = len(found), found[:5]
    return check
