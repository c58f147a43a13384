"""What the simulator records of each contact, and what it hands on: progress snapshots
while it runs, and outcomes in scenario seconds for the report.

The engine (acd.simulator.engine) fills the records from the ACD's answers and events;
everything here is pure, so it is tested on hand-made records.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from acd.offers import MISSED_OFFERS
from acd.simulator.kpis import Outcome
from acd.simulator.scenario import Arrival


@dataclass
class Record:
    """One contact as the simulator saw it; times are the ACD's clock in ms."""

    arrival: Arrival
    id: str
    queued_at: float | None = None
    assigned_at: float | None = None
    wait_ms: float | None = None
    agent: str | None = None
    busy_from: float | None = None
    ended_at: float | None = None
    outcome: str | None = None  # "answered" | "abandoned" | "closed" | "cut" (by the stop)
    moved: str | None = None  # "relaxed" | "overflowed": a step by waiting time (acd.steps)
    offers: int = 0  # offers made to it (acd.offers)
    offer_ends: dict[str, int] = field(default_factory=dict)  # how its offers ended: counts
    offer_breaks: int = 0  # of its missed offers, those that put the agent on a break
    offered_since: float | None = None  # while offered: when (ms)
    offered_ms: float = 0.0  # time spent offered, every offer together (ms)
    assigned: asyncio.Event = field(default_factory=asyncio.Event)


    def offer_made(self, ms: float) -> None:
        self.offers += 1
        self.offered_since = ms

    def offer_ended(self, how: str, ms: float, reason: str | None) -> None:
        """An offer of this contact ended (``how``: one of OFFER_ENDS' values) at ``ms``;
        ``reason`` missed_offers: the miss put the agent on a break."""
        if self.offered_since is not None:
            self.offered_ms += max(0.0, ms - self.offered_since)
            self.offered_since = None
        self.offer_ends[how] = self.offer_ends.get(how, 0) + 1
        self.offer_breaks += reason == MISSED_OFFERS


OFFER_ENDS = {"offer_accepted": "accepted", "offer_rejected": "rejected",
              "offer_timed_out": "timed_out", "offer_withdrawn": "withdrawn"}
"""The events that end an offer, and how (acd.offers)."""


@dataclass
class Snapshot:
    """Progress so far, for progress bars."""

    total: int
    created: int
    waiting: int
    answered: int
    abandoned: int
    scenario_time: float


@dataclass
class RunResult:
    """What the engine hands to the report: outcomes in scenario seconds."""

    outcomes: list[Outcome]
    agents: list[str]
    elapsed: float  # end of the measurement window, scenario seconds (earlier if stopped)
    real_seconds: float
    stopped: bool
    run_id: str
    events_seen: int
    notes: list[str]


def waiting_and_in_service(records: Iterable[Record]) -> tuple[int, int]:
    """Contacts still open: queued, and assigned but not ended.

    Counted per record, not as created - ended - in service: an assignment can be read
    from the event stream before the create call that queued the contact returns (and
    counts it created), which made that difference negative.
    """
    waiting = in_service = 0
    for r in records:
        if r.outcome is not None:
            continue
        if r.assigned.is_set():
            in_service += 1
        elif r.queued_at is not None:
            waiting += 1
    return waiting, in_service


def outcome(rec: Record, to_scenario: Callable[[float], float], scale: float
            ) -> Outcome | None:
    """``rec`` as the report sees it; ``to_scenario`` maps the ACD's ms clock to scenario
    seconds. None for a contact that was never queued."""
    if rec.queued_at is None:
        return None
    answered = rec.assigned_at is not None and rec.outcome in ("answered", "cut")
    wait_ms = rec.wait_ms
    if rec.outcome in ("abandoned", "closed") and rec.ended_at is not None:
        wait_ms = rec.ended_at - rec.queued_at
    elif rec.outcome == "cut" and rec.assigned_at is None and rec.ended_at:
        # Hung up by the stop while queued: it left the queue then, and the queue
        # series must see it leave (ended_at is 0 if it could not be hung up).
        wait_ms = rec.ended_at - rec.queued_at
    busy_to = rec.ended_at if answered and rec.ended_at else None
    return Outcome(
        signature=rec.arrival.signature, arrived=to_scenario(rec.queued_at),
        answered=answered and rec.outcome == "answered",
        abandoned=rec.outcome == "abandoned", closed=rec.outcome == "closed", moved=rec.moved,
        wait=None if wait_ms is None else wait_ms / 1000.0 * scale,
        agent=rec.agent if answered else None,
        busy_from=to_scenario(rec.busy_from or rec.assigned_at or 0) if answered else None,
        busy_to=to_scenario(busy_to) if busy_to else None,
        index=rec.arrival.index, planned=rec.arrival.at, priority=rec.arrival.priority,
        offers=rec.offers, offer_ends=dict(rec.offer_ends), offer_breaks=rec.offer_breaks,
        offered=rec.offered_ms / 1000.0 * scale)
