"""Offers in the simulator (acd.offers): the agents accept an offer with the scenario's
probability, else let it time out in Redis; the extra wait the run measures agrees with
what the ideal model (acd.simulator.ideal.offer_excess_waits) predicts from the same
draws."""

from __future__ import annotations

import statistics
import uuid

import pytest
from pydantic import ValidationError
from real_acd import run_on_the_acd
from rich.console import Console

from acd.simulator import Scenario
from acd.simulator.ideal import missed_offers, offer_excess_waits
from acd.simulator.kpis import offer_kpis
from acd.simulator.records import OFFER_ENDS, Record, outcome
from acd.simulator.render import kpi_table
from acd.simulator.scenario import Arrival


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
    report = await run_on_the_acd(scenario, redis_url)
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


async def test_the_report_counts_the_offers(redis_url: str) -> None:
    """A seeded run where agents accept with p = 0.5: offers time out, and every offer
    made ended one way or another (none is left open once the run drained)."""
    scenario = Scenario(center=f"offk-{uuid.uuid4().hex[:8]}", agents=6, skills=["support"],
                        rate_per_hour=900, handle={"mean": 30.0},  # type: ignore[arg-type]
                        duration=300, time_scale=400, seed=3, drain_timeout=20,
                        offer_timeout_seconds=20, accept_probability=0.5)
    report = await run_on_the_acd(scenario, redis_url)
    k, offers = report.kpis, report.kpis.offers
    assert offers is not None and k.answered > 30, k.answered
    assert offers.timed_out > 0 and offers.accepted == k.answered
    assert offers.made == (offers.accepted + offers.rejected + offers.timed_out
                           + offers.withdrawn + offers.open)
    assert offers.open == 0 and offers.rejected == 0  # the simulated agents never reject
    # Each answered contact was held at least by its accepted offer, and the missed ones
    # for the whole timeout each: the mean is at least timeouts x 20 s / answered.
    assert offers.offered_mean is not None
    assert offers.offered_mean >= 0.9 * offers.timed_out * 20 / k.answered
    assert report.document()["kpis"]["offers"]["timed_out"] == offers.timed_out
    console = Console(record=True, width=200)
    console.print(kpi_table(report))
    assert "offers made" in console.export_text()


def test_offer_counts_of_hand_made_records() -> None:
    rec = Record(Arrival(0, 0.0, ["support"], 60.0, None), "c0", queued_at=1000.0)
    rec.offer_made(1000.0)
    rec.offer_ended(OFFER_ENDS["offer_rejected"], 1500.0, None)
    rec.offer_made(1600.0)
    rec.offer_ended(OFFER_ENDS["offer_timed_out"], 2600.0, "missed_offers")
    rec.offer_made(2700.0)
    rec.offer_ended(OFFER_ENDS["offer_accepted"], 2800.0, None)
    rec.assigned_at, rec.wait_ms, rec.outcome, rec.ended_at = 2800.0, 1800.0, "answered", 9e3
    o = outcome(rec, lambda ms: ms / 1000.0, 2.0)
    assert o is not None and o.offered == 3.2  # (500 + 1000 + 100) ms x scale 2
    k = offer_kpis([o])
    assert k is not None and (k.made, k.accepted, k.rejected, k.timed_out, k.open) == (
        3, 1, 1, 1, 0)
    assert k.missed_offer_breaks == 1 and k.offered_mean == 3.2
    assert offer_kpis([outcome(Record(rec.arrival, "c1", queued_at=1.0),
                               lambda ms: ms, 1.0)]) is None  # type: ignore[list-item]
