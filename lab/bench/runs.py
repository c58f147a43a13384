"""The measured runs: naive and real throughput, latency at an offered rate, several
dispatcher processes (lab.bench.dispatchers), and the whole path through the REST API
(posted by lab.bench.posting).

Every run gets a fresh center (its own hash tag) loaded with the same workload, so runs
cannot see each other's keys and every dispatcher starts from the same state.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from acd.center import DEFAULT_BUDGET, Center
from acd.dispatcher import Dispatcher
from acd.naive import NaiveDispatcher
from lab.bench import profile as prof
from lab.bench.dispatchers import REPO, dispatcher_processes
from lab.bench.posting import post_contacts
from lab.bench.workload import (
    Check,
    Workload,
    check_assignments,
    create_agents,
    queue_contacts,
    stream_memory,
    used_memory,
)

LANES = 4  # concurrent senders of the offered-rate runs
POST_TIMEOUT = 300.0  # seconds for the API path's clients to post every contact


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def new_center(redis: Redis, label: str) -> Center:
    return Center(redis, f"bench-{label}-{uuid.uuid4().hex[:8]}")


@dataclass
class Setup:
    center: Center
    memory_per_agent: float
    memory_per_contact: float


async def prepare(redis: Redis, workload: Workload, label: str, available: bool = True,
                  contacts: Sequence[tuple[str, list[str]]] | None = None) -> Setup:
    """A fresh center with the workload's agents and its contacts queued.

    Memory deltas exclude the capped event/wake streams, which do not grow per agent.
    """
    center = new_center(redis, label)
    specs = workload.contact_specs if contacts is None else contacts
    m0, s0 = await used_memory(redis), await stream_memory(redis, center)
    await create_agents(center, workload, available)
    m1, s1 = await used_memory(redis), await stream_memory(redis, center)
    await queue_contacts(center, specs)
    m2, s2 = await used_memory(redis), await stream_memory(redis, center)
    per_agent = ((m1 - m0) - (s1 - s0)) / max(1, workload.agents)
    per_contact = ((m2 - m1) - (s2 - s1)) / max(1, len(specs))
    return Setup(center, per_agent, per_contact)


@dataclass
class Throughput:
    assigned: int
    seconds: float
    check: Check
    calls: int = 0
    # INFO commandstats just before and just after the dispatching (not the check,
    # whose reads would count as the dispatcher's)
    stats: tuple[prof.Stats, prof.Stats] | None = None

    @property
    def rate(self) -> float:
        return self.assigned / self.seconds if self.seconds > 0 else 0.0

    @property
    def us_per_assignment(self) -> float | None:
        return self.seconds / self.assigned * 1e6 if self.assigned else None


async def naive_throughput(center: Center, specs: Sequence[tuple[str, list[str]]]
                           ) -> Throughput:
    """acd.naive.NaiveDispatcher over the pre-queued contacts, without its back-off sleep.

    Stops when every contact is assigned, or when every contact left came back unserved.
    """
    naive = NaiveDispatcher(center, pop_timeout=0.2, backoff=(0.0, 0.0))
    pairs: list[tuple[str, str]] = []
    misses = 0
    before = await prof.commandstats(center.redis)
    start = time.perf_counter()
    while len(pairs) < len(specs) and misses <= len(specs) - len(pairs):
        result = await naive.step()
        if result is None:
            break
        if result.agent is None:
            misses += 1
        else:
            pairs.append((result.contact, result.agent))
            misses = 0
    seconds = time.perf_counter() - start
    after = await prof.commandstats(center.redis)
    check = await check_assignments(center, specs, pairs, naive=True)
    return Throughput(len(pairs), seconds, check, stats=(before, after))


async def real_throughput(center: Center, specs: Sequence[tuple[str, list[str]]], batch: int,
                          budget: int = DEFAULT_BUDGET) -> Throughput:
    """acd.dispatcher.Dispatcher rounds over the pre-queued contacts until one assigns
    nothing. A round calls acd_dispatch until a call assigns fewer than ``batch``; a call
    also stops at its work budget (DISPATCH_WORK in acd/lua/02_queue_index.lua: 25 agents
    of 8 skills), so a
    batch over that ends a round early, and a dispatcher service would go on at once
    (that call's 'more' wake-up): so does this."""
    pairs: list[tuple[str, str]] = []
    dispatcher = Dispatcher(center, batch=batch, budget=budget,
                            on_round=lambda done: pairs.extend(done.pairs))
    before = await prof.commandstats(center.redis)
    start = time.perf_counter()
    while True:
        assigned = dispatcher.assigned
        await dispatcher.round()
        if dispatcher.assigned == assigned:
            break
    seconds = time.perf_counter() - start
    after = await prof.commandstats(center.redis)
    check = await check_assignments(center, specs, pairs)
    return Throughput(dispatcher.assigned, seconds, check, dispatcher.rounds,
                      (before, after))


@dataclass
class MultiResult:
    dispatchers: int
    assigned: int
    seconds: float
    check: Check
    per_process: list[int]

    @property
    def rate(self) -> float:
        return self.assigned / self.seconds if self.seconds > 0 else 0.0


async def multi_dispatchers(redis: Redis, url: str, workload: Workload, count: int,
                            log_dir: Path, batch: int) -> MultiResult:
    """Pre-queued contacts and available agents in a center whose dispatch mode is manual
    (the services leave it alone); ``count`` dispatcher processes wait on the wake stream;
    the clock runs from the switch to automatic (one call, one wake-up) until every
    contact is assigned. (Opening the center instead would time the open too: it is many
    short calls, see acd.bulk.)"""
    setup = await prepare(redis, workload, f"multi{count}", available=False)
    center = setup.center
    try:
        await center.set_dispatch_mode("manual")
        await center.open()
        async with dispatcher_processes(redis, url, center, count, log_dir, batch,
                                        debug=True) as procs:
            start = time.perf_counter()
            await center.set_dispatch_mode("automatic")
            goal, last, last_change = len(workload.contact_specs), -1, time.monotonic()
            while True:
                assigned = (await center.counters()).get("assigned", 0)
                now = time.monotonic()
                if assigned >= goal:
                    break
                if assigned != last:
                    last, last_change = assigned, now
                elif now - last_change > 3.0:
                    break
                await asyncio.sleep(0.002)
            seconds = time.perf_counter() - start
            await asyncio.sleep(0.3)  # let log lines reach the files
        pairs = [pair for p in procs for pair in p.pairs()]
        check = await check_assignments(center, workload.contact_specs, pairs)
        return MultiResult(count, assigned, seconds, check, [len(p.pairs()) for p in procs])
    finally:
        await center.wipe()


# -- latency at an offered rate ------------------------------------------------------------
@dataclass
class Latency:
    offered_rate: float
    achieved_rate: float
    sent: int
    assigned: int
    client_ms: list[float]  # enqueue call start -> assignment event seen by the bench
    server_ms: list[int]  # the function's own wait_ms (ms clock of the server)
    check: Check


async def offered_latency(redis: Redis, url: str, workload: Workload, rate: float,
                          seconds: float, handle_ms: float, log_dir: Path,
                          dispatchers: int = 1, batch: int = 200) -> Latency:
    """Contacts queued at ``rate`` per second by Center.create_contact while dispatcher
    processes woken by the wake stream assign them; each contact is completed
    ``handle_ms`` after its assignment, which makes its agent available again.

    Latency is taken two ways: on the bench's clock, from just before the enqueue call to
    the moment its contact_assigned event reaches the bench (an upper bound: it includes
    the enqueue round trip and the event hop); and the wait_ms the function itself records
    (server ms clock, 1 ms resolution).
    """
    n = int(rate * seconds)
    specs = workload.contact_specs[:n]
    setup = await prepare(redis, workload, "lat", available=True, contacts=[])
    center = setup.center
    sent_at: dict[str, float] = {}
    client_ms: list[float] = []
    server_ms: list[int] = []
    to_complete: asyncio.Queue[tuple[float, str] | None] = asyncio.Queue()
    done = asyncio.Event()

    async def completer() -> None:
        """Completes contacts in assignment order, each ``handle_ms`` after it was seen
        (LANES of these share the work, or completions would lag behind arrivals and
        the agents run out)."""
        while (item := await to_complete.get()) is not None:
            due, cid = item
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await center.complete_contact(cid)

    async def observe(after: str) -> None:
        last = after
        while len(client_ms) < n:
            last, events = await center.events(last, block_ms=2000, count=500)
            if not events:
                if done.is_set():
                    return
                continue
            seen = time.perf_counter()
            for event in events:
                if event.type != "contact_assigned":
                    continue
                cid = event.fields["contact"]
                if cid in sent_at:
                    client_ms.append((seen - sent_at[cid]) * 1000)
                    server_ms.append(int(event.fields["wait_ms"]))
                    to_complete.put_nowait((seen + handle_ms / 1000, cid))

    try:
        async with dispatcher_processes(redis, url, center, dispatchers, log_dir, batch,
                                        debug=False):
            observer = asyncio.create_task(observe(await center.last_event_id()))
            completing = [asyncio.create_task(completer()) for _ in range(LANES)]
            start = time.perf_counter()

            async def lane(first: int) -> None:
                # Arrivals on a fixed schedule, LANES senders taking turns, so one slow
                # reply does not hold up the next arrival; a late send goes at once (and
                # shows in achieved_offer_per_s) rather than shifting every later one.
                for i in range(first, len(specs), LANES):
                    cid, skills = specs[i]
                    delay = start + i / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    sent_at[cid] = time.perf_counter()
                    await center.create_contact(skills, contact_id=cid)

            await asyncio.gather(*(lane(j) for j in range(LANES)))
            sent_seconds = time.perf_counter() - start
            with suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(observer), timeout=10)
            done.set()
            observer.cancel()
            with suppress(asyncio.CancelledError):
                await observer
            for _ in completing:
                to_complete.put_nowait(None)
            await asyncio.gather(*completing)
        check = await check_assignments(center, specs, ended_ok=True)
        return Latency(rate, n / sent_seconds, n, len(client_ms), client_ms, server_ms, check)
    finally:
        await center.wipe()


