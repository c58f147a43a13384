"""KPIs from what happened to each contact, in scenario time, with batch-means intervals.

Definitions (every figure covers contacts *drawn* to arrive in the measurement window, from
the end of the warm-up to the end of arrivals):
  offered             contacts queued in the window
  answered            assigned to an agent;  abandoned: the caller hung up while queued;
                      closed: a step by waiting time ended it (its maximum wait, acd.steps)
  unfinished          neither when the run stopped (Ctrl-C or drain timeout); left out below
  abandon_rate        abandoned / (answered + abandoned + closed)
  abandon_wait_mean   mean wait of the abandoned contacts until they hung up
  relaxed_rate, overflowed_rate, closed_rate
                      contacts relaxed (fewer skills), overflowed (other skills) or closed
                      by a step by waiting time / offered
  service_level       answered within T / (answered + abandoned + closed)
  service_level_answered  answered within T / answered
  p_wait              not answered within epsilon / (answered + abandoned); epsilon is a few
                      real milliseconds (dispatch is never instantaneous)
  asa                 mean wait of the answered contacts (zero waits included)
  wait_mean/p90/p99   the same waits' mean and percentiles (nearest rank)
  occupancy           busy time / (agents x window); busy = assigned until completed
  offers              with offers on (acd.offers; None otherwise): offers made to the
                      window's contacts, how each ended (accepted, rejected, timed out,
                      withdrawn: the caller hung up; open: not ended when the run did),
                      the misses that put the agent on a break (missed_offers), and
                      offered_mean: the mean time an answered contact spent offered, its
                      missed offers and the accepted one together - the part of its wait
                      the offers themselves held it
Intervals: the window is cut into equal batches by arrival time; the 95 % interval is
mean +/- t(0.975, B-1) x sd(batch means) / sqrt(B). Waits are correlated from one contact
to the next; batch means of batches much longer than a busy period are nearly independent.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from pydantic import BaseModel

# t(0.975, df) for df = 1..30; beyond that 1.96 is close enough.
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201,
         2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074,
         2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def t975(df: int) -> float:
    return _T975[df - 1] if 1 <= df <= len(_T975) else 1.96


@dataclass
class Outcome:
    """One contact, times in scenario seconds from the start of the run."""

    signature: str
    arrived: float
    answered: bool
    abandoned: bool
    # Until answered, abandoned, or hung up by a stop; None while still queued at the end.
    wait: float | None
    agent: str | None = None
    busy_from: float | None = None
    busy_to: float | None = None
    index: int = -1  # of the arrival in the scenario's draw
    planned: float | None = None  # drawn arrival time; decides the KPI window
    priority: int = 0
    closed: bool = False  # by a step by waiting time (acd.steps)
    moved: str | None = None  # "relaxed" | "overflowed": a step changed its skills
    offers: int = 0  # offers made to it (acd.offers)
    offer_ends: dict[str, int] = field(default_factory=dict)  # how they ended: counts
    offer_breaks: int = 0  # its missed offers that put the agent on a break
    offered: float = 0.0  # scenario seconds it spent offered

    @property
    def at(self) -> float:
        return self.arrived if self.planned is None else self.planned

    @property
    def left_queue(self) -> float | None:
        """When the contact left the queue: answered, abandoned, or (``cut``) assigned or
        hung up while the run stopped; None if it was still queued when the run ended."""
        return None if self.wait is None else self.arrived + self.wait


class Interval(BaseModel):
    mean: float | None
    half_width: float | None  # 95 %; None with fewer than 2 usable batches
    batches: int


class OfferKpis(BaseModel):
    """What became of the offers (see the module); made = the ends + open."""

    made: int
    accepted: int
    rejected: int
    timed_out: int
    withdrawn: int
    open: int
    missed_offer_breaks: int
    offered_mean: float | None  # scenario seconds, answered contacts


def offer_kpis(items: Sequence[Outcome]) -> OfferKpis | None:
    """The offers of ``items``; None when none was offered (offers off)."""
    made = sum(o.offers for o in items)
    if not made:
        return None
    ends = {how: sum(o.offer_ends.get(how, 0) for o in items)
            for how in ("accepted", "rejected", "timed_out", "withdrawn")}
    held = [o.offered for o in items if o.answered]
    return OfferKpis(made=made, **ends, open=made - sum(ends.values()),
                     missed_offer_breaks=sum(o.offer_breaks for o in items),
                     offered_mean=_ratio(math.fsum(held), len(held)))


class Kpis(BaseModel):
    offered: int
    answered: int
    abandoned: int
    unfinished: int
    abandon_rate: float | None
    service_level: float | None
    service_level_answered: float | None
    sl_threshold: float
    p_wait: float | None
    wait_epsilon: float
    asa: float | None
    wait_mean: float | None
    wait_p90: float | None
    wait_p99: float | None
    occupancy: float | None = None
    arrival_rate_per_hour: float | None = None
    handle_mean: float | None = None
    closed: int = 0
    abandon_wait_mean: float | None = None
    relaxed_rate: float | None = None
    overflowed_rate: float | None = None
    closed_rate: float | None = None
    offers: OfferKpis | None = None


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def overlaps(outcomes: Iterable[Outcome]) -> list[str]:
    """Agents that were on two contacts at once: one contact's busy period starts before
    the agent's previous one ended. The ACD's first promise is that this list is empty."""
    by_agent: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        if o.agent is not None and o.busy_from is not None:
            by_agent[o.agent].append(o)
    found = []
    for agent, served in sorted(by_agent.items()):
        served.sort(key=lambda o: o.busy_from or 0.0)
        for prev, nxt in pairwise(served):
            if prev.busy_to is None or (nxt.busy_from or 0.0) < prev.busy_to:
                found.append(f"agent {agent}: contact #{nxt.index} began at "
                             f"{nxt.busy_from:.3f} s while on #{prev.index} (until "
                             f"{'the end' if prev.busy_to is None else f'{prev.busy_to:.3f} s'})")
    return found


def summarize(outcomes: Iterable[Outcome], threshold: float, epsilon: float) -> Kpis:
    """The KPIs of ``outcomes`` (occupancy and rates are filled in by :func:`compute`)."""
    items = list(outcomes)
    answered = [o for o in items if o.answered]
    abandoned = sum(1 for o in items if o.abandoned)
    closed = sum(1 for o in items if o.closed)
    ended = len(answered) + abandoned + closed
    gave_up = [o.wait for o in items if o.abandoned and o.wait is not None]
    waits = sorted(o.wait for o in answered if o.wait is not None)
    within = sum(1 for w in waits if w <= threshold)
    quick = sum(1 for w in waits if w <= epsilon)
    return Kpis(
        offered=len(items), answered=len(answered), abandoned=abandoned,
        unfinished=len(items) - ended,
        abandon_rate=_ratio(abandoned, ended),
        service_level=_ratio(within, ended),
        service_level_answered=_ratio(within, len(answered)),
        sl_threshold=threshold,
        p_wait=None if not ended else 1.0 - quick / ended,
        wait_epsilon=epsilon,
        asa=_ratio(math.fsum(waits), len(waits)),
        wait_mean=_ratio(math.fsum(waits), len(waits)),
        wait_p90=percentile(waits, 90), wait_p99=percentile(waits, 99),
        closed=closed, abandon_wait_mean=_ratio(math.fsum(gave_up), len(gave_up)),
        relaxed_rate=_ratio(sum(1 for o in items if o.moved == "relaxed"), len(items)),
        overflowed_rate=_ratio(sum(1 for o in items if o.moved == "overflowed"), len(items)),
        closed_rate=_ratio(closed, len(items)),
        offers=offer_kpis(items),
    )


def busy_by_agent(outcomes: Iterable[Outcome], start: float, end: float) -> dict[str, float]:
    """Seconds each agent spent on contacts, clipped to [start, end]."""
    busy: dict[str, float] = defaultdict(float)
    for o in outcomes:
        if o.agent is None or o.busy_from is None:
            continue
        stop = o.busy_to if o.busy_to is not None else end
        busy[o.agent] += max(0.0, min(stop, end) - max(o.busy_from, start))
    return dict(busy)


def compute(outcomes: Sequence[Outcome], agents: Sequence[str], start: float, end: float,
            threshold: float, epsilon: float) -> tuple[Kpis, dict[str, Kpis], dict[str, float]]:
    """Overall KPIs, KPIs per skill signature, and occupancy per agent, for the contacts
    that arrived in [start, end)."""
    window = [o for o in outcomes if start <= o.at < end]
    kpis = summarize(window, threshold, epsilon)
    span = end - start
    busy = busy_by_agent(outcomes, start, end)  # every contact's busy time in the window
    occupancy = {a: (busy.get(a, 0.0) / span if span > 0 else 0.0) for a in agents}
    handles = [o.busy_to - o.busy_from for o in window
               if o.busy_from is not None and o.busy_to is not None]
    kpis.occupancy = math.fsum(occupancy.values()) / len(agents) if agents and span > 0 \
        else None
    kpis.arrival_rate_per_hour = len(window) / span * 3600.0 if span > 0 else None
    kpis.handle_mean = _ratio(math.fsum(handles), len(handles))
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for o in window:
        groups[o.signature].append(o)
    per_skill = {sig: summarize(items, threshold, epsilon)
                 for sig, items in sorted(groups.items())}
    return kpis, per_skill, occupancy


def per_priority(outcomes: Iterable[Outcome], start: float, end: float, threshold: float,
                 epsilon: float) -> dict[str, Kpis]:
    """KPIs per priority class (keyed by the priority, highest first), for the contacts
    that arrived in [start, end)."""
    groups: dict[int, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        if start <= o.at < end:
            groups[o.priority].append(o)
    return {str(p): summarize(groups[p], threshold, epsilon)
            for p in sorted(groups, reverse=True)}


def batch_interval(outcomes: Sequence[Outcome], start: float, end: float, batches: int,
                   metric: Callable[[Kpis], float | None], threshold: float,
                   epsilon: float) -> Interval:
    """Batch-means 95 % interval of ``metric`` over ``batches`` equal slices of time."""
    if batches < 2 or end <= start:
        return Interval(mean=None, half_width=None, batches=0)
    width = (end - start) / batches
    slices: list[list[Outcome]] = [[] for _ in range(batches)]
    for o in outcomes:
        if start <= o.at < end:
            slices[min(batches - 1, int((o.at - start) / width))].append(o)
    values = [v for s in slices if (v := metric(summarize(s, threshold, epsilon))) is not None]
    if len(values) < 2:
        return Interval(mean=values[0] if values else None, half_width=None,
                        batches=len(values))
    mean = math.fsum(values) / len(values)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return Interval(mean=mean, half_width=t975(len(values) - 1) * sd / math.sqrt(len(values)),
                    batches=len(values))


def queue_series(outcomes: Iterable[Outcome]) -> list[tuple[float, int]]:
    """(time, contacts waiting) after every instant a contact arrived or left: +1 at each
    arrival, -1 when the contact left the queue (answered, abandoned, or hung up by a stop).

    Times come from the ACD's clock in whole milliseconds, so a contact answered in the
    millisecond it was queued leaves at the very instant it arrived, and so may others
    queued in that millisecond. The level is therefore taken after *every* change at an
    instant, never between two of them: applying a -1 before the +1 of its own arrival
    (as sorting (time, step) pairs did) showed -1, -2, ... waiting contacts. Taken per
    instant, the level is arrivals so far minus departures so far, and no contact leaves
    before it arrives, so it is never negative.
    """
    net: dict[float, int] = defaultdict(int)
    for o in outcomes:
        net[o.arrived] += 1
        if (left := o.left_queue) is not None:
            net[left] -= 1
    series: list[tuple[float, int]] = []
    level = 0
    for t in sorted(net):
        level += net[t]
        series.append((t, level))
    return series
