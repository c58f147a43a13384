"""A center made ready for a real-time run (acd.simulator.engine): the scenario's agents,
with their levels, and every center setting the scenario plays, through the backend.

Apart from the engine because it is one thing - what the ACD is told before the first
contact arrives - and the same whichever way the run then goes. Each setting is written
even at its default where an earlier run on the same center may have left another one
(wrap-up, agent choice); the others only when the scenario uses them, so a backend that
cannot set them (the demo's routes) still plays scenarios that do not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from acd.simulator.backends import Backend
from acd.simulator.scenario import Draw, Scenario

CONCURRENT_CREATES = 20


async def prepare_center(backend: Backend, scenario: Scenario, draw: Draw,
                         agent_ids: list[str], combinations: Iterable[str],
                         note: Callable[[str], None]) -> None:
    """Create the agents (unavailable; an existing one is reused, and made unavailable)
    and apply the scenario's settings; opens the center last. ``combinations``: the
    skill sets of the contacts to come (their default steps by waiting time)."""
    sem = asyncio.Semaphore(CONCURRENT_CREATES)

    async def one(agent_id: str, skills: list[str], levels: dict[str, int]) -> None:
        async with sem:
            if not await backend.create_agent(agent_id, skills, levels or None):
                note(f"agent {agent_id} existed already: reused as it is")
                await backend.set_agent_available(agent_id, False)

    levels = draw.agent_levels or [{} for _ in draw.agents]
    # Also 0: a center kept from an earlier run may have another wrap-up time.
    await backend.set_wrap_up(scenario.wrap_up_real)
    await asyncio.gather(*(one(a, s, lv) for a, s, lv in zip(agent_ids, draw.agents, levels,
                                                              strict=True)))
    if scenario.offer_timeout_seconds:  # the agents answer: see Engine._on_offered
        await backend.set_offers(scenario.offer_timeout_real)
    if scenario.priorities:  # the ACD's clock runs scale times slower
        await backend.set_seconds_per_point(scenario.priority_seconds / scenario.time_scale)
    await backend.set_agent_choice(scenario.agent_choice)
    if scenario.relaxation or scenario.max_wait:  # acd.steps; none by default
        for combination, steps in scenario.default_steps(set(combinations)).items():
            await backend.set_default_steps(combination.split(","), steps)
    await backend.set_open(True)
