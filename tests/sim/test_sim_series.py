"""The simulator's KPI series are never negative: contacts waiting over time, occupancy,
waits, on hand-made outcomes and over long runs against the real ACD.

The queue series used to dip below zero (to -2 in notebook 06's dashboard): the ACD's
times are whole milliseconds, a contact answered in the millisecond it was queued leaves
at the instant it arrives, and sorting (time, step) pairs applied its -1 before its +1.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from acd import Center, connect
from acd.simulator import Report, Scenario, run
from acd.simulator.engine import Engine
from acd.simulator.kpis import Outcome, queue_series
from acd.simulator.records import Record, outcome, waiting_and_in_service
from acd.simulator.render import figures
from acd.simulator.scenario import Arrival


def _o(arrived: float, wait: float | None, answered: bool = True,
       abandoned: bool = False) -> Outcome:
    return Outcome(signature="s", arrived=arrived, answered=answered, abandoned=abandoned,
                   wait=wait)


def _old_queue_series(outcomes: list[Outcome]) -> list[tuple[float, int]]:
    """The series as it was computed before the fix, to show the inputs below broke it."""
    changes: list[tuple[float, int]] = []
    for o in outcomes:
        changes.append((o.arrived, 1))
        if o.wait is not None and (o.answered or o.abandoned):
            changes.append((o.arrived + o.wait, -1))
    changes.sort()
    level, series = 0, []
    for t, step in changes:
        level += step
        series.append((t, level))
    return series


# -- the series function on hand-made outcomes ------------------------------------------


def test_two_contacts_answered_in_the_millisecond_they_arrived() -> None:
    # time_scale 720: one ms of the ACD's clock is 0.72 scenario seconds, so two calls
    # queued and answered within one ms share one instant.
    items = [_o(5.04, 0.0), _o(5.04, 0.0)]
    assert min(n for _, n in _old_queue_series(items)) == -2  # the old dip, reproduced
    assert queue_series(items) == [(5.04, 0)]


def test_an_answer_at_the_instant_another_call_arrives() -> None:
    # c0 waits from 0 to 1; at 1, c1 arrives and both are answered in that millisecond.
    items = [_o(0.0, 1.0), _o(1.0, 0.0)]
    assert min(n for _, n in _old_queue_series(items)) == -1
    assert queue_series(items) == [(0.0, 1), (1.0, 0)]


def test_abandons_and_answers_sharing_instants() -> None:
    items = [_o(0.0, 2.0, answered=False, abandoned=True), _o(0.0, 0.0), _o(1.0, 1.0),
             _o(2.0, 0.0), _o(2.0, 3.0, answered=False, abandoned=True)]
    assert min(n for _, n in _old_queue_series(items)) < 0
    series = queue_series(items)
    assert series == [(0.0, 1), (1.0, 2), (2.0, 1), (5.0, 0)]


def test_contacts_ended_by_a_stop_leave_the_queue_too() -> None:
    # "cut" contacts are neither answered nor abandoned; one was assigned at 3, one was
    # hung up by the stop at 4; one could not be hung up and still waits.
    assigned = _o(1.0, 2.0, answered=False)
    hung_up = _o(2.0, 2.0, answered=False)
    still = _o(2.5, None, answered=False)
    assert queue_series([assigned, hung_up]) == [(1.0, 1), (2.0, 2), (3.0, 1), (4.0, 0)]
    assert queue_series([assigned, hung_up, still])[-1] == (4.0, 1)
    assert _old_queue_series([assigned, hung_up])[-1][1] == 2  # never came back to 0


def test_series_is_the_count_waiting_at_each_instant() -> None:
    """Against a brute-force count over every instant (waiting: arrived <= t < left)."""
    items = [_o(float(i // 3), float((i * 7) % 4)) for i in range(60)]
    items += [_o(float(i), None, answered=False) for i in range(0, 20, 5)]
    series = queue_series(items)
    for t, n in series:
        waiting = sum(1 for o in items if o.arrived <= t and (
            o.left_queue is None or o.left_queue > t))
        assert n == waiting >= 0, t
    assert [t for t, _ in series] == sorted({o.arrived for o in items} | {
        o.left_queue for o in items if o.left_queue is not None})


# -- the engine's own counts and outcomes --------------------------------------------------


def _record(index: int, queued_at: float | None) -> Record:
    return Record(Arrival(index, float(index), ["s"], 10.0, None), f"c{index}",
                  queued_at=queued_at)


def test_progress_counts_an_assignment_read_before_its_create_returned() -> None:
    waiting, early = _record(0, 1000.0), _record(1, None)
    early.assigned.set()  # the reader saw contact_assigned; create has not returned
    # Was created - ended - in service = 1 - 0 - 1 = 0: c0 did not show as waiting.
    assert waiting_and_in_service([waiting, early]) == (1, 1)
    early.outcome = "answered"
    assert waiting_and_in_service([waiting, early]) == (1, 0)


def test_a_contact_hung_up_by_the_stop_gets_its_time_in_the_queue() -> None:
    hung_up, stuck = _record(0, 1000.0), _record(1, 1000.0)
    hung_up.ended_at, hung_up.outcome = 1003.0, "cut"
    stuck.ended_at, stuck.outcome = 0.0, "cut"  # the hang-up failed: still queued
    scale = 1000.0
    a, b = (outcome(r, lambda ms: ms / 1000.0 * scale, scale) for r in (hung_up, stuck))
    assert a is not None and b is not None
    assert (a.arrived, a.wait, a.answered, a.abandoned) == (1000.0, 3.0, False, False)
    assert b.wait is None and b.left_queue is None
    assert outcome(_record(2, None), lambda ms: ms, scale) is None, "never queued"


# -- long runs against the real ACD ---------------------------------------------------------

# Several skills, contacts needing one or two of them, impatient callers, and a load that
# swings between quiet (many calls answered in the ms they arrive: the old dip) and busy
# (queues and abandons).
LONG: dict[str, Any] = dict(
    groups=[{"count": 4, "skills": ["billing", "en"]}, {"count": 3, "skills": ["es"]},
            {"count": 3, "skills": ["en"]}, {"count": 2, "skills": ["billing", "en", "es"]}],
    contact_types=[{"skills": ["en", "billing"], "weight": 2}, {"skills": ["es"]},
                   {"skills": ["en"], "weight": 2}],
    profile=[{"start": 0, "per_hour": 2400}, {"start": 1200, "per_hour": 5400},
             {"start": 2400, "per_hour": 1800}, {"start": 3600, "per_hour": 6000}],
    handle={"mean": 12.0}, patience=15.0, duration=4800, time_scale=240, drain_timeout=30,
    wait_epsilon_ms=5.0, seed=11)


def _check_series(report: Report) -> None:
    s = report.samples
    assert s.queue, "no queue series"
    assert min(n for _, n in s.queue) >= 0, [p for p in s.queue if p[1] < 0][:10]
    assert s.queue[-1][1] == 0, f"the queue series ends at {s.queue[-1]}"
    times = [t for t, _ in s.queue]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert max(n for _, n in s.queue) > 0
    assert all(w >= 0 for w in s.waits)
    assert all(0 <= v <= 1 for v in s.occupancy.values())
    assert all(o.wait is None or o.wait >= 0 for o in s.outcomes)
    for o in s.outcomes:
        if o.busy_from is not None and o.busy_to is not None:
            assert o.busy_to >= o.busy_from
    # What the HTML report draws (and notebook 06's dashboard, from the same samples).
    for fig in figures(report):
        for trace in fig.data:
            if trace.type in ("scatter", "bar"):
                assert min(trace.y) >= 0, (fig.layout.title.text, min(trace.y))


async def _cleanup(redis_url: str, center: str) -> None:
    redis = connect(redis_url)
    await Center(redis, center).wipe()
    await redis.aclose()


@pytest.mark.long  # 22 s; test_sim_runs.py's shorter runs on Redis (abandonment too) stay fast
async def test_long_multi_skill_run_with_abandonment(redis_url: str) -> None:
    scenario = Scenario(center=f"series-{uuid.uuid4().hex[:8]}", **LONG)
    arrivals = len(scenario.draw().arrivals)
    try:
        report = await asyncio.wait_for(
            run(scenario, via="redis", redis_url=redis_url, dispatchers=1, store=False),
            timeout=90)
    finally:
        await _cleanup(redis_url, str(scenario.center))
    k = report.kpis
    print(f"{arrivals} contacts in {report.real_seconds:.1f} s real: answered {k.answered}, "
          f"abandoned {k.abandoned}, peak queue {max(n for _, n in report.samples.queue)}, "
          f"zero waits {sum(1 for w in report.samples.waits if w == 0)}, lowest point of "
          f"the old series {min(n for _, n in _old_queue_series(report.samples.outcomes))}")
    assert arrivals > 2000
    assert report.real_seconds < 60
    assert len(report.samples.outcomes) == arrivals and k.unfinished == 0
    assert k.abandoned > 50 and k.answered > 1000
    assert not report.overlaps
    _check_series(report)


async def test_a_stopped_run_empties_its_queue_series(redis_url: str) -> None:
    """Stopped while callers wait: the stop hangs them up, and they leave the series."""
    scenario = Scenario(center=f"series-{uuid.uuid4().hex[:8]}", agents=3,
                        rate_per_hour=3600, handle={"mean": 30.0}, duration=36_000,
                        time_scale=300, seed=3)
    engines: list[Engine] = []
    queued = asyncio.Event()

    def progress(s: Any) -> None:
        if s.waiting >= 10:
            queued.set()

    task = asyncio.create_task(run(scenario, via="redis", redis_url=redis_url, store=False,
                                   on_progress=progress, engine_ready=engines.append))
    try:
        await asyncio.wait_for(queued.wait(), timeout=30)
        engines[0].stop()
        report = await asyncio.wait_for(task, timeout=30)
    finally:
        task.cancel()
        await _cleanup(redis_url, str(scenario.center))
    assert report.stopped_early
    cut = [o for o in report.samples.outcomes if not o.answered and not o.abandoned]
    assert sum(1 for o in cut if o.busy_from is None) >= 5  # hung up while queued
    _check_series(report)
