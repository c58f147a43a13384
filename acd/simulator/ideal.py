"""The ideal ACD, replayed: what the same draws give with zero dispatch latency.

For a single-skill center with FIFO service, the wait of every contact follows from the
arrival times, handle times and patience alone (which free agent takes a contact does not
change anyone's wait). Comparing a run with the replay of its own draws removes sampling
error: what is left is the real system's latency (dispatch, event delivery, completion).
"""

from __future__ import annotations

import heapq
import statistics
from collections.abc import Sequence

from acd.simulator.erlang import model
from acd.simulator.kpis import Kpis, Outcome, summarize
from acd.simulator.scenario import Arrival, Scenario


def replay(arrivals: Sequence[Arrival], agents: int, wrap_up: float = 0.0
           ) -> list[float | None]:
    """Per arrival: its wait in an ideal FIFO queue with ``agents`` agents, each free
    ``wrap_up`` seconds after a contact's end, or None if its caller abandons (patience
    shorter than the wait)."""
    free = [0.0] * agents  # when each agent is next free
    waits: list[float | None] = []
    for a in sorted(arrivals, key=lambda x: x.at):
        start = max(a.at, free[0])
        if a.patience is not None and start - a.at > a.patience:
            waits.append(None)
            continue
        heapq.heapreplace(free, start + a.handle + wrap_up)
        waits.append(start - a.at)
    order = sorted(range(len(arrivals)), key=lambda i: arrivals[i].at)
    result: list[float | None] = [None] * len(arrivals)
    for rank, i in enumerate(order):
        result[i] = waits[rank]
    return result


def excess_waits(outcomes: Sequence[Outcome], agents: int, wrap_up: float = 0.0
                 ) -> dict[int, float]:
    """Per answered contact (by arrival index): measured wait minus its wait in an ideal
    FIFO ACD that sees the *same* arrival times and the *same* busy periods (as measured).

    That ideal ACD assigns the moment an agent and a contact are both free, so the excess
    is the real ACD's dispatch delay alone: the simulator's own lags (queueing a contact
    late, completing late) are in the measured arrivals and busy periods on both sides.
    Contacts that abandoned take no agent on either side. Single skill only. ``wrap_up``:
    an agent is free that long after a contact ends (the ACD ends the wrap-up: its
    lateness counts as dispatch delay too)."""
    free = [0.0] * agents
    excess: dict[int, float] = {}
    for o in sorted(outcomes, key=lambda x: x.arrived):
        if not o.answered or o.wait is None or o.busy_from is None or o.busy_to is None:
            continue
        start = max(o.arrived, free[0])
        heapq.heapreplace(free, start + (o.busy_to - o.busy_from) + wrap_up)
        excess[o.index] = o.wait - (start - o.arrived)
    return excess


def ideal_outcomes(scenario: Scenario, seed: int | None = None) -> list[Outcome]:
    """The scenario's draws (with ``seed`` if given) replayed in the ideal ACD."""
    draw = (scenario if seed is None else scenario.model_copy(update={"seed": seed})).draw()
    agents = len(draw.agents)
    waits = replay(draw.arrivals, agents, scenario.wrap_up_effective)
    return [Outcome(signature=",".join(a.skills), arrived=a.at, answered=w is not None,
                    abandoned=w is None, wait=a.patience if w is None else w, index=a.index,
                    planned=a.at)
            for a, w in zip(draw.arrivals, waits, strict=True)]


def window_load(scenario: Scenario, seed: int | None = None) -> tuple[float, float]:
    """Arrival rate (per s) and mean handle time (s) the draws realize in the KPI window."""
    draw = (scenario if seed is None else scenario.model_copy(update={"seed": seed})).draw()
    end = scenario.duration if scenario.duration is not None else draw.span + 1e-9
    inside = [a for a in draw.arrivals if scenario.warmup <= a.at < end]
    if not inside:
        raise ValueError("no arrival in the KPI window")
    return len(inside) / (end - scenario.warmup), sum(a.handle for a in inside) / len(inside)


METRICS = ("p_wait", "asa", "service_level")


def erlang_gaps(scenario: Scenario, kpis: Kpis, seed: int | None = None) -> dict[str, float]:
    """``kpis`` minus Erlang C/A evaluated at the load the draws realize in the window
    (a control variate: most of a run's sampling error is its luck in arrivals and handle
    times, and this takes that luck out). Single skill, Poisson, exponential handle. An
    agent's wrap-up adds to its handle time (see acd.simulator.report.erlang_model)."""
    rate, handle = window_load(scenario, seed)
    agents = len(scenario.draw().agents)
    m = model(rate, handle + scenario.wrap_up_effective, agents, scenario.patience)
    eps, t = kpis.wait_epsilon, scenario.sl_threshold
    predicted = {"p_wait": m.p_wait_longer(eps), "asa": m.asa,
                 "service_level": m.service_level(t)}
    return {k: float(getattr(kpis, k)) - predicted[k] for k in METRICS}


