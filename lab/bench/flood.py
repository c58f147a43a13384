"""Benchmark: a flood of contacts nobody can serve, and a steady flow of servable ones.

    python -m lab.bench.flood                      # throw-away embedded Redis, ~2 minutes
    python -m lab.bench.flood --kind no-agent-has-all --unservable 20000 --combos 5000

A center ``flood`` gets ``--unservable`` queued contacts over ``--combos`` distinct skill
combinations that no agent can serve (``missing-skill``: each needs a skill no agent has;
``no-agent-has-all``: four real skills each, while every agent has three), then
contacts that its agents can serve arrive at ``--rate`` per second for ``--seconds``,
served by ``--dispatchers`` real dispatcher processes; every assigned contact is
completed at once (by 8 completers following the events), so its agent is available
again. A process of its own (lab.bench.reader) reads an agent of another center
(``bystander``) every 2 ms: once on the idle server, once during the flow. ``--isolate``
gives Redis a core of its own, as a production Redis would have, and the reader a
real-time priority on the others.

Prints one JSON line per measurement (figures are the server's: the ``wait_ms`` of each
``contact_assigned`` event, INFO commandstats, SLOWLOG):
- ``servable``: enqueue-to-assignment p50/p99/max of the servable flow, and how many stayed
  unassigned;
- ``idle_round``: server time of one dispatch round that finds nothing to do, with the
  flood queued;
- ``bystander``: p50/p99 of the other center's reads, idle server vs during the flow, and
  the ratio of the p99s;
- ``longest_call``: the longest function call of the flow phase (SLOWLOG, and INFO
  latencystats' p100 as a check).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any, cast

from redis.asyncio import Redis

from acd import Center, connect
from acd.center import DEFAULT_BATCH
from acd.commands import xread
from acd.invariants import violations
from acd.settings import get_settings
from lab.bench.dispatchers import dispatcher_processes
from lab.bench.profile import longest_calls
from lab.bench.runs import percentile
from lab.embedded import run_on_redis

REPO = Path(__file__).resolve().parents[2]
POOL = [f"s{i:02d}" for i in range(24)]  # the skills agents have


def unservable_combos(kind: str, count: int, rng: random.Random) -> list[list[str]]:
    if kind == "missing-skill":
        return [[rng.choice(POOL), f"nobody{i}"] for i in range(count)]
    combos = list(itertools.combinations(POOL, 4))
    rng.shuffle(combos)
    if count > len(combos):
        raise SystemExit(f"--combos: at most {len(combos)} for {kind}")
    return [list(c) for c in combos[:count]]


async def create_agents(center: Center, agents: int, rng: random.Random) -> None:
    for i in range(agents):
        skills = [POOL[i % len(POOL)], *rng.sample(POOL, 2)]
        await center.create_agent(f"a{i}", "Flood", str(i), sorted(set(skills)),
                                  available=True)


async def queue_flood(center: Center, combos: list[list[str]], total: int) -> float:
    start = time.perf_counter()
    for first in range(0, total, 500):
        await asyncio.gather(*(center.create_contact(combos[i % len(combos)])
                               for i in range(first, min(total, first + 500))))
    return time.perf_counter() - start


async def fcall_usec(redis: Redis) -> tuple[int, int]:
    stats = await cast(Any, redis).info("commandstats")
    row = stats.get("cmdstat_fcall", {"calls": 0, "usec": 0})
    return int(row["calls"]), int(row["usec"])


async def idle_round_us(center: Center, rounds: int = 500) -> float:
    calls0, usec0 = await fcall_usec(center.redis)
    for _ in range(rounds):
        await center.dispatch()
    calls1, usec1 = await fcall_usec(center.redis)
    return (usec1 - usec0) / max(1, calls1 - calls0)


async def isolate_redis(redis: Redis) -> set[int]:
    """Redis gets CPU 0 alone, this process (so every process it starts after) the others:
    Redis on a core of its own, as in production, so that the bystander's figure says
    what Redis's work costs other centers, not what the load generator's CPU use costs
    (on 2 cores, poster, completers and dispatchers otherwise take Redis's turns).
    Returns the CPUs of the bystander's reader: the load generator's, where it runs with
    a real-time priority (see bystander_reads)."""
    cpus = os.sched_getaffinity(0)
    if len(cpus) < 2:
        raise SystemExit("--isolate needs at least 2 CPUs")
    first = min(cpus)
    pid = int((await redis.info("server"))["process_id"])
    os.sched_setaffinity(pid, {first})
    os.sched_setaffinity(0, cpus - {first})
    return cpus - {first}


def realtime(pid: int) -> bool:
    """Give ``pid`` a real-time priority (root only): a bystander on another machine is
    never kept off its CPU by this benchmark's load; sharing Redis's core instead made it
    take Redis's turns (and Redis its), which is no cost Redis imposes on other centers."""
    try:
        os.sched_setscheduler(pid, os.SCHED_FIFO, os.sched_param(10))
    except (PermissionError, AttributeError, OSError):
        return False
    return True


async def bystander_reads(url: str, other: Center, seconds: float,
                          cpus: set[int] | None = None) -> dict[str, Any]:
    """p50/p99/max (ms) of reads of another center's agent over ``seconds``, timed in a
    process of its own (lab.bench.reader), on ``cpus`` with a real-time priority if given."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lab.bench.reader", url, other.keys.agent("b1"),
        "--seconds", str(seconds), cwd=REPO, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    rt = False
    if cpus:
        os.sched_setaffinity(proc.pid, cpus)
        rt = realtime(proc.pid)
    out, _ = await asyncio.wait_for(proc.communicate(), seconds + 30)
    if proc.returncode != 0:
        raise RuntimeError(f"lab.bench.reader failed ({proc.returncode})")
    return {**cast(dict[str, Any], json.loads(out)), "realtime": rt}


class Completer:
    """Plays the agents: follows the center's events and completes each assigned contact
    at once, ``workers`` at a time (one completer in turn fell behind at 500/s)."""

    def __init__(self, center: Center, workers: int = 8) -> None:
        self.center, self.workers = center, workers
        self.posted: set[str] = set()
        self.waits: dict[str, float] = {}
        self.failed: list[str] = []  # completions refused, with the error
        self.lags: list[float] = []  # ms from assignment to completion (server clock)
        self._todo: asyncio.Queue[str] = asyncio.Queue()

    async def follow(self, cursor: str, done: asyncio.Event) -> None:
        """Until ``done`` and every posted contact was seen assigned."""
        while not (done.is_set() and self.posted <= self.waits.keys()):
            for entry_id, fields in await xread(self.center.redis, self.center.keys.events,
                                                cursor, 200, count=1000):
                cursor = entry_id
                if fields.get("type") == "contact_assigned" and fields["contact"] in self.posted:
                    self.waits[fields["contact"]] = float(fields["wait_ms"])
                    self._todo.put_nowait(fields["contact"])

    async def complete(self) -> None:
        while True:
            contact = await self._todo.get()
            try:
                ended = await self.center.complete_contact(contact)
                if ended.ended_at is not None and ended.assigned_at is not None:
                    self.lags.append(float(ended.ended_at - ended.assigned_at))
            except Exception as exc:  # noqa: BLE001 - counted and shown, the rest go on
                self.failed.append(f"{contact}: {exc!r}"[:200])
            finally:
                self._todo.task_done()

    async def settle(self) -> None:
        """Until every contact seen assigned was completed."""
        await self._todo.join()


async def flow(center: Center, rate: float, seconds: float, rng: random.Random
               ) -> tuple[list[float], int, Completer]:
    """Servable contacts at ``rate``/s, each posted on its schedule; each completed as
    soon as it is assigned. Returns the waits (ms, server side), how many were never
    assigned, and the completer (completion lags, failures)."""
    completer = Completer(center)
    done = asyncio.Event()
    follower = asyncio.create_task(completer.follow(await center.last_event_id(), done))
    workers = [asyncio.create_task(completer.complete()) for _ in range(completer.workers)]
    gate = asyncio.Semaphore(64)

    async def post(skills: list[str]) -> None:
        # Known before it is queued: its assignment may be on the events stream before
        # the answer to the post is read here.
        contact_id = uuid.uuid4().hex
        completer.posted.add(contact_id)
        async with gate:
            await center.create_contact(skills, contact_id)

    try:
        sends = []
        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sends.append(asyncio.create_task(post([rng.choice(POOL)])))
        await asyncio.gather(*sends)
        done.set()
        with suppress(TimeoutError):
            await asyncio.wait_for(follower, timeout=30)
        await asyncio.wait_for(completer.settle(), timeout=30)
    finally:
        for task in [follower, *workers]:
            task.cancel()
        await asyncio.gather(follower, *workers, return_exceptions=True)
    waits = completer.waits
    return list(waits.values()), len(completer.posted - waits.keys()), completer


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


async def run(args: argparse.Namespace, url: str) -> int:
    rng = random.Random(args.seed)
    redis = connect(url)
    flood, other = Center(redis, "flood"), Center(redis, "bystander")
    await flood.wipe()
    await other.wipe()
    await create_agents(flood, args.agents, rng)
    await other.create_agent("b1", "By", "Stander", ["s00"])
    reader_cpus = await isolate_redis(redis) if args.isolate else None
    redis_realtime = args.redis_realtime and realtime(
        int((await redis.info("server"))["process_id"]))
    idle_reads = await bystander_reads(url, other, args.idle_seconds, reader_cpus)
    with tempfile.TemporaryDirectory(prefix="acd-flood-") as logs:
        async with dispatcher_processes(redis, url, flood, args.dispatchers, Path(logs),
                                        args.batch, debug=False):
            combos = unservable_combos(args.kind, args.combos, rng)
            loaded = await queue_flood(flood, combos, args.unservable)
            await asyncio.sleep(2)  # let the dispatchers look at every new combination once
            async with longest_calls(redis) as longest:
                idle_us = await idle_round_us(flood)
                reads = asyncio.create_task(bystander_reads(url, other, args.seconds,
                                                               reader_cpus))
                waits, unassigned, completer = await flow(flood, args.rate, args.seconds,
                                                          rng)
                busy_reads = await reads
    found = await violations(flood) if args.check else []
    common = {"kind": args.kind, "unservable": args.unservable, "combos": args.combos,
              "agents": args.agents, "dispatchers": args.dispatchers, "batch": args.batch}
    emit({"measure": "servable", **common, "rate": args.rate, "seconds": args.seconds,
          "assigned": len(waits), "unassigned": unassigned,
          "p50_ms": percentile(waits, 50), "p99_ms": percentile(waits, 99),
          "max_ms": max(waits, default=None),
          # An agent is busy from its assignment until the completer ends the contact:
          # a contact's wait is "from servable" only while these stay short.
          "completion_lag_p99_ms": percentile(completer.lags, 99),
          "completions_failed": len(completer.failed),
          "first_failure": completer.failed[0] if completer.failed else None,
          "flood_load_s": round(loaded, 1)})
    emit({"measure": "idle_round", **common, "server_us": round(idle_us, 1)})
    emit({"measure": "bystander", "isolated": args.isolate, "redis_realtime": redis_realtime,
          "load_average": round(os.getloadavg()[0], 1),
          "reader_realtime": busy_reads["realtime"], "reads_idle": idle_reads["reads"],
          "reads_flow": busy_reads["reads"],
          "idle_p50_ms": idle_reads["p50_ms"], "idle_p99_ms": idle_reads["p99_ms"],
          "flow_p50_ms": busy_reads["p50_ms"], "flow_p99_ms": busy_reads["p99_ms"],
          "flow_max_ms": busy_reads["max_ms"],
          "p99_ratio": round(busy_reads["p99_ms"] / max(1e-3, idle_reads["p99_ms"]), 2)})
    emit({"measure": "longest_call", **longest.as_dict()})
    emit({"measure": "invariants", "checked": args.check, "violations": len(found),
          "first": found[:3]})
    await flood.wipe()
    await other.wipe()
    await redis.aclose()
    return 1 if found or unassigned or completer.failed else 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m lab.bench.flood", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--redis-url", help="use this Redis (default: a throw-away embedded one)")
    p.add_argument("--kind", choices=["missing-skill", "no-agent-has-all"],
                   default="missing-skill")
    p.add_argument("--unservable", type=int, default=100_000)
    p.add_argument("--combos", type=int, default=10_000)
    p.add_argument("--agents", type=int, default=240,
                   help="agents of the flow, 3 of 24 skills each (default: %(default)s: "
                        "about 30 per skill, so one is free when a contact arrives)")
    p.add_argument("--rate", type=float, default=500.0, help="servable contacts per second")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--dispatchers", type=int, default=2)
    p.add_argument("--batch", type=int, default=DEFAULT_BATCH,
                   help="the dispatchers' most assignments per round (default: "
                        "%(default)s, theirs): smaller rounds are shorter calls for another "
                        "center's read to wait behind")
    p.add_argument("--idle-seconds", type=float, default=10.0,
                   help="how long the bystander reads on the idle server (its p99 is the "
                        "ratio's base: 3 s gave 1,200 reads, a p99 of their 12 slowest)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--isolate", action="store_true",
                   help="Redis alone on CPU 0, everything else on the other CPUs, the "
                        "bystander's reader with a real-time priority (see isolate_redis)")
    p.add_argument("--redis-realtime", action="store_true",
                   help="Redis with a real-time priority too (root only): on a VM busy with "
                        "other work, what a core of its own would give it; else the "
                        "scheduler pauses it mid-call for time slices of 4-8 ms")
    p.add_argument("--no-check", dest="check", action="store_false",
                   help="skip the invariant check at the end (minutes at 100,000 contacts)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # The flood is the point: the center's cap on waiting contacts (ACD_MAX_QUEUED, 100,000
    # by default) must not refuse its flow once the unservable ones fill it.
    needed = args.unservable + int(args.rate * args.seconds) + 1000
    if int(os.environ.get("ACD_MAX_QUEUED", "0")) < needed:
        os.environ["ACD_MAX_QUEUED"] = str(needed)
        get_settings.cache_clear()
    return run_on_redis(args.redis_url, "flood-redis", lambda url: run(args, url))


if __name__ == "__main__":
    sys.exit(main())
