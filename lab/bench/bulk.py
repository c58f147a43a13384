"""Benchmark: bulk operations on a big center, and what another center's reader sees.

    python -m lab.bench.bulk                       # throw-away embedded Redis, ~1 minute
    python -m lab.bench.bulk --agents 5000 --skills 32 --batch 16

A center ``bulk`` gets ``--agents`` agents with ``--skills`` skills each. Then, in turn:
open it, close it, queue ``--waiting`` contacts needing a skill and delete that skill
with force (abandons them, removes it from every agent), queue as many again and delete
the center (abandons them, deletes every agent and key). Each is a bulk operation of
acd.bulk: many Redis calls of at most ``--batch`` agents or contacts each.

Meanwhile a client on its own connection reads an agent of another center (``bystander``)
every millisecond. Every command is logged (SLOWLOG with slowlog-log-slower-than 0 on the
throw-away server), so the figures are the server's own.

Prints one JSON line per operation: total time, Redis calls (FCALLs of the operation's
function), the longest single call (µs, SLOWLOG), and the bystander's read p50/p99/max
(ms, client side) during the operation. Exit status 1 if a call took longer than
``--target-us`` (5 ms: issue 12's bound), 0 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.asyncio import Redis

from acd import Center, bulk, connect
from acd.commands import command
from acd.functions import Functions
from acd.settings import get_settings
from lab.bench.runs import percentile
from lab.embedded import run_on_redis

KEEP_SECONDS = 60
SLOWLOG_LEN = 1_000_000


async def create_agents(center: Center, agents: int, skills: int) -> None:
    names = [f"s{i:02d}" for i in range(skills)]
    for first in range(0, agents, 200):
        await asyncio.gather(*(center.create_agent(f"a{i}", "Bulk", str(i), names)
                               for i in range(first, min(agents, first + 200))))


async def queue_contacts(center: Center, count: int, skill: str) -> None:
    for first in range(0, count, 200):
        await asyncio.gather(*(center.create_contact([skill])
                               for _ in range(first, min(count, first + 200))))


async def read_loop(reader: Center, stop: asyncio.Event, out: list[float]) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        await reader.get_agent("b1")
        out.append((time.perf_counter() - t0) * 1000)
        await asyncio.sleep(0.001)


async def measured(redis: Redis, reader: Center, name: str, function: str,
                   operation: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    """Run ``operation`` with the bystander reading; the figures of one JSON line."""
    await command(redis, "SLOWLOG", "RESET")
    reads: list[float] = []
    stop = asyncio.Event()
    reading = asyncio.create_task(read_loop(reader, stop, reads))
    await asyncio.sleep(0.05)
    idle_reads = len(reads)
    t0 = time.perf_counter()
    result = await operation()
    total_s = time.perf_counter() - t0
    stop.set()
    await reading
    during = reads[idle_reads:]
    # SLOWLOG GET entries: [id, unix time, duration in µs, [command, args...], ...]
    log = await command(redis, "SLOWLOG", "GET", str(SLOWLOG_LEN))
    calls = [int(e[2]) for e in log
             if len(e[3]) > 1 and str(e[3][0]).upper() == "FCALL" and str(e[3][1]) == function]
    return {"operation": name, "function": function, "result": result,
            "total_s": round(total_s, 3), "calls": len(calls),
            "longest_call_us": max(calls, default=None),
            "mean_call_us": round(sum(calls) / len(calls), 1) if calls else None,
            "bystander_reads": len(during), "bystander_p50_ms": _ms(percentile(during, 50)),
            "bystander_p99_ms": _ms(percentile(during, 99)),
            "bystander_max_ms": _ms(max(during, default=None))}


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


async def run(args: argparse.Namespace, url: str) -> int:
    redis = connect(url)
    other = connect(url)  # the bystander's own connection: it queues behind Redis only
    center, reader = Center(redis, "bulk"), Center(other, "bystander")
    await center.wipe()
    await reader.wipe()
    await reader.create_agent("b1", "By", "Stander", ["s00"])
    t0 = time.perf_counter()
    await create_agents(center, args.agents, args.skills)
    setup_s = time.perf_counter() - t0
    await command(redis, "CONFIG", "SET", "slowlog-log-slower-than", "0")
    await command(redis, "CONFIG", "SET", "slowlog-max-len", str(SLOWLOG_LEN))
    fn, keep, batch = Functions(redis, center.keys), KEEP_SECONDS, args.batch
    common = {"agents": args.agents, "skills": args.skills, "waiting": args.waiting,
              "batch": batch, "setup_s": round(setup_s, 1)}
    records = [
        await measured(redis, reader, "open", "acd_center_state",
                       lambda: bulk.set_open(fn, redis, True, batch)),
        await measured(redis, reader, "close", "acd_center_state",
                       lambda: bulk.set_open(fn, redis, False, batch)),
    ]
    await queue_contacts(center, args.waiting, "s00")
    records.append(await measured(redis, reader, "skill_delete", "acd_skill_delete",
                                  lambda: bulk.delete_skill(fn, "s00", True, keep, batch)))
    await queue_contacts(center, args.waiting, "s01")
    records.append(await measured(
        redis, reader, "center_delete", "acd_center_delete",
        lambda: _deletion(bulk.delete_center(fn, redis, keep, batch))))
    worst = 0
    for record in records:
        print(json.dumps({**common, **record}), flush=True)
        worst = max(worst, record["longest_call_us"] or 0)
    await command(redis, "CONFIG", "SET", "slowlog-log-slower-than", "10000")
    await reader.wipe()
    await redis.aclose()
    await other.aclose()
    return 1 if worst > args.target_us else 0


async def _deletion(pending: Awaitable[bulk.CenterDeletion]) -> dict[str, int]:
    done = await pending
    return {"agents": done.agents, "abandoned": done.abandoned}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m lab.bench.bulk", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--redis-url", help="use this Redis (default: a throw-away embedded one); "
                   "its SLOWLOG settings are changed")
    p.add_argument("--agents", type=int, default=5000)
    p.add_argument("--skills", type=int, default=32)
    p.add_argument("--waiting", type=int, default=2000,
                   help="contacts waiting before each delete (abandoned by it)")
    p.add_argument("--batch", type=int, default=get_settings().acd_bulk_batch,
                   help="agents or contacts per call (default: ACD_BULK_BATCH)")
    p.add_argument("--target-us", type=int, default=5000, help="longest call allowed")
    args = p.parse_args(argv)
    for name in ("agents", "skills", "batch"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_on_redis(args.redis_url, "bulk-redis", lambda url: run(args, url))


if __name__ == "__main__":
    sys.exit(main())
