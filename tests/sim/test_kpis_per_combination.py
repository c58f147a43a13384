"""The simulator's KPIs per skill combination (acd.simulator.kpis.compute): ASA, service
level and abandonment of each combination's own contacts, from hand-made outcomes whose
figures are known, and the report's table of them."""

from __future__ import annotations

import pytest
from rich.console import Console

from acd.simulator.kpis import Outcome, compute
from acd.simulator.render import skill_table


def answered(sig: str, at: float, wait: float) -> Outcome:
    return Outcome(signature=sig, arrived=at, answered=True, abandoned=False, wait=wait,
                   agent="a", busy_from=at + wait, busy_to=at + wait + 1)


def abandoned(sig: str, at: float, wait: float) -> Outcome:
    return Outcome(signature=sig, arrived=at, answered=False, abandoned=True, wait=wait)


def test_each_combination_has_its_own_figures() -> None:
    outcomes = [answered("billing,en", 10, 5), answered("billing,en", 20, 30),
                abandoned("billing,en", 30, 50), answered("es", 40, 0),
                answered("es", 50, 10), answered("es", 60, 25),
                answered("es", 5, 1)]  # before the window: left out
    overall, per, _ = compute(outcomes, ["a"], start=10, end=100, threshold=20, epsilon=0.5)
    assert list(per) == ["billing,en", "es"]
    bill, es = per["billing,en"], per["es"]
    assert (bill.offered, bill.answered, bill.abandoned) == (3, 2, 1)
    assert bill.asa == pytest.approx(17.5) and bill.abandon_rate == pytest.approx(1 / 3)
    assert bill.service_level == pytest.approx(1 / 3)  # 5 s of 3 ended within 20 s
    assert (es.offered, es.abandoned, es.abandon_rate) == (3, 0, 0)
    assert es.asa == pytest.approx(35 / 3) and es.service_level == pytest.approx(2 / 3)
    assert overall.offered == bill.offered + es.offered == 6
    assert overall.asa == pytest.approx((5 + 30 + 0 + 10 + 25) / 5)


def test_the_report_shows_them_per_combination() -> None:
    _, per, _ = compute([answered("billing,en", 1, 3), abandoned("es", 2, 40)], ["a"],
                        start=0, end=10, threshold=20, epsilon=0.5)
    console = Console(width=120, record=True)
    console.print(skill_table(per))
    text = console.export_text()
    assert "billing,en" in text and "100.0%" in text and "3.00 s" in text
    assert "es" in text and "1 (100.0%)" in text
