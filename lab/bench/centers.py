"""Benchmark: many centers with work, served by the real dispatcher processes.

    python -m lab.bench.centers                    # 2,000 centers, throw-away embedded Redis
    python -m lab.bench.centers --centers 500 --rate 100 --seconds 20

``--centers`` centers get one available agent each; contacts arrive at ``--rate`` per
second, each in the next center in turn (so a center's contacts arrive ``--centers`` /
``--rate`` seconds apart, long after the previous one was completed: each contact is
servable the moment it is queued), and each is completed as soon as it is seen assigned.
``--dispatchers`` processes of ``python -m acd.dispatcher`` (every registered center)
serve them; the contacts start once every dispatcher has given every center its first
round and waits for news.

Prints one JSON line: the time from "queued" (servable) to "assigned", server side (each
contact's assigned_at - queued_at), as p50/p99/max over all contacts, the worst
center's p99 (over its ``--seconds`` x ``--rate`` / ``--centers`` contacts) and the
median center's; how many stayed unassigned; the longest function call (SLOWLOG) and the
server time of the dispatchers' XREAD; the dispatchers' connections to Redis and the
warning lines in their logs.
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

from redis.asyncio import Redis

from acd import Center, connect
from acd.commands import command
from lab.bench.dispatchers import xread_clients
from lab.bench.profile import commandstats, longest_calls
from lab.bench.runs import percentile
from lab.embedded import run_on_redis

REPO = Path(__file__).resolve().parents[2]
MIN_SPACING_S = 1.0  # a center's contacts closer than this could find its agent busy
MGET_CHUNK = 500


async def contact_docs(redis: Redis, keys: Sequence[str]) -> list[dict[str, Any] | None]:
    """The contacts' documents (None for a missing one), in MGET chunks."""
    out: list[dict[str, Any] | None] = []
    for first in range(0, len(keys), MGET_CHUNK):
        raw = await command(redis, "JSON.MGET", *keys[first:first + MGET_CHUNK], "$")
        out += [json.loads(r)[0] if r else None for r in raw]
    return out


class Load:
    """The load generator: posts on time in one task, completes in another, so neither
    waits for the other (a completer sweep used to hold the poster back, which then sent
    a burst)."""

    def __init__(self, centers: list[Center], rate: float, seconds: float) -> None:
        self.centers, self.rate, self.seconds = centers, rate, seconds
        self.posted: dict[str, Center] = {}  # contact key -> its center
        self.pending: dict[str, Center] = {}  # posted, not completed yet
        self.late_posts = 0  # posts sent more than 10 ms behind the schedule
        self.post_seconds = 0.0
        self._posting = True

    async def post(self, in_flight: int = 64) -> None:
        """Each contact on its schedule, not after the previous one's answer: a slow
        answer does not delay the next post (up to ``in_flight`` at once)."""
        gate = asyncio.Semaphore(in_flight)

        async def one(center: Center) -> None:
            async with gate:
                key = center.keys.contact((await center.create_contact(["en"])).id)
            self.posted[key] = self.pending[key] = center

        sends: list[asyncio.Task[None]] = []
        start = time.perf_counter()
        for n in range(int(self.rate * self.seconds)):
            delay = start + n / self.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.01:
                self.late_posts += 1
            sends.append(asyncio.create_task(one(self.centers[n % len(self.centers)])))
        await asyncio.gather(*sends)
        self.post_seconds = time.perf_counter() - start
        self._posting = False

    async def complete(self, redis: Redis, linger_s: float = 10.0) -> None:
        """Every 20 ms, complete the contacts seen assigned; after posting, until none
        waits or ``linger_s`` passed."""
        deadline = float("inf")
        while (self.pending and time.monotonic() < deadline) or self._posting:
            if not self._posting and deadline == float("inf"):
                deadline = time.monotonic() + linger_s
            keys = list(self.pending)
            docs = await contact_docs(redis, keys)
            done = [(k, d) for k, d in zip(keys, docs, strict=True)
                    if d is None or d["state"] != "queued"]
            # The id is in the key only (acd/lua/08_contacts.lua's contact_json says why).
            await asyncio.gather(*(self.pending[k].complete_contact(k.rpartition(":")[2])
                                   for k, d in done if d and d["state"] == "assigned"))
            for k, _ in done:
                del self.pending[k]
            await asyncio.sleep(0.02)


