"""Benchmark: a flood of contacts nobody can serve, and a steady flow of servable ones.

    python -m lab.bench.flood                      # throw-away embedded Redis, ~2 minutes
    python -m lab.bench.flood --kind no-agent-has-all --unservable 20000 --combos 5000

A center ``flood`` gets ``--unservable`` queued contacts over ``--combos`` distinct skill
combinations that no agent can serve (``missing-skill``: each needs a skill no agent has;
``no-agent-has-all``: four real skills each, while every agent has three), then
contacts that its agents can serve arrive at ``--rate`` per second for ``--seconds``,
served by ``--dispatchers`` real dispatcher processes; every assigned contact is
completed at once, so its agent is available again. Meanwhile a client reads an agent of
another center (``bystander``) in a loop.

Prints one JSON line per measurement (figures are the server's: the ``wait_ms`` of each
``contact_assigned`` event, INFO commandstats, SLOWLOG):
- ``servable``: enqueue-to-assignment p50/p99/max of the servable flow, and how many stayed
  unassigned;
- ``idle_round``: server time of one dispatch round that finds nothing to do, with the
  flood queued;
- ``bystander``: p50/p99 of the other center's reads, idle server vs during the flow;
- ``longest_call``: the slowest command of the flow phase (SLOWLOG, calls over 0.5 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any, cast

from redis.asyncio import Redis

from acd import Center, connect
from acd.center import DEFAULT_BATCH
from acd.commands import command, xread
from acd.invariants import violations
from lab.bench.dispatchers import dispatcher_processes
from lab.bench.runs import percentile

REPO = Path(__file__).resolve().parents[2]
POOL = [f"s{i:02d}" for i in range(24)]  # the skills agents have
SLOW_US = 500  # SLOWLOG threshold while the flow runs


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


async def read_latencies(other: Center, stop: asyncio.Event) -> list[float]:
    out = []
    while not stop.is_set():
        t0 = time.perf_counter()
        await other.get_agent("b1")
        out.append((time.perf_counter() - t0) * 1000)
        await asyncio.sleep(0.002)
    return out


async def flow(center: Center, rate: float, seconds: float, rng: random.Random
               ) -> tuple[list[float], int]:
    """Servable contacts at ``rate``/s; each completed as soon as it is assigned. Returns
    the waits (ms, server side) and how many were never assigned."""
    cursor = await center.last_event_id()
    posted: set[str] = set()
    waits: dict[str, float] = {}
    done = asyncio.Event()

    async def follow() -> None:
        nonlocal cursor
        while not (done.is_set() and posted <= waits.keys()):
            for entry_id, fields in await xread(center.redis, center.keys.events, cursor,
                                                200, count=1000):
                cursor = entry_id
                if fields.get("type") == "contact_assigned" and fields["contact"] in posted:
                    waits[fields["contact"]] = float(fields["wait_ms"])
                    await center.complete_contact(fields["contact"])

    follower = asyncio.create_task(follow())
    start = time.perf_counter()
    n = int(rate * seconds)
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        contact = await center.create_contact([rng.choice(POOL)])
        posted.add(contact.id)
    done.set()
    with suppress(TimeoutError):
        await asyncio.wait_for(follower, timeout=30)
    return list(waits.values()), len(posted - waits.keys())


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


async def run(args: argparse.Namespace, url: str) -> int:
    rng = random.Random(args.seed)
    redis = connect(url)
    flood, other = Center(redis, "flood"), Center(redis, "bystander")
    await flood.delete()
    await other.delete()
    await create_agents(flood, args.agents, rng)
    await other.create_agent("b1", "By", "Stander", ["s00"])
    stop = asyncio.Event()
    reader = asyncio.create_task(read_latencies(other, stop))
    await asyncio.sleep(3)
    stop.set()
    idle_reads = await reader
    with tempfile.TemporaryDirectory(prefix="acd-flood-") as logs:
        async with dispatcher_processes(redis, url, flood, args.dispatchers, Path(logs),
                                        DEFAULT_BATCH, debug=False):
            combos = unservable_combos(args.kind, args.combos, rng)
            loaded = await queue_flood(flood, combos, args.unservable)
            await asyncio.sleep(2)  # let the dispatchers look at every new combination once
            idle_us = await idle_round_us(flood)
            await command(redis, "SLOWLOG", "RESET")
            await command(redis, "CONFIG", "SET", "slowlog-log-slower-than", str(SLOW_US))
            await command(redis, "CONFIG", "SET", "slowlog-max-len", "10000")
            stop = asyncio.Event()
            reader = asyncio.create_task(read_latencies(other, stop))
            waits, unassigned = await flow(flood, args.rate, args.seconds, rng)
            stop.set()
            busy_reads = await reader
            slow = await command(redis, "SLOWLOG", "GET", "10000")
    found = await violations(flood) if args.check else []
    common = {"kind": args.kind, "unservable": args.unservable, "combos": args.combos,
              "agents": args.agents, "dispatchers": args.dispatchers}
    emit({"measure": "servable", **common, "rate": args.rate, "seconds": args.seconds,
          "assigned": len(waits), "unassigned": unassigned,
          "p50_ms": percentile(waits, 50), "p99_ms": percentile(waits, 99),
          "max_ms": max(waits, default=None), "flood_load_s": round(loaded, 1)})
    emit({"measure": "idle_round", **common, "server_us": round(idle_us, 1)})
    emit({"measure": "bystander", "idle_p50_ms": percentile(idle_reads, 50),
          "idle_p99_ms": percentile(idle_reads, 99),
          "flow_p50_ms": percentile(busy_reads, 50),
          "flow_p99_ms": percentile(busy_reads, 99)})
    # SLOWLOG GET entries: [id, unix time, duration in µs, [command, args...], ...]
    longest = max(slow, key=lambda e: int(e[2]), default=None)
    emit({"measure": "longest_call", "over_us": SLOW_US, "slow_calls": len(slow),
          "longest_us": int(longest[2]) if longest else None,
          "command": " ".join(map(str, longest[3][:2])) if longest else None})
    emit({"measure": "invariants", "checked": args.check, "violations": len(found),
          "first": found[:3]})
    await flood.delete()
    await other.delete()
    await redis.aclose()
    return 1 if found or unassigned else 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m lab.bench.flood", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--redis-url", help="use this Redis (default: a throw-away embedded one)")
    p.add_argument("--kind", choices=["missing-skill", "no-agent-has-all"],
                   default="missing-skill")
    p.add_argument("--unservable", type=int, default=100_000)
    p.add_argument("--combos", type=int, default=10_000)
    p.add_argument("--agents", type=int, default=60)
    p.add_argument("--rate", type=float, default=500.0, help="servable contacts per second")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--dispatchers", type=int, default=2)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--no-check", dest="check", action="store_false",
                   help="skip the invariant check at the end (minutes at 100,000 contacts)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.redis_url:
        return asyncio.run(run(args, args.redis_url))
    from lab.embedded import throwaway_redis

    with throwaway_redis("flood-redis") as url:
        return asyncio.run(run(args, url))


if __name__ == "__main__":
    sys.exit(main())
