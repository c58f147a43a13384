"""A center's agent choice: which of the qualified available agents gets a contact.

``longest_available`` (the default, the original demo's rule): the agent available the
longest. ``fewest_skills``: the agent with the fewest skills in all, then the longest
available, so specialists take the contacts they can serve and generalists stay free for
the contacts only they can (OpenACD's tie-break). ``best_proficiency``: the agent whose
lowest level over the contact's skills is highest, then the longest available
(acd.proficiency; without levels in the center, LAA). Dispatch finds each in a bounded
walk ("Agent choice" and "Proficiency" in acd/lua/01_agent_choice.lua say what they cost).

Switching is a bulk operation (acd.bulk's rules): fewest_skills keeps sorted sets of its
own, so each agent is added to (or taken out of) them in batches; it takes effect when the
last batch is done, and calling it again finishes a switch that was interrupted.
"""

from __future__ import annotations

from typing import Any, cast

from redis.asyncio import Redis

from acd import bulk
from acd.center_part import CenterPart
from acd.errors import InvalidInput
from acd.functions import Functions
from acd.models import AgentChoice
from acd.settings import get_settings

FEWEST_SPAN = 10**13
"""Score in {tag}:fewest:<skill> = skills * FEWEST_SPAN + available_since (as the acd library)."""


def parse(choice: AgentChoice | str) -> AgentChoice:
    """The choice, or InvalidInput naming the bad value and the good ones."""
    try:
        return AgentChoice(choice)
    except ValueError:
        allowed = " or ".join(repr(c.value) for c in AgentChoice)
        raise InvalidInput(f"agent choice {choice!r}: must be {allowed}") from None


async def switch(fn: Functions, redis: Redis, choice: AgentChoice, batch: int
                 ) -> AgentChoice:
    """Switch the center to ``choice``, ``batch`` agents per call; returns the previous
    choice. Stops early, without error, when a later switch started meanwhile."""
    _, run, previous, done = await fn.agent_choice(choice.value, "", False, [])
    if done:
        return AgentChoice(previous)
    # Read after the first call: an agent created later is flagged by its creation.
    ids = await bulk.agent_ids(redis, fn.keys)
    for start in range(0, len(ids), batch):
        changed, run, _, _ = await fn.agent_choice(choice.value, run, False,
                                                   ids[start:start + batch])
        if changed < 0:
            return AgentChoice(previous)
    await fn.agent_choice(choice.value, run, True, [])
    return AgentChoice(previous)


class AgentChoiceMixin(CenterPart):
    """Center's methods for its agent choice (a part of Center: see the module)."""

    async def set_agent_choice(self, choice: AgentChoice | str) -> AgentChoice:
        """How dispatch chooses among the qualified available agents: 'longest_available'
        (the default), 'fewest_skills' (fewest skills in all, then longest available) or
        'best_proficiency' (the highest lowest level over the contact's skills, then LAA).
        Returns the previous choice; in effect once every agent is switched (short calls
        of ``ACD_BULK_BATCH`` agents; a later switch stops an earlier one)."""
        wanted = parse(choice)
        await self.register()
        return await switch(self._fn, self.redis, wanted, get_settings().acd_bulk_batch)

    async def agent_choice(self) -> AgentChoice:
        """The choice last asked for (it rules dispatch once its switch is done)."""
        choice = await cast(Any, self.redis.hget(self.keys.meta, "agent_choice"))
        return AgentChoice(choice or AgentChoice.LONGEST_AVAILABLE)
