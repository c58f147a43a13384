"""Benchmark: many centers with work, served by the real dispatcher processes.

    python -m lab.bench.centers                    # 2,000 centers, throw-away embedded Redis
    python -m lab.bench.centers --centers 500 --rate 100 --seconds 10

``--centers`` centers get one available agent each; contacts arrive at ``--rate`` per
second, each in the next center in turn, and each is completed as soon as it is
assigned (its agent is free again). ``--dispatchers`` processes of
``python -m acd.dispatcher`` (every registered center) serve them. Prints one JSON line:
the time from "contact queued" to "assigned" (server side: each contact's assigned_at -
queued_at) as p50/p99/max over all contacts and the worst center's p99, how many
contacts stayed unassigned, the dispatchers' connections to Redis, and the error lines
in their logs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from acd import Center, connect
from acd.commands import command
from lab.bench.runs import percentile

REPO = Path(__file__).resolve().parents[2]


async def run(args: argparse.Namespace, url: str) -> int:
    redis = connect(url)
    prefix = f"many{os.getpid()}"
    centers = [Center(redis, f"{prefix}-{i:05d}") for i in range(args.centers)]
    for first in range(0, len(centers), 200):
        await asyncio.gather(*(c.create_agent("a", "One", "Agent", ["en"], available=True)
                               for c in centers[first:first + 200]))
    logs = Path(tempfile.mkdtemp(prefix="acd-centers-"))
    env = {**os.environ, "PYTHONPATH": str(REPO), "REDIS_URL": url}
    procs = [subprocess.Popen(
        [sys.executable, "-m", "acd.dispatcher", "--redis-url", url, "--log-level", "INFO"],
        stdout=open(logs / f"d{i}.log", "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
        stdin=subprocess.DEVNULL, cwd=REPO, env=env, start_new_session=True)
        for i in range(args.dispatchers)]
    posted: dict[str, Center] = {}
    try:
        await asyncio.sleep(3)  # the dispatchers find every center
        start = time.perf_counter()
        total = int(args.rate * args.seconds)
        for n in range(total):
            delay = start + n / args.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            center = centers[n % len(centers)]
            posted[(await center.create_contact(["en"])).id] = center
            if n % 50 == 0:  # free agents whose contact was assigned
                await complete_assigned(posted)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and await complete_assigned(posted):
            await asyncio.sleep(0.2)
        clients = await cast(Any, redis).client_list()
        connections = sum(1 for c in clients if str(c.get("name", "")).startswith(
            "acd-dispatcher"))
        waits, per_center, unassigned = await collect(posted)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
    errors = sum(len(re.findall(r" (WARNING|ERROR) ", f.read_text(errors="replace")))
                 for f in logs.glob("*.log"))
    worst = max((percentile(w, 99) or 0 for w in per_center.values()), default=None)
    print(json.dumps({
        "measure": "many_centers", "centers": args.centers, "dispatchers": args.dispatchers,
        "rate": args.rate, "contacts": len(posted), "unassigned": unassigned,
        "p50_ms": percentile(waits, 50), "p99_ms": percentile(waits, 99),
        "max_ms": max(waits, default=None), "worst_center_p99_ms": worst,
        "dispatcher_connections": connections, "dispatcher_log_warnings": errors,
        "logs": str(logs)}), flush=True)
    for first in range(0, len(centers), 200):
        await asyncio.gather(*(c.delete() for c in centers[first:first + 200]))
    await redis.aclose()
    return 1 if unassigned else 0


async def complete_assigned(posted: dict[str, Center]) -> int:
    """Complete every assigned contact not completed yet; returns how many still wait."""
    waiting = 0
    by_center: dict[Center, list[str]] = defaultdict(list)
    for cid, center in posted.items():
        by_center[center].append(cid)
    for center, ids in by_center.items():
        raw = await command(center.redis, "JSON.MGET", *[center.keys.contact(i) for i in ids],
                            "$.state")
        for cid, state in zip(ids, raw, strict=True):
            value = json.loads(state)[0] if state else None
            if value == "assigned":
                await center.complete_contact(cid)
            elif value == "queued":
                waiting += 1
    return waiting


async def collect(posted: dict[str, Center]
                  ) -> tuple[list[float], dict[str, list[float]], int]:
    waits: list[float] = []
    per_center: dict[str, list[float]] = defaultdict(list)
    unassigned = 0
    for cid, center in posted.items():
        contact = await center.get_contact(cid)
        if contact.assigned_at is None:
            unassigned += 1
            continue
        wait = float(contact.assigned_at - contact.queued_at)
        waits.append(wait)
        per_center[center.name].append(wait)
    return waits, per_center, unassigned


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.bench.centers", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--redis-url", help="use this Redis (default: a throw-away embedded one)")
    p.add_argument("--centers", type=int, default=2000)
    p.add_argument("--rate", type=float, default=200.0, help="contacts per second, in all")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--dispatchers", type=int, default=2)
    args = p.parse_args(argv)
    if args.redis_url:
        return asyncio.run(run(args, args.redis_url))
    from lab.embedded import throwaway_redis

    with throwaway_redis("centers-redis") as url:
        return asyncio.run(run(args, url))


if __name__ == "__main__":
    sys.exit(main())
