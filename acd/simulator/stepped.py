"""A scenario's draws played against the real ACD event by event, on a virtual clock.

The engine (acd/simulator/engine.py) plays callers and agents in scaled real time, so its
figures include the ACD's latency and vary a little from run to run. Here every arrival,
completion and hang-up is taken in the order of its scenario time and followed by one
explicit dispatch (Center.dispatch, the center in manual mode so no dispatcher service
interferes): which contact an agent takes and which agent a contact gets are the ACD's
own decisions (FIFO per combination without head-of-line blocking, the agent choice),
and a wait is the virtual time from arrival to the event that made the assignment. The
server's clock is made to move on after each event that frees an agent, so the order in
which agents became available is the virtual one. Same scenario and seed, same figures;
a few thousand contacts take seconds. What it cannot show: latency, or anything the
engine's real-time play measures.
"""

from __future__ import annotations

import asyncio
import heapq
import time

from acd.center import Center
from acd.errors import InvalidState
from acd.simulator.kpis import Kpis, Outcome, compute
from acd.simulator.scenario import Scenario

ARRIVE, COMPLETE, HANG_UP = 0, 1, 2  # at equal times, arrivals come first


async def run_stepped(scenario: Scenario, center: Center
                      ) -> tuple[Kpis, dict[str, Kpis], list[Outcome]]:
    """Play ``scenario`` on ``center`` (wiped first, and again at the end); returns the
    overall KPIs and those per skill combination of the contacts that arrived in the
    window (warmup to duration), and every contact's outcome."""
    draw = scenario.draw()
    await center.wipe()
    try:
        await center.set_dispatch_mode("manual")
        agents = [f"sim-{i + 1:03d}" for i in range(len(draw.agents))]
        for aid, skills, levels in zip(agents, draw.agents, draw.agent_levels, strict=True):
            await center.create_agent(aid, "Sim", aid, skills, levels=levels)
        await center.set_agent_choice(scenario.agent_choice)
        await center.open()
        outcomes = [Outcome(signature=a.signature, arrived=a.at, answered=False,
                            abandoned=False, wait=None, index=a.index, planned=a.at)
                    for a in draw.arrivals]
        events: list[tuple[float, int, int, int]] = []
        for a in draw.arrivals:
            heapq.heappush(events, (a.at, ARRIVE, a.index, 0))
            if a.patience is not None:
                heapq.heappush(events, (a.at + a.patience, HANG_UP, a.index, 0))
        while events:
            now, kind, i, _ = heapq.heappop(events)
            o = outcomes[i]
            if kind == ARRIVE:
                await center.create_contact(draw.arrivals[i].skills, f"c{i:06d}",
                                            min_levels=draw.arrivals[i].min_levels)
            elif kind == COMPLETE:
                await center.complete_contact(f"c{i:06d}")
                o.busy_to = now
                await _next_ms(center)
            elif o.answered:
                continue  # hung up after being answered: nothing happens
            else:
                try:
                    await center.abandon_contact(f"c{i:06d}")
                except InvalidState:  # cannot happen: assigned contacts are answered
                    raise
                o.abandoned, o.wait = True, now - o.arrived
                continue
            for done in await center.dispatch():
                j = int(done.contact[1:])
                served = outcomes[j]
                served.answered, served.wait, served.agent = True, now - served.arrived, done.agent
                served.busy_from = now
                heapq.heappush(events, (now + draw.arrivals[j].handle, COMPLETE, j, 0))
        end = scenario.duration if scenario.duration is not None else draw.span + 1e-9
        kpis, per_type, _ = compute(outcomes, agents, scenario.warmup, end,
                                    scenario.sl_threshold, 0.0)
        return kpis, per_type, outcomes
    finally:
        await center.wipe()


async def _next_ms(center: Center) -> None:
    # An agent freed by the next event must look newer to LAA than this one.
    now = await center.server_ms()
    deadline = time.monotonic() + 2
    while await center.server_ms() <= now:
        if time.monotonic() > deadline:
            raise RuntimeError("the server's clock does not move")
        await asyncio.sleep(0.0002)
