"""The simulation: callers and agents played against a real ACD, in scaled real time.

Callers: each drawn arrival is queued at its time (``create_contact`` with an id made by
the simulator, so a retried call never queues twice). A caller with patience that is still
queued at its deadline hangs up (``abandon``); a "409 / already assigned" answer means the
ACD answered it first.

Agents: the ACD assigns contacts (its dispatchers, or ``dispatchers`` in-process Dispatcher
tasks); one reader follows the center's event stream, and each ``contact_assigned`` entry
for one of our contacts starts that contact's handle time, after which the simulator
completes it and the ACD makes the agent available again. Deadlines are set on the ACD's
clock (assignment and queue times come from it), so the simulator's own latency does not
lengthen handle times or patience. Nothing polls a contact.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from typing import Any

from acd.center import Center
from acd.connection import connect
from acd.dispatcher import Dispatcher
from acd.models import CenterEvent
from acd.simulator.backends import Backend, ClockSync
from acd.simulator.center_setup import prepare_center
from acd.simulator.records import (
    OFFER_ENDS,
    Record,
    RunResult,
    Snapshot,
    outcome,
    waiting_and_in_service,
)
from acd.simulator.scenario import Arrival, Scenario

log = logging.getLogger("acd.simulator")

EVENT_BLOCK_MS = 1000
EVENT_BATCH = 1000
FINISH_TIMEOUT = 20.0  # real seconds to end what is in flight after a stop
STEP_EVENTS = {"contact_relaxed": "relaxed", "contact_overflowed": "overflowed",
               "contact_closed": "closed"}


class Engine:
    """One run of ``scenario`` on ``backend``. ``stop()`` ends it early, cleanly."""

    def __init__(self, scenario: Scenario, backend: Backend, dispatchers: int = 0,
                 redis_url: str | None = None,
                 on_progress: Callable[[Snapshot], None] | None = None) -> None:
        self.scenario = scenario
        self.backend = backend
        self.dispatchers = dispatchers
        self.redis_url = redis_url
        self.on_progress = on_progress
        self.scale = scenario.time_scale
        self.run_id = secrets.token_hex(3)
        self.clock = ClockSync()
        self.records: dict[str, Record] = {}
        self.created = self.answered = self.abandoned = self.cut = self.closed = 0
        self.events_seen = 0
        self.notes: list[str] = []
        self._stopping = asyncio.Event()
        self._all_ended = asyncio.Event()
        self._arrivals_done = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._clock_fixed = False
        self._t0_mono = 0.0
        self._t0_server = 0.0
        self._stopped_at: float | None = None
        self._reader_stop = False
        self._unknown: dict[str, CenterEvent] = {}  # assignments of contacts not (yet) ours

    def stop(self) -> None:
        """Stop arrivals, hang up queued callers, complete contacts in progress."""
        if not self._stopping.is_set():
            self._stopped_at = time.monotonic()
            self._stopping.set()

    # -- the run -------------------------------------------------------------------
    async def run(self) -> RunResult:
        draw = self.scenario.draw()
        agent_ids = [f"sim-{i + 1:03d}" for i in range(len(draw.agents))]
        self.records = {f"sim{self.run_id}-{a.index:06d}": Record(a, f"sim{self.run_id}-"
                                                                 f"{a.index:06d}")
                        for a in draw.arrivals}
        dispatch_redis = None
        reader = ticker = arrivals = None
        dispatch_tasks: list[asyncio.Task[None]] = []
        workers: list[Dispatcher] = []
        real0 = time.monotonic()
        for kind in self.scenario.types():
            if not any(set(kind.skills) <= set(skills) for skills in draw.agents):
                self._note(f"no agent has every skill of contact type {kind.signature}: "
                           "those contacts can only wait")
        try:
            await self.backend.start()
            await prepare_center(self.backend, self.scenario, draw, agent_ids,
                                 {",".join(r.arrival.skills) for r in self.records.values()},
                                 self._note)
            if self.dispatchers:
                dispatch_redis = connect(self.redis_url)
                workers = [Dispatcher(Center(dispatch_redis, self.backend.center),
                                      manual_too=True) for _ in range(self.dispatchers)]
                dispatch_tasks = [asyncio.create_task(w.run()) for w in workers]
            await self._sync_clock()
            after = await self.backend.events_tail()
            reader = asyncio.create_task(self._read_events(after))
            reader.add_done_callback(self._reader_done)
            self._t0_mono, self._t0_server = time.monotonic(), self.clock.server_now()
            ticker = asyncio.create_task(self._tick(len(draw.arrivals)))
            arrivals = asyncio.create_task(self._arrivals(draw.arrivals))
            stop_wait = asyncio.create_task(self._stopping.wait())
            await asyncio.wait([arrivals, stop_wait], return_when=asyncio.FIRST_COMPLETED)
            if not self._stopping.is_set():
                self._arrivals_done = True
                self._check_all_ended()
                done_wait = asyncio.create_task(self._all_ended.wait())
                finished, _ = await asyncio.wait([done_wait, stop_wait],
                                                 timeout=self.scenario.drain_timeout,
                                                 return_when=asyncio.FIRST_COMPLETED)
                done_wait.cancel()
                if not finished:
                    self.notes.append(f"drain timeout ({self.scenario.drain_timeout:.0f} s"
                                      " real): contacts still open were cut")
            stopped = self._stopping.is_set() and self._stopped_at is not None
            self._stopping.set()
            stop_wait.cancel()
            await self._finish()
        finally:
            await self._shutdown([t for t in (arrivals, ticker) if t is not None],
                                 reader, dispatch_tasks, workers)
            if dispatch_redis is not None:
                await dispatch_redis.aclose()
        if stopped and self._stopped_at is not None:
            end = self._scenario_seconds(self._stopped_at)
        else:
            end = self.scenario.duration if self.scenario.duration is not None else (
                draw.span * (1 + 1e-9) + 1e-9)
        return RunResult(
            outcomes=[o for r in self.records.values()
                      if (o := outcome(r, self._server_to_scenario, self.scale))],
            agents=agent_ids, elapsed=end,
            real_seconds=time.monotonic() - real0, stopped=stopped, run_id=self.run_id,
            events_seen=self.events_seen, notes=self.notes)

    async def _sync_clock(self) -> None:
        for _ in range(5):
            t0 = time.time()
            server = await self.backend.server_time_ms()
            if server is None:
                return
            self.clock.sample(server, t0, time.time())
        self._clock_fixed = True

    def _scenario_seconds(self, mono: float) -> float:
        return (mono - self._t0_mono) * self.scale

    def _server_to_scenario(self, server_ms: float) -> float:
        return (server_ms - self._t0_server) / 1000.0 * self.scale

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("simulator task failed: %r", exc)
            self._note(f"error: {exc!r}")

    def _reader_done(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._note(f"event reader failed, stopping: {task.exception()!r}")
            self.stop()

    def _note(self, note: str) -> None:
        if len(self.notes) < 20:
            self.notes.append(note)
        elif len(self.notes) == 20:
            self.notes.append("... more notes left out")

    async def _sleep_until(self, deadline: float) -> None:
        """Sleep until the monotonic ``deadline``, or until stop()."""
        delay = deadline - time.monotonic()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    # -- callers -------------------------------------------------------------------
    async def _arrivals(self, arrivals: list[Arrival]) -> None:
        for a in arrivals:
            await self._sleep_until(self._t0_mono + a.at / self.scale)
            if self._stopping.is_set():
                return
            self._spawn(self._caller(self.records[f"sim{self.run_id}-{a.index:06d}"]))

    async def _caller(self, rec: Record) -> None:
        t0 = time.time()
        contact = await self.backend.create_contact(rec.id, rec.arrival.skills,
                                                    rec.arrival.priority,
                                                    rec.arrival.min_levels or None)
        if not self._clock_fixed:
            self.clock.sample(contact.queued_at, t0, time.time())
        if contact.id != rec.id:  # the ACD chose the id (the demo's POST /contact)
            self._rename(rec, contact.id)
        rec.queued_at = float(contact.queued_at)
        self.created += 1
        if rec.arrival.patience is None:
            return
        deadline = self.clock.local(rec.queued_at + rec.arrival.patience / self.scale * 1000)
        waits = [asyncio.create_task(rec.assigned.wait()),
                 asyncio.create_task(self._stopping.wait())]
        await asyncio.wait(waits, timeout=max(0.0, deadline - time.monotonic()),
                           return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()
        if rec.assigned.is_set() or self._stopping.is_set():
            return  # answered; or the stop hangs up whoever still waits
        ended = await self.backend.abandon(rec.id)
        if ended is not None and ended.state == "abandoned":
            rec.ended_at = float(ended.ended_at or 0)
            self._ended(rec, "abandoned")
        # else: answered just before the deadline; its contact_assigned event is on the way

    # -- agents --------------------------------------------------------------------
    async def _read_events(self, after: str) -> None:
        # Stopped by a flag, not by cancel: cancelling a blocked XREAD can hang in redis-py.
        while not self._reader_stop:
            after, events = await self.backend.read_events(after, EVENT_BLOCK_MS, EVENT_BATCH)
            for ev in events:
                if ev.type == "contact_assigned":
                    self._on_assigned(ev)
                elif ev.type in STEP_EVENTS:
                    self._on_step(ev)
                elif ev.type == "contact_offered":
                    self._on_offered(ev)
                elif ev.type in OFFER_ENDS and (rec := self.records.get(
                        ev.fields.get("contact", ""))) is not None:
                    rec.offer_ended(OFFER_ENDS[ev.type], ev.ms, ev.fields.get("reason"))

    def _rename(self, rec: Record, contact_id: str) -> None:
        """Follow a contact under the id the ACD gave it; its assignment may have been
        read already, before the create call returned the id."""
        del self.records[rec.id]
        rec.id = contact_id
        self.records[contact_id] = rec
        early = self._unknown.pop(contact_id, None)
        if early is not None:
            self._on_assigned(early)

    def _on_offered(self, ev: CenterEvent) -> None:
        """The agent accepts at once with the scenario's probability (its own draw per
        contact and offer), else lets the offer time out in Redis."""
        rec = self.records.get(ev.fields.get("contact", ""))
        if rec is None:
            return
        offer = rec.offers
        rec.offer_made(ev.ms)
        if self.scenario.accepts(rec.arrival.index, offer):
            self._spawn(self._accept(ev.fields.get("agent", ""), rec.id))

    async def _accept(self, agent_id: str, contact_id: str) -> None:
        await self.backend.accept_offer(agent_id, contact_id)

    def _on_assigned(self, ev: CenterEvent) -> None:
        cid = ev.fields.get("contact", "")
        rec = self.records.get(cid)
        if rec is None:
            if len(self._unknown) >= 10_000:  # someone else's contacts: keep the newest
                self._unknown.pop(next(iter(self._unknown)))
            self._unknown[cid] = ev
            return
        if rec.assigned.is_set():
            return
        self.events_seen += 1
        rec.agent = ev.fields.get("agent")
        rec.wait_ms = float(ev.fields.get("wait_ms", "nan"))
        rec.assigned_at = ev.ms
        rec.assigned.set()
        self._spawn(self._agent(rec))

    def _on_step(self, ev: CenterEvent) -> None:
        """A step by waiting time moved or closed one of our contacts (acd.steps)."""
        rec = self.records.get(ev.fields.get("contact", ""))
        if rec is None or rec.outcome is not None:
            return
        if ev.type == "contact_closed":
            rec.ended_at = ev.ms
            self._ended(rec, "closed")
        elif rec.moved is None:
            rec.moved = STEP_EVENTS[ev.type]

    async def _agent(self, rec: Record) -> None:
        assert rec.assigned_at is not None
        due = rec.assigned_at + rec.arrival.handle / self.scale * 1000
        await self._sleep_until(self.clock.local(due))
        contact = await self.backend.complete(rec.id, rec.agent)
        rec.busy_from = float(contact.assigned_at or rec.assigned_at)
        rec.ended_at = float(contact.ended_at or 0)
        if rec.outcome is None:
            self._ended(rec, "answered")

    def _ended(self, rec: Record, outcome: str) -> None:
        rec.outcome = outcome
        if outcome == "answered":
            self.answered += 1
        elif outcome == "abandoned":
            self.abandoned += 1
        elif outcome == "closed":
            self.closed += 1
        else:
            self.cut += 1
        self._check_all_ended()

    def _check_all_ended(self) -> None:
        if self._arrivals_done and self.answered + self.abandoned + self.cut + self.closed >= len(
                self.records):
            self._all_ended.set()

    # -- stopping ------------------------------------------------------------------
    async def _finish(self) -> None:
        """After a stop: hang up every caller still queued, let in-flight completions end
        (the agents' sleeps return at once), and catch assignments that raced the stop."""
        queued = [r for r in self.records.values()
                  if r.queued_at is not None and r.outcome is None and not r.assigned.is_set()]
        sem = asyncio.Semaphore(50)

        async def hang_up(rec: Record) -> None:
            async with sem:
                ended = await self.backend.abandon(rec.id)
                if ended is not None and ended.state == "abandoned" and rec.outcome is None:
                    rec.ended_at = float(ended.ended_at or 0)
                    self._ended(rec, "cut")

        await asyncio.gather(*(hang_up(r) for r in queued), return_exceptions=True)
        deadline = time.monotonic() + FINISH_TIMEOUT
        while self._tasks and time.monotonic() < deadline:
            await asyncio.wait(list(self._tasks), timeout=deadline - time.monotonic())
        # Assigned, but the event was missed or came too late: read the contact itself.
        for rec in self.records.values():
            if rec.queued_at is None or rec.outcome is not None:
                continue
            try:
                contact = await self.backend.get_contact(rec.id)
                if contact.state == "assigned":
                    contact = await self.backend.complete(rec.id, contact.agent)
            except Exception as exc:  # noqa: BLE001 - best effort at the very end
                self._note(f"could not end contact {rec.id}: {exc!r}")
                continue
            if contact.assigned_at is not None:
                rec.agent, rec.assigned_at = contact.agent, float(contact.assigned_at)
                rec.busy_from = rec.assigned_at
                rec.wait_ms = float(contact.assigned_at - contact.queued_at)
            rec.ended_at = float(contact.ended_at or 0)
            self._ended(rec, "cut")

    async def _shutdown(self, plain: list[asyncio.Task[Any]], reader: asyncio.Task[None] | None,
                        dispatch_tasks: list[asyncio.Task[None]],
                        workers: list[Dispatcher]) -> None:
        """End every task with a deadline. Tasks blocked on Redis (the event reader, the
        dispatchers) are asked to stop and get one blocking period to do so; only then are
        they cancelled, and nothing waits on them for ever."""
        self._reader_stop = True
        for w in workers:
            w.stop()
        for task in (*plain, *self._tasks):
            task.cancel()
        blocked = [t for t in (reader, *dispatch_tasks) if t is not None]
        everything = [*plain, *self._tasks, *blocked]
        if everything:
            _, pending = await asyncio.wait(everything, timeout=EVENT_BLOCK_MS / 1000 + 2)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2)

    async def _tick(self, total: int) -> None:
        while True:
            if self.on_progress is not None:
                self.on_progress(self.snapshot(total))
            await asyncio.sleep(0.2)

    def snapshot(self, total: int) -> Snapshot:
        waiting, in_service = waiting_and_in_service(self.records.values())
        return Snapshot(total=total, created=self.created, waiting=waiting,
                        answered=self.answered + in_service, abandoned=self.abandoned,
                        scenario_time=self._scenario_seconds(time.monotonic()))
