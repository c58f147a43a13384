"""Unit tests of the simulator's pure parts: Erlang formulas, draws, KPIs, the ideal replay."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from acd.simulator.erlang import ErlangA, ErlangC, erlang_b, erlang_c, model
from acd.simulator.ideal import excess_waits, ideal_outcomes, replay
from acd.simulator.kpis import Outcome, batch_interval, percentile, queue_series, summarize
from acd.simulator.scenario import Arrival, Scenario

# -- Erlang C: the worked example of facts.md section 4 ------------------------------------


def test_erlang_c_worked_example() -> None:
    c = ErlangC(rate=360 / 1800, handle=240, agents=55)
    assert c.load == pytest.approx(48)
    assert c.occupancy == pytest.approx(0.873, abs=5e-4)
    assert c.p_wait == pytest.approx(0.2387, abs=5e-5)
    assert c.asa == pytest.approx(8.18, abs=5e-3)
    assert c.service_level(15) == pytest.approx(0.846, abs=5e-4)
    assert c.service_level(20) == pytest.approx(0.867, abs=5e-4)


def test_erlang_b_and_c_small_cases() -> None:
    assert erlang_b(1, 1.0) == pytest.approx(0.5)
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = rho
    assert erlang_c(2, 2.0) == 1.0
    assert erlang_b(400, 380.0) < 1  # no overflow at large sizes


def test_time_scaling_keeps_p_wait_and_sl_and_divides_asa() -> None:
    k = 900.0
    a, b = ErlangC(160 / 3600, 180, 10), ErlangC(160 / 3600 * k, 180 / k, 10)
    assert b.p_wait == pytest.approx(a.p_wait)
    assert b.service_level(20 / k) == pytest.approx(a.service_level(20))
    assert b.asa == pytest.approx(a.asa / k)


def test_unstable_erlang_c() -> None:
    c = ErlangC(rate=1.0, handle=10, agents=10)
    assert not c.stable
    assert c.asa == math.inf


# -- Erlang A ------------------------------------------------------------------------------


def test_erlang_a_tends_to_erlang_c_without_abandonment() -> None:
    c = ErlangC(360 / 1800, 240, 55)
    a = ErlangA(360 / 1800, 240, 55, patience=1e9)
    assert a.p_wait == pytest.approx(c.p_wait, rel=1e-4)
    assert a.asa == pytest.approx(c.asa, rel=1e-3)
    assert a.service_level(20) == pytest.approx(c.service_level(20), abs=1e-4)
    assert a.p_abandon < 1e-6


def test_erlang_a_with_patience_equal_to_handle_is_m_m_infinity() -> None:
    # theta = mu: the number in system is Poisson(A) (M/M/inf), so P(wait) = P(X >= N)
    # and an arrival's chance to abandon is E[queue] * theta / lambda.
    load, n = 9.0, 10
    a = ErlangA(rate=load / 100, handle=100, agents=n, patience=100)
    tail = 1 - sum(math.exp(-load) * load**k / math.factorial(k) for k in range(n))
    assert a.p_wait == pytest.approx(tail, rel=1e-9)
    assert a.p_abandon == pytest.approx(a.mean_queue / 100 / a.rate, rel=1e-9)


def test_erlang_a_is_consistent() -> None:
    a = ErlangA(rate=0.25, handle=240, agents=55, patience=120)  # overloaded: A = 60
    assert a.stable
    assert 0 < a.p_abandon < 1
    # Little / balance: abandonment rate = theta x mean queue.
    assert a.p_abandon == pytest.approx(a.mean_queue / 120 / 0.25, rel=1e-6)
    # Answered within a very long T -> every answered caller.
    assert a.service_level(1e5) == pytest.approx(1 - a.p_abandon, abs=1e-6)
    assert a.service_level_answered(1e5) == pytest.approx(1.0, abs=1e-6)
    assert a.service_level(5) < a.service_level(20) < a.service_level(60)
    assert isinstance(model(0.25, 240, 55, None), ErlangC)
    assert isinstance(model(0.25, 240, 55, 120), ErlangA)


# -- scenario draws ------------------------------------------------------------------------


def test_same_seed_same_draws_other_seed_other_draws() -> None:
    sc = Scenario(agents=12, skills=["a", "b", "c"], skills_per_agent=2, patience=60,
                  handle={"dist": "lognormal", "mean": 100, "cv": 0.5}, duration=7200)
    assert sc.draw() == sc.draw()
    assert sc.model_copy(update={"seed": 2}).draw() != sc.draw()
    d = sc.draw()
    assert all(len(s) == 2 for s in d.agents)
    assert all(a.patience is not None and a.patience > 0 for a in d.arrivals)
    assert [a.at for a in d.arrivals] == sorted(a.at for a in d.arrivals)


def test_draw_rates_and_handle_means() -> None:
    sc = Scenario(rate_per_hour=3600, handle={"mean": 50}, duration=3600, seed=5)
    d = sc.draw()
    assert 3600 - 4 * 60 < len(d.arrivals) < 3600 + 4 * 60  # Poisson: sd = 60
    mean = sum(a.handle for a in d.arrivals) / len(d.arrivals)
    assert mean == pytest.approx(50, rel=0.07)
    lognormal = Scenario(handle={"mean": 50, "dist": "lognormal", "cv": 0.3},
                         contacts=5000, duration=None, rate_per_hour=3600).draw()
    assert len(lognormal.arrivals) == 5000
    mean = sum(a.handle for a in lognormal.arrivals) / 5000
    assert mean == pytest.approx(50, rel=0.02)


def test_profile_is_piecewise_and_zero_rate_means_no_arrival() -> None:
    sc = Scenario(profile=[{"start": 0, "per_hour": 3600}, {"start": 1000, "per_hour": 0},
                           {"start": 2000, "per_hour": 36_000}], duration=3000)
    d = sc.draw()
    assert not any(1000 <= a.at < 2000 for a in d.arrivals)
    first = sum(1 for a in d.arrivals if a.at < 1000)
    last = sum(1 for a in d.arrivals if a.at >= 2000)
    assert 850 < first < 1150 and 9500 < last < 10500
    assert not sc.constant_rate


def test_groups_and_contact_types() -> None:
    sc = Scenario(groups=[{"count": 2, "skills": ["en", "billing"]},
                          {"count": 3, "skills": ["es"]}],
                  contact_types=[{"skills": ["billing", "en"], "weight": 3},
                                 {"skills": ["es"]}], duration=36_000)
    d = sc.draw()
    assert d.agents == [["billing", "en"]] * 2 + [["es"]] * 3
    sigs = [",".join(a.skills) for a in d.arrivals]
    assert set(sigs) == {"billing,en", "es"}
    assert sigs.count("billing,en") > 2 * sigs.count("es")


@pytest.mark.parametrize("bad", [
    {"duration": None},
    {"skills": ["a"], "skills_per_agent": 2},
    {"profile": [{"start": 5, "per_hour": 1}]},
    {"skills": ["not a skill"]},
    {"handle": {"mean": 0}},
])
def test_invalid_scenarios(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Scenario.model_validate(bad)


# -- KPIs ----------------------------------------------------------------------------------


def _o(arrived: float, wait: float | None, answered: bool = True,
       sig: str = "s") -> Outcome:
    return Outcome(signature=sig, arrived=arrived, answered=answered,
                   abandoned=not answered and wait is not None, wait=wait)


def test_summary_definitions() -> None:
    items = [_o(0, 0.001), _o(1, 10), _o(2, 30), _o(3, 50, answered=False),
             _o(4, None, answered=False)]  # the last: unfinished
    k = summarize(items, threshold=20, epsilon=0.01)
    assert (k.offered, k.answered, k.abandoned, k.unfinished) == (5, 3, 1, 1)
    assert k.abandon_rate == pytest.approx(1 / 4)
    assert k.service_level == pytest.approx(2 / 4)  # within T / (answered + abandoned)
    assert k.service_level_answered == pytest.approx(2 / 3)  # within T / answered
    assert k.p_wait == pytest.approx(3 / 4)  # not answered within epsilon
    assert k.asa == pytest.approx((0.001 + 10 + 30) / 3)
    assert k.wait_p90 == 30


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 90) == 90
    assert percentile(values, 99) == 99
    assert percentile([], 50) is None


def test_batch_interval_and_queue_series() -> None:
    items = [_o(t, 5.0 if t % 2 else 0.0) for t in range(100)]
    iv = batch_interval(items, 0, 100, 10, lambda k: k.asa, 20, 0.01)
    assert iv.batches == 10 and iv.mean == pytest.approx(2.5) and iv.half_width == 0
    series = queue_series([_o(0, 2), _o(1, 0.5)])
    assert series == [(0, 1), (1, 2), (1.5, 1), (2, 0)]


# -- the ideal replay ----------------------------------------------------------------------


def test_replay_fifo_with_abandonment() -> None:
    arrivals = [Arrival(0, 0.0, ["s"], 10.0, None), Arrival(1, 1.0, ["s"], 10.0, None),
                Arrival(2, 2.0, ["s"], 10.0, 5.0), Arrival(3, 3.0, ["s"], 1.0, None)]
    # one agent: 0 served 0-10; 1 waits 9, served 10-20; 2 would wait 18 > 5: abandons;
    # 3 waits 17.
    assert replay(arrivals, 1) == [0.0, 9.0, None, 17.0]
    # two agents: 2 would wait 8 > 5 and abandons; 3 waits 7.
    assert replay(arrivals, 2) == [0.0, 0.0, None, 7.0]


def test_replay_two_agents_exact() -> None:
    arrivals = [Arrival(i, float(i), ["s"], 10.0, None) for i in range(4)]
    assert replay(arrivals, 2) == [0.0, 0.0, 8.0, 8.0]


def test_excess_waits_is_zero_for_the_ideal_acd() -> None:
    sc = Scenario(agents=5, rate_per_hour=100, handle={"mean": 150}, duration=36_000)
    outcomes = ideal_outcomes(sc)
    draw = sc.draw()
    for o in outcomes:  # give the ideal outcomes their busy periods
        o.busy_from = o.arrived + (o.wait or 0.0)
        o.busy_to = o.busy_from + draw.arrivals[o.index].handle
        o.agent = "x"
    excess = excess_waits(outcomes, 5)
    assert len(excess) == len(outcomes)
    assert max(abs(v) for v in excess.values()) < 1e-9
