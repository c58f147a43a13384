"""Steps by waiting time in the simulator (acd.steps): the scenario's relaxation and
maximum wait become the center's defaults (scaled to the ACD's clock), and the KPIs count
contacts relaxed, overflowed and closed, and the abandoned ones' wait, per combination."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError
from real_acd import run_on_the_acd

from acd.simulator import Scenario
from acd.simulator.kpis import Outcome, summarize


def test_the_scenarios_steps_are_the_centers_defaults_in_real_seconds() -> None:
    scenario = Scenario(time_scale=60, max_wait=120, relaxation={  # type: ignore[arg-type]
        "spanish,billing": [{"after_s": 30, "skills": ["billing"]}]})
    assert scenario.default_steps({"billing", "billing,spanish"}) == {
        "billing": [{"after_s": 2.0, "close": "max_wait"}],
        "billing,spanish": [{"after_s": 0.5, "skills": ["billing"]},
                            {"after_s": 2.0, "close": "max_wait"}]}
    assert Scenario().default_steps({"billing"}) == {}, "none by default"


def test_bad_steps_are_refused() -> None:
    for relaxation, max_wait in (({"a,b": [{"after_s": 30, "skills": ["a", "b"]}]}, None),
                                 ({"a,b": [{"after_s": 30, "skills": ["a"]}]}, 20.0),
                                 ({"a,b": [{"after_s": -1, "skills": ["a"]}]}, None)):
        with pytest.raises(ValidationError):
            Scenario(relaxation=relaxation, max_wait=max_wait)  # type: ignore[arg-type]


def test_the_kpis_count_what_steps_and_callers_did() -> None:
    def one(**kw: object) -> Outcome:
        fields: dict[str, object] = {"answered": False, "abandoned": False, "wait": None, **kw}
        return Outcome(signature="a,b", arrived=0.0, **fields)  # type: ignore[arg-type]
    k = summarize([one(answered=True, wait=1.0, moved="relaxed"), one(closed=True, wait=60.0),
                   one(abandoned=True, wait=10.0), one(abandoned=True, wait=20.0)], 20, 0.005)
    assert (k.offered, k.closed, k.abandoned, k.unfinished) == (4, 1, 2, 0)
    assert (k.relaxed_rate, k.closed_rate, k.abandon_rate) == (0.25, 0.25, 0.5)
    assert k.abandon_wait_mean == 15.0


@pytest.mark.long
async def test_contacts_nobody_could_serve_are_relaxed_and_served(redis_url: str) -> None:
    # Agents have billing only: a billing+spanish contact waits until its step (30 s)
    # relaxes it; with a maximum wait of 10 minutes nobody is closed at this load.
    scenario = Scenario(center=f"relax-{uuid.uuid4().hex[:8]}", skills=["billing"],
                        groups=[{"count": 4, "skills": ["billing"]}],  # type: ignore[list-item]
                        contact_types=[{"skills": ["billing", "spanish"]},  # type: ignore[list-item]
                                       {"skills": ["billing"], "weight": 2}],
                        rate_per_hour=120, handle={"mean": 60.0},  # type: ignore[arg-type]
                        duration=1800, time_scale=300, seed=5, drain_timeout=30,
                        max_wait=600, relaxation={  # type: ignore[arg-type]
                            "billing,spanish": [{"after_s": 30, "skills": ["billing"]}]})
    report = await run_on_the_acd(scenario, redis_url)
    assert not report.overlaps
    both = report.per_skill["billing,spanish"]
    assert both.answered > 5 and both.relaxed_rate == 1.0, both
    assert both.asa is not None and both.asa >= 29, "served only once relaxed"
    assert report.per_skill["billing"].relaxed_rate == 0
    assert report.kpis.closed == 0