# -- the whole path: REST API -> queue -> dispatcher ---------------------------------------
@dataclass
class ApiResult:
    posted: int
    post_seconds: float
    assigned: int
    total_seconds: float

    @property
    def post_rate(self) -> float:
        return self.posted / self.post_seconds if self.post_seconds else 0.0

    @property
    def assign_rate(self) -> float:
        return self.assigned / self.total_seconds if self.total_seconds else 0.0


def api_available() -> bool:
    return (REPO / "acd" / "api" / "app.py").exists()


async def api_path(redis: Redis, url: str, workload: Workload, contacts: int,
                   concurrency: int, log_dir: Path) -> ApiResult:
    """POST contacts to /v1/centers/{center}/contacts as fast as ``concurrency`` clients
    can, with one dispatcher process assigning them; contacts/s through the API into
    assignments."""
    from acd.api import apikeys
    from lab import apiserver

    setup = await prepare(redis, workload, "api", available=True, contacts=[])
    center = setup.center
    key = await apikeys.create(redis, center.name, "lab.bench api path")
    log = log_dir / f"api-{center.name}.log"
    api = await asyncio.to_thread(apiserver.start, {**os.environ, "REDIS_URL": url}, log, 1)
    specs = workload.contact_specs[:contacts]
    try:
        async with dispatcher_processes(redis, url, center, 1, log_dir, 200, debug=False):
            start = time.perf_counter()
            posted = await post_contacts(api.url, center.name,
                                         [skills for _, skills in specs], concurrency,
                                         POST_TIMEOUT, key)
            if posted.errors:
                raise RuntimeError(f"API refused contacts: {posted.first_error}")
            assigned = 0
            give_up = time.monotonic() + 10
            while assigned < len(specs) and time.monotonic() < give_up:
                assigned = (await center.counters()).get("assigned", 0)
                await asyncio.sleep(0.002)
            total = time.perf_counter() - start
        return ApiResult(len(specs), posted.seconds, assigned, total)
    finally:
        await asyncio.to_thread(apiserver.stop, api)
        await apikeys.revoke(redis, key)
        await center.wipe()


def dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(", ", ": "))
