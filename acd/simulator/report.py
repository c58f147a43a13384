"""The report of a run: KPIs, per-skill and per-agent figures, and the Erlang comparison.

``Report.document()`` is what ``--json`` prints and what is stored at
``Keys(center).kpis``; ``Report.samples`` (queue length over time, waits, occupancy per
agent) feed the charts and stay out of the document.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from acd.simulator import erlang
from acd.simulator.kpis import (
    Interval,
    Kpis,
    Outcome,
    batch_interval,
    compute,
    overlaps,
    per_priority,
    queue_series,
)
from acd.simulator.records import RunResult
from acd.simulator.scenario import Scenario

DEFAULT_BATCHES = 10


class Samples(BaseModel):
    queue: list[tuple[float, int]] = Field(default_factory=list)  # (scenario s, waiting)
    waits: list[float] = Field(default_factory=list)  # answered contacts, scenario s
    occupancy: dict[str, float] = Field(default_factory=dict)  # agent -> share of window
    outcomes: list[Outcome] = Field(default_factory=list)  # every contact


class Figure(BaseModel):
    """One measured figure beside its prediction."""

    name: str
    measured: float | None
    ci95: float | None  # half width, batch means
    predicted: float | None

    @property
    def agrees(self) -> bool | None:
        """Predicted inside the measured 95 % interval (None when either is missing)."""
        if self.measured is None or self.predicted is None or self.ci95 is None:
            return None
        return abs(self.measured - self.predicted) <= self.ci95


class ErlangComparison(BaseModel):
    model: Literal["C", "A"] | None
    applicable: bool
    reason: str = ""
    agents: int = 0
    offered_load: float = 0.0
    p_wait_any: float | None = None  # the model's P(wait > 0)
    figures: list[Figure] = Field(default_factory=list)

    def figure(self, name: str) -> Figure:
        return next(f for f in self.figures if f.name == name)


class Report(BaseModel):
    center: str
    via: str
    run_id: str
    started_at: str
    real_seconds: float
    stopped_early: bool
    window: tuple[float, float]  # scenario seconds: warm-up end, end of arrivals
    scenario: dict[str, Any]
    kpis: Kpis
    intervals: dict[str, Interval]
    per_skill: dict[str, Kpis]
    # With a priority mix (Scenario.priorities): KPIs per priority class, highest first.
    per_priority: dict[str, Kpis] = Field(default_factory=dict)
    occupancy: dict[str, float]
    erlang: ErlangComparison | None = None
    notes: list[str] = Field(default_factory=list)
    # An agent on two contacts at once (kpis.overlaps): the ACD broke its first promise.
    overlaps: list[str] = Field(default_factory=list)
    samples: Samples = Field(default_factory=Samples, exclude=True)

    def document(self) -> dict[str, Any]:
        # Without a priority mix the document stays what it was before priorities.
        doc = self.model_dump(mode="json", exclude=set() if self.per_priority
                              else {"per_priority"})
        # Without offers too (acd.offers): no "offers" entry in any KPIs.
        for kpis in [doc["kpis"], *doc["per_skill"].values(),
                     *doc.get("per_priority", {}).values()]:
            if kpis.get("offers") is None:
                kpis.pop("offers", None)
        return doc


def _interval_metrics() -> dict[str, Any]:
    return {
        "p_wait": lambda k: k.p_wait,
        "asa": lambda k: k.asa,
        "service_level": lambda k: k.service_level,
        "service_level_answered": lambda k: k.service_level_answered,
        "abandon_rate": lambda k: k.abandon_rate,
    }


def build(scenario: Scenario, result: RunResult, center: str, via: str, started: datetime,
          compare: bool = False, batches: int = DEFAULT_BATCHES) -> Report:
    start, end = scenario.warmup, result.elapsed
    epsilon = scenario.wait_epsilon_ms / 1000.0 * scenario.time_scale
    threshold = scenario.sl_threshold
    kpis, per_skill, occupancy = compute(result.outcomes, result.agents, start, end,
                                         threshold, epsilon)
    intervals = {name: batch_interval(result.outcomes, start, end, batches, metric,
                                      threshold, epsilon)
                 for name, metric in _interval_metrics().items()}
    window = [o for o in result.outcomes if start <= o.at < end]
    report = Report(
        center=center, via=via, run_id=result.run_id,
        started_at=started.astimezone(UTC).isoformat(timespec="seconds"),
        real_seconds=round(result.real_seconds, 3), stopped_early=result.stopped,
        window=(start, end), scenario=scenario.model_dump(mode="json"), kpis=kpis,
        intervals=intervals, per_skill=per_skill, occupancy=occupancy, notes=result.notes,
        per_priority=per_priority(result.outcomes, start, end, threshold, epsilon)
        if scenario.priorities else {},
        overlaps=overlaps(result.outcomes),
        samples=Samples(queue=queue_series(result.outcomes),
                        waits=sorted(o.wait for o in window if o.answered and o.wait is not None),
                        occupancy=occupancy, outcomes=list(result.outcomes)))
    if compare:
        report.erlang = compare_erlang(scenario, report)
    return report


def erlang_model(scenario: Scenario) -> tuple[erlang.Model | None, str, int]:
    """The Erlang model of a single-skill Poisson/exponential scenario, or why there is none."""
    types = scenario.types()
    if len({t.signature for t in types}) != 1:
        return None, "more than one contact type", 0
    if not scenario.constant_rate:
        return None, "arrival rate varies over time", 0
    if scenario.handle.dist != "exponential":
        return None, "handle times are not exponential", 0
    needed = set(types[0].signature.split(","))
    agents = sum(1 for skills in scenario.draw().agents if needed <= set(skills))
    if agents == 0:
        return None, "no agent has the contacts' skills", 0
    rate = scenario.steps()[0].per_hour / 3600.0
    # An agent in wrap-up serves nobody: the model's handle time is handle + wrap-up (with
    # a fixed wrap-up the time is no longer exponential: Erlang is then an approximation).
    handle = scenario.handle.mean + scenario.wrap_up_effective
    return erlang.model(rate, handle, agents, scenario.patience), "", agents


def compare_erlang(scenario: Scenario, report: Report) -> ErlangComparison:
    m, reason, agents = erlang_model(scenario)
    if m is None:
        return ErlangComparison(model=None, applicable=False, reason=reason)
    name: Literal["C", "A"] = "A" if isinstance(m, erlang.ErlangA) else "C"
    k, iv, t = report.kpis, report.intervals, scenario.sl_threshold
    eps = k.wait_epsilon
    stable = m.stable
    reason = "" if stable else "offered load >= agents: the queue grows without bound"

    def fig(label: str, key: str, measured: float | None, predicted: float | None) -> Figure:
        return Figure(name=label, measured=measured, ci95=iv[key].half_width if key else None,
                      predicted=predicted if stable else None)

    figures = [
        fig("p_wait", "p_wait", k.p_wait, m.p_wait_longer(eps)),
        fig("asa", "asa", k.asa, m.asa),
        fig("service_level", "service_level", k.service_level, m.service_level(t)),
        fig("service_level_answered", "service_level_answered", k.service_level_answered,
            m.service_level_answered(t)),
    ]
    if name == "A":
        figures.append(fig("abandon_rate", "abandon_rate", k.abandon_rate, m.p_abandon))
    return ErlangComparison(model=name, applicable=stable, reason=reason, agents=agents,
                            offered_load=m.load, p_wait_any=m.p_wait if stable else None,
                            figures=figures)
