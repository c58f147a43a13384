"""The textbook dispatcher the notebooks start from. Kept to teach; never use it.

BZPOPMIN the universal queue, read the contact's skills, ZINTER the skill availability
sets (AGGREGATE MIN: the LAA rule of ``acd.laa``) to rank the qualified agents, then claim
the first with separate commands, and put the contact back a second later in the queue
when nobody qualifies: notebook 04's ``naive_step``, with hooks to stop it between steps
and a run loop. Its ranking is right; the steps around it are the lessons
(tests/test_naive_flaws.py proves 1-4; notebook 07 and ``python -m lab.bench`` measure 5):

1. Between BZPOPMIN and the claim, this process holds the only copy of the contact: if it
   dies there, the contact is lost.
2. The check "is the agent still available?" and the claim are separate commands: two
   dispatchers can both see the agent free and both claim it.
3. Putting a contact back with score + 1000 ms moves it behind contacts that came later.
4. A contact nobody can serve comes back to the head again and again and holds up the
   contacts behind it (head-of-line blocking).
5. ZINTER builds and sorts the whole intersection to use its first member: its cost grows
   with the number of available agents.

``acd.dispatcher`` fixes each of these with one atomic function.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from acd.center import Center
from acd.commands import json_get, json_set

Hook = Callable[[str], Awaitable[None]]


async def _nothing(_: str) -> None:
    return None


@dataclass
class NaiveResult:
    contact: str
    agent: str | None  # None: nobody qualified, the contact was put back


class NaiveDispatcher:
    """One naive dispatcher. The hooks let lessons and tests stop it at a chosen step."""

    def __init__(self, center: Center, pop_timeout: float = 1.0, retry_delay_ms: int = 1000,
                 after_pop: Hook = _nothing, before_claim: Hook = _nothing,
                 backoff: tuple[float, float] = (0.0, 2.0)) -> None:
        self.center = center
        self.pop_timeout = pop_timeout
        self.retry_delay_ms = retry_delay_ms
        self.after_pop = after_pop
        self.before_claim = before_claim
        self.backoff = backoff

    async def step(self) -> NaiveResult | None:
        """Handle the contact at the head of the queue; None if the queue stayed empty."""
        r, k = self.center.redis, self.center.keys
        popped = await cast(Any, r.bzpopmin(k.queue, timeout=self.pop_timeout))
        if popped is None:
            return None
        contact_id, score = str(popped[1]), float(popped[2])
        await self.after_pop(contact_id)  # flaw 1: we hold the only copy here
        skills = await json_get(r, k.contact(contact_id), ".skills")
        # flaw 5: the whole intersection, to use its first member
        ranked = await r.zinter([k.avail(s) for s in skills], aggregate="MIN")
        for member in ranked:
            agent_id = str(member)
            if await json_get(r, k.agent(agent_id), ".state") != "available":
                continue
            await self.before_claim(agent_id)  # flaw 2: someone else may claim it now
            await self._claim(contact_id, agent_id)
            return NaiveResult(contact_id, agent_id)
        # flaws 3 and 4: back in the queue a second later than it first came
        await r.zadd(k.queue, {contact_id: score + self.retry_delay_ms})
        return NaiveResult(contact_id, None)

    async def _claim(self, contact_id: str, agent_id: str) -> None:
        r, k = self.center.redis, self.center.keys
        agent_skills = await json_get(r, k.agent(agent_id), ".skills")
        await json_set(r, k.agent(agent_id), ".state", "busy")
        await json_set(r, k.agent(agent_id), ".contact", contact_id)
        for skill in agent_skills:
            await r.zrem(k.avail(skill), agent_id)
        await json_set(r, k.contact(contact_id), ".state", "assigned")
        await json_set(r, k.contact(contact_id), ".agent", agent_id)

    async def run(self, steps: int | None = None) -> list[NaiveResult]:
        """Run up to ``steps`` steps (all if None); stop when the queue stays empty."""
        results: list[NaiveResult] = []
        while steps is None or len(results) < steps:
            result = await self.step()
            if result is None:
                break
            results.append(result)
            if result.agent is None and self.backoff[1] > 0:
                await asyncio.sleep(random.uniform(*self.backoff))
        return results