async def run(args: argparse.Namespace, url: str) -> int:
    redis = connect(url)
    prefix = f"many{os.getpid()}"
    centers = [Center(redis, f"{prefix}-{i:05d}") for i in range(args.centers)]
    for first in range(0, len(centers), 200):
        await asyncio.gather(*(c.create_agent("a", "One", "Agent", ["en"], available=True)
                               for c in centers[first:first + 200]))
    logs = Path(tempfile.mkdtemp(prefix="acd-centers-"))
    env = {**os.environ, "PYTHONPATH": str(REPO), "REDIS_URL": url}
    blocked_before = await xread_clients(redis)
    procs = [subprocess.Popen(
        [sys.executable, "-m", "acd.dispatcher", "--redis-url", url, "--log-level", "INFO"],
        stdout=open(logs / f"d{i}.log", "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
        stdin=subprocess.DEVNULL, cwd=REPO, env=env, start_new_session=True)
        for i in range(args.dispatchers)]
    load = Load(centers, args.rate, args.seconds)
    try:
        await settled(redis, procs, blocked_before, logs)
        async with longest_calls(redis) as longest:
            xread0 = (await commandstats(redis)).get("xread", (0, 0.0))
            await asyncio.gather(load.post(), load.complete(redis))
            xread1 = (await commandstats(redis)).get("xread", (0, 0.0))
        clients = await cast(Any, redis).client_list()
        connections = sum(1 for c in clients if str(c.get("name", "")).startswith(
            "acd-dispatcher"))
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
    docs = await contact_docs(redis, list(load.posted))
    waits: list[float] = []
    per_center: dict[str, list[float]] = defaultdict(list)
    for doc, center in zip(docs, load.posted.values(), strict=True):
        if doc and doc.get("assigned_at") is not None:
            waits.append(float(doc["assigned_at"] - doc["queued_at"]))
            per_center[center.name].append(waits[-1])
    warnings = sum(len(re.findall(r" (WARNING|ERROR) ", f.read_text(errors="replace")))
                   for f in logs.glob("*.log"))
    center_p99 = {name: percentile(w, 99) or 0.0 for name, w in per_center.items()}
    worst = max(center_p99, key=lambda n: center_p99[n], default=None)
    xread_calls = xread1[0] - xread0[0]
    print(json.dumps({
        "measure": "many_centers", "centers": args.centers, "dispatchers": args.dispatchers,
        "rate": args.rate, "seconds": args.seconds, "contacts": len(load.posted),
        "contacts_per_center": round(len(load.posted) / max(1, args.centers), 1),
        "unassigned": len(load.posted) - len(waits), "late_posts": load.late_posts,
        "achieved_rate": round(len(load.posted) / max(1e-9, load.post_seconds), 1),
        "p50_ms": percentile(waits, 50), "p99_ms": percentile(waits, 99),
        "max_ms": max(waits, default=None),
        "worst_center_p99_ms": center_p99[worst] if worst else None, "worst_center": worst,
        "median_center_p99_ms": percentile(list(center_p99.values()), 50),
        **longest.as_dict(),
        "xread_calls": xread_calls,
        "xread_server_us_per_call": round((xread1[1] - xread0[1]) / max(1, xread_calls)),
        "dispatcher_connections": connections, "dispatcher_log_warnings": warnings,
        "logs": str(logs)}), flush=True)
    for first in range(0, len(centers), 200):
        await asyncio.gather(*(c.wipe() for c in centers[first:first + 200]))
    await redis.aclose()
    return 1 if len(waits) < len(load.posted) else 0


async def settled(redis: Redis, procs: Sequence[subprocess.Popen[bytes]], blocked_before: int,
                  logs: Path, timeout_s: float = 120.0) -> None:
    """Until every dispatcher has served every center once and blocks waiting for news:
    the first pass (a round for each center) is not what is measured."""
    deadline = time.monotonic() + timeout_s
    while await xread_clients(redis) - blocked_before < len(procs):
        if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
            raise RuntimeError(f"the dispatchers did not settle; see {logs}")
        await asyncio.sleep(0.1)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.bench.centers", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--redis-url", help="use this Redis (default: a throw-away embedded one)")
    p.add_argument("--centers", type=int, default=2000)
    p.add_argument("--rate", type=float, default=200.0, help="contacts per second, in all")
    p.add_argument("--seconds", type=float, default=50.0,
                   help="length of the flow (default: %(default)s: 5 contacts per center)")
    p.add_argument("--dispatchers", type=int, default=2)
    args = p.parse_args(argv)
    if min(args.centers, args.rate, args.seconds, args.dispatchers) <= 0:
        p.error("--centers, --rate, --seconds and --dispatchers must be positive")
    if args.centers / args.rate < MIN_SPACING_S:
        p.error(f"--centers / --rate is {args.centers / args.rate:.2f} s: a center's next "
                f"contact could arrive before its agent is free (at least {MIN_SPACING_S} s)")
    return run_on_redis(args.redis_url, "centers-redis", lambda url: run(args, url))


if __name__ == "__main__":
    sys.exit(main())
