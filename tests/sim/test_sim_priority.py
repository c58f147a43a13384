"""A priority mix in the simulator: each contact's class drawn from the scenario's seed,
the center's point set for the run (scaled to the ACD's clock), KPIs per class."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from acd import Center, connect
from acd.simulator import Scenario, run

MIX = [{"priority": 0, "weight": 3}, {"priority": 5, "weight": 1}]


def test_a_priority_mix_leaves_the_traffic_of_a_seed_as_it_was() -> None:
    plain = Scenario(rate_per_hour=600, duration=3600, seed=3).draw()
    mixed = Scenario(rate_per_hour=600, duration=3600, seed=3,
                     priorities=MIX).draw()  # type: ignore[arg-type]
    assert [(a.at, a.skills, a.handle) for a in plain.arrivals] == [
        (a.at, a.skills, a.handle) for a in mixed.arrivals]
    assert {a.priority for a in plain.arrivals} == {0}
    high = sum(a.priority == 5 for a in mixed.arrivals) / len(mixed.arrivals)
    assert 0.18 < high < 0.32, high  # weight 1 of 4, ~600 draws


def test_a_bad_mix_is_refused() -> None:
    for bad in ([], [{"priority": 101}], [{"priority": -1}], [{"priority": 1, "weight": 0}]):
        with pytest.raises(ValidationError):
            Scenario(priorities=bad)  # type: ignore[arg-type]


async def test_the_high_class_waits_less_in_a_loaded_run(redis_url: str) -> None:
    # 4.75 Erlangs on 5 agents: queues form; a point worth 600 s puts class 5 ahead of
    # any wait this run sees. Seeded: the same traffic every time.
    scenario = Scenario(center=f"prio-{uuid.uuid4().hex[:8]}", agents=5, skills=["support"],
                        rate_per_hour=285, handle={"mean": 60.0},  # type: ignore[arg-type]
                        duration=2400, time_scale=600, seed=11, drain_timeout=30,
                        priorities=MIX, priority_seconds=600)  # type: ignore[arg-type]
    redis = connect(redis_url)
    try:
        report = await run(scenario, via="redis", redis_url=redis_url, dispatchers=1)
        assert await Center(redis, str(scenario.center)).seconds_per_point() == 1.0
    finally:
        await Center(redis, str(scenario.center)).wipe()
        await redis.aclose()
    assert not report.overlaps
    high, low = report.per_priority["5"], report.per_priority["0"]
    assert list(report.per_priority) == ["5", "0"]
    assert high.offered + low.offered == report.kpis.offered
    assert high.answered > 20 and low.answered > 60, (high, low)
    assert high.asa is not None and low.asa is not None
    assert high.asa < low.asa / 2, (high.asa, low.asa)
    assert (high.service_level or 0) > (low.service_level or 0)
    assert report.document()["per_priority"]["5"]["asa"] == high.asa