def sampling_sd(scenario: Scenario, replications: int = 200, first_seed: int = 10_000
                ) -> dict[str, float]:
    """Standard deviation of :func:`erlang_gaps` over ``replications`` ideal replays of the
    scenario with other seeds: the sampling error of a run of exactly this length."""
    return {k: statistics.stdev(v)
            for k, v in sampling_gaps(scenario, replications, first_seed).items()}


def sampling_gaps(scenario: Scenario, replications: int = 200, first_seed: int = 10_000
                  ) -> dict[str, list[float]]:
    """:func:`erlang_gaps` of ``replications`` ideal replays with other seeds. Their mean
    is the model's own bias for this scenario (0 for Erlang C's M/M/N; with a fixed
    wrap-up the service time is not exponential and Erlang C only approximates it)."""
    eps = scenario.wait_epsilon_ms / 1000.0 * scenario.time_scale
    end = scenario.duration
    gaps: dict[str, list[float]] = {k: [] for k in METRICS}
    for seed in range(first_seed, first_seed + replications):
        outcomes = ideal_outcomes(scenario, seed)
        stop = end if end is not None else max(o.arrived for o in outcomes) + 1e-9
        window = [o for o in outcomes if scenario.warmup <= o.at < stop]
        kpis = summarize(window, scenario.sl_threshold, eps)
        for k, v in erlang_gaps(scenario, kpis, seed).items():
            gaps[k].append(v)
    return gaps


def missed_offers(scenario: Scenario, index: int) -> int:
    """How many offers contact ``index`` misses before its agent accepts one: the same
    draws the simulator's agents answer with (Scenario.accepts)."""
    missed = 0
    while not scenario.accepts(index, missed):
        missed += 1
    return missed


def offer_excess_waits(outcomes: Sequence[Outcome], agents: int, scenario: Scenario
                       ) -> tuple[dict[int, float], dict[int, float]]:
    """With offers (acd.offers): per answered contact, (its measured wait minus its wait
    in the ideal ACD with the same offers, that ideal wait minus the one without offers).

    The ideal ACD offers the moment a contact and an agent are both free, oldest arrival
    first; each offer the contact misses (the same draws as the run's) holds that agent
    for the offer timeout, then both are free again and the contact keeps its place. The
    first value is the real ACD's delay alone (rounds, the accept's call), as in
    excess_waits; the second is the extra wait offers cost, as the model predicts it."""
    answered = [o for o in outcomes if o.answered and o.wait is not None
                and o.busy_from is not None and o.busy_to is not None]
    with_offers = _offer_waits(answered, agents, scenario, scenario.offer_timeout_effective)
    without = _offer_waits(answered, agents, scenario, None)
    excess = {o.index: (o.wait or 0.0) - with_offers[o.index] for o in answered}
    extra = {i: with_offers[i] - without[i] for i in with_offers}
    return excess, extra


def _offer_waits(answered: Sequence[Outcome], agents: int, scenario: Scenario,
                 timeout: float | None) -> dict[int, float]:
    """Each answered contact's wait in the ideal FIFO ACD with identical agents, busy for
    the measured busy period plus wrap-up; with a ``timeout``, each missed offer holds an
    agent that long first (None: no offers)."""
    events: list[tuple[float, int, int]] = []  # (time, 0 free agent | 1 arrival, index)
    by_index = {o.index: o for o in answered}
    for o in answered:
        heapq.heappush(events, (o.arrived, 1, o.index))
    waiting: list[tuple[float, int]] = []  # (arrival, index): the queue, oldest first
    missed = dict.fromkeys(by_index, 0)
    free, waits = agents, {}
    while events:
        now = events[0][0]
        while events and events[0][0] == now:  # everything that happens at this instant
            _, kind, index = heapq.heappop(events)
            if kind == 0:
                free += 1
            else:
                heapq.heappush(waiting, (by_index[index].arrived, index))
        while free and waiting:
            arrived, index = heapq.heappop(waiting)
            o, free = by_index[index], free - 1
            if timeout is not None and missed[index] < missed_offers(scenario, index):
                missed[index] += 1  # held until the deadline; then both are free again
                heapq.heappush(events, (now + timeout, 0, -1))
                heapq.heappush(events, (now + timeout, 1, index))
                continue
            waits[index] = now - arrived
            held = (o.busy_to or 0.0) - (o.busy_from or 0.0) + scenario.wrap_up_effective
            heapq.heappush(events, (now + held, 0, -1))
    return waits
