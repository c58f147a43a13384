"""Offers in the simulator (acd.offers): the agents accept an offer with the scenario's
probability, else let it time out in Redis; the extra wait the run measures agrees with
what the ideal model (acd.simulator.ideal.offer_excess_waits) predicts from the same
draws."""

from __future__ import annotations

import statistics
import uuid

import pytest
from pydantic import ValidationError

from acd import Center, connect
from acd.simulator import Scenario, run
from acd.simulator.ideal import missed_offers, offer_excess_waits


def test_the_answers_are_drawn_per_contact_and_offer() -> None:
    scenario = Scenario(seed=5, accept_probability=0.5, offer_timeout_seconds=10)
    draws = [missed_offers(scenario, i) for i in range(2000)]
    assert draws == [missed_offers(scenario, i) for i in range(2000)], "the same every time"
    assert 0.9 < statistics.fmean(draws) < 1.1  # geometric: (1 - p) / p = 1
    assert missed_offers(Scenario(seed=5), 7) == 0, "p = 1: every first offer accepted"
    assert scenario.offer_timeout_real == 0.167, "the center keeps whole ms"
    with pytest.raises(ValidationError):
        Scenario(accept_probability=0)


@pytest.mark.long
@pytest.mark.timeout(300)
async def test_the_extra_wait_of_offers_agrees_with_the_ideal_model(redis_url: str) -> None:
    # 5 Erlangs on 15 agents, plus the offers' holds: agents to spare, where the ideal
    # model is exact. An offer lasts 30 s (1.5 s real at 20x); accepted with p = 0.5, a
    # contact misses one on average: about 30 s more waiting, as the model predicts it
    # from the same draws. What is left is the ACD's own delay and the accept's call: at
    # 20x a few ms real are a fraction of a scenario second, a few % of that.
    scenario = Scenario(center=f"offers-{uuid.uuid4().hex[:8]}", agents=15,
                        skills=["support"], rate_per_hour=300,
                        handle={"mean": 60.0},  # type: ignore[arg-type]
                        duration=2400, time_scale=20, seed=17, drain_timeout=60,
                        offer_timeout_seconds=30, accept_probability=0.5)
    redis = connect(redis_url)
    try:
        report = await run(scenario, via="redis", redis_url=redis_url, dispatchers=1)
    finally:
        await Center(redis, str(scenario.center)).wipe()
        await redis.aclose()
    assert not report.overlaps
    excess, extra = offer_excess_waits(report.samples.outcomes, scenario.agents, scenario)
    assert len(excess) > 150, "too few answered contacts to judge"
    predicted, delay = statistics.fmean(extra.values()), statistics.fmean(excess.values())
    measured = predicted + delay  # measured wait minus the ideal wait without offers
    print(f"offers: extra wait predicted {predicted:.2f} s, measured {measured:.2f} s, "
          f"the ACD's own delay {delay:.3f} s per contact (scenario seconds)")
    assert 15.0 < predicted < 50.0, predicted
    assert abs(measured - predicted) < 0.15 * predicted, (measured, predicted)
    assert report.kpis.unfinished == 0 and report.kpis.abandoned == 0
