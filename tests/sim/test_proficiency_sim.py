"""Proficiency (issue 14) in the simulator: a share of contacts needing a minimum level,
played on the real ACD with a virtual clock (acd/simulator/stepped.py).

6 agents at billing level 1 and 3 experts at level 4; 150 contacts an hour, 1 in 5 needs
billing at level 3 or more (only an expert qualifies). Longest available gives the
experts plain contacts too; best_proficiency gives them plain contacts first of all, so
the contacts only they can serve wait longer: rating agents has a cost the KPIs show,
per combination ("billing" vs "billing:3"). Same seeded draws in both runs.
"""

from __future__ import annotations

import uuid

import pytest

from acd import Center, connect
from acd.simulator import AgentGroup, ContactType, HandleTime, Scenario, run
from acd.simulator.stepped import run_stepped

EXPERT = "billing:3"


def scenario(choice: str, seed: int = 1) -> Scenario:
    return Scenario(
        groups=[AgentGroup(count=6, skills=["billing"]),
                AgentGroup(count=3, skills=["billing"], levels={"billing": 4})],
        contact_types=[ContactType(skills=["billing"], weight=4.0),
                       ContactType(skills=["billing"], min_levels={"billing": 3}, weight=1.0)],
        rate_per_hour=150, handle=HandleTime(mean=180), duration=14400, warmup=1800,
        sl_threshold=20, seed=seed, agent_choice=choice)


def test_the_signature_carries_the_minimum() -> None:
    draw = scenario("longest_available").draw()
    assert {a.signature for a in draw.arrivals} == {"billing", EXPERT}
    assert draw.agent_levels == [{}] * 6 + [{"billing": 4}] * 3


@pytest.mark.long
@pytest.mark.timeout(300)
async def test_minimums_are_met_and_best_proficiency_costs_the_experts_contacts(
        redis_url: str) -> None:
    redis = connect(redis_url)
    center = Center(redis, f"t-{uuid.uuid4().hex[:10]}")
    try:
        laa, laa_types, laa_out = await run_stepped(scenario("longest_available"), center)
        best, best_types, best_out = await run_stepped(scenario("best_proficiency"), center)
    finally:
        await redis.aclose()
    experts = {"sim-007", "sim-008", "sim-009"}
    for outcomes in (laa_out, best_out):
        assert all(o.agent in experts for o in outcomes if o.signature == EXPERT and o.answered)
    share = {name: sum(o.agent in experts for o in out if o.signature == "billing")
             / sum(1 for o in out if o.signature == "billing" and o.answered)
             for name, out in (("laa", laa_out), ("best", best_out))}
    sl = {name: (types["billing"].service_level, types[EXPERT].service_level)
          for name, types in (("laa", laa_types), ("best", best_types))}
    print(f"\nshare of plain contacts served by experts {share}; service level "
          f"(plain, expert) {sl}; overall {laa.service_level} vs {best.service_level}")
    assert share["best"] > share["laa"]
    assert sl["best"][1] is not None and sl["laa"][1] is not None
    assert sl["best"][1] < sl["laa"][1]  # the experts' own contacts pay for it


async def test_the_real_time_engine_plays_levels(redis_url: str) -> None:
    """The same agents and contact types in scaled real time (acd.simulator.engine): the
    agents get their levels and the contacts their minimums, so only an expert serves a
    contact needing billing at level 3."""
    fast = scenario("longest_available").model_copy(update={
        "center": f"lv-{uuid.uuid4().hex[:8]}", "duration": 900, "warmup": 0,
        "time_scale": 900, "drain_timeout": 20})
    redis = connect(redis_url)
    try:
        report = await run(fast, via="redis", redis_url=redis_url, dispatchers=1)
        levels = {a.id: a.levels for a in await Center(redis, str(fast.center)).list_agents()}
    finally:
        await Center(redis, str(fast.center)).wipe()
        await redis.aclose()
    assert levels["sim-007"] == {"billing": 4} and levels["sim-001"] == {"billing": 1}
    outcomes = report.samples.outcomes
    expert_contacts = [o for o in outcomes if o.signature == EXPERT and o.answered]
    assert expert_contacts, "no contact needing level 3 was drawn and answered"
    assert {o.agent for o in expert_contacts} <= {"sim-007", "sim-008", "sim-009"}
    assert set(report.per_skill) == {"billing", EXPERT}
    assert not report.overlaps and report.kpis.unfinished == 0
