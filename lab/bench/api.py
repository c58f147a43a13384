"""Benchmark: contacts created per second through the real API.

Starts ``uvicorn acd.api.app:app --workers 2`` (or uses ``--api-url``), then N concurrent
clients (each its own httpx.AsyncClient and keep-alive connection) POST
``/v1/centers/<bench center>/contacts`` until ``--count`` contacts exist; prints one JSON
line with the rate, latency percentiles and the machine, then ``--burst`` POSTs sent all at
once (each its own connection) with the statuses they got: a healthy Redis gives no 5xx.
The line also has the longest function call of the run (SLOWLOG; the server's SLOWLOG
settings are put back afterwards, its INFO statistics are reset). The center is deleted
afterwards. No dispatcher runs: this measures the API and the create function, not
assignment.

    python -m lab.bench.api                  # Redis from REDIS_URL / .env
    python -m lab.bench.api --embedded       # a throw-away embedded Redis
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import uuid
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from acd.api import apikeys
from acd.center import Center
from acd.connection import connect
from acd.settings import get_settings
from lab import apiserver
from lab.bench.posting import post_contacts
from lab.bench.profile import longest_calls
from lab.embedded import throwaway_redis

SKILLS = [["English", "Spanish"], ["Support", "Disputes", "Billing"]]


def random_skills(count: int, seed: int) -> list[list[str]]:
    """One language and one topic per contact, drawn with ``seed``."""
    rng = random.Random(seed)
    return [[rng.choice(SKILLS[0]), rng.choice(SKILLS[1])] for _ in range(count)]


async def run_clients(api_url: str, center: str, count: int, clients: int,
                      timeout_s: float, api_key: str, seed: int = 0) -> dict[str, Any]:
    """``clients`` concurrent clients create ``count`` contacts; returns the figures."""
    posted = await post_contacts(api_url, center, random_skills(count, seed), clients,
                                 timeout_s, api_key)
    return {"elapsed_s": round(posted.seconds, 3), "contacts_per_s": round(posted.rate, 1),
            "p50_ms": round(posted.percentile_ms(0.50), 2),
            "p99_ms": round(posted.percentile_ms(0.99), 2), "errors": posted.errors}


async def burst(api_url: str, center: str, requests: int, api_key: str) -> dict[str, Any]:
    """``requests`` POSTs at once, each on its own connection: their statuses, and how
    many were 5xx or got no answer at all."""
    limits = httpx.Limits(max_connections=requests, max_keepalive_connections=requests)
    async with httpx.AsyncClient(base_url=api_url, limits=limits, timeout=60.0,
                                 headers=apikeys.headers(api_key)) as http:
        answers = await asyncio.gather(*(
            http.post(f"/v1/centers/{center}/contacts", json={"skills": ["English"]})
            for _ in range(requests)), return_exceptions=True)
    statuses = Counter(str(a.status_code) if isinstance(a, httpx.Response)
                       else type(a).__name__ for a in answers)
    return {"requests": requests, "statuses": dict(statuses),
            "server_errors_5xx": sum(n for s, n in statuses.items() if s.startswith("5")),
            "no_answer": sum(n for s, n in statuses.items() if not s.isdigit())}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


async def amain(args: argparse.Namespace, api_url: str, redis_url: str) -> dict[str, Any]:
    center = f"bench-{uuid.uuid4().hex[:8]}"
    load_before = os.getloadavg()[0]
    redis = connect(redis_url)
    # The benchmark's own key, for its center only (as a workshop learner's), revoked after.
    key = await apikeys.create(redis, center, "lab.bench.api")
    try:
        async with longest_calls(redis) as longest:
            await run_clients(api_url, center, args.warmup, args.clients, args.timeout, key,
                              seed=1)
            figures = await run_clients(api_url, center, args.count, args.clients,
                                        args.timeout, key)
            async with httpx.AsyncClient(base_url=api_url, timeout=10.0,
                                         headers=apikeys.headers(key)) as http:
                offered = (await http.get(f"/v1/centers/{center}/stats")).json()["offered"]
            burst_figures = (await burst(api_url, center, args.burst, key) if args.burst
                             else None)
    finally:
        try:
            await apikeys.revoke(redis, key)
            await Center(redis, center).wipe()
        finally:
            await redis.aclose()
    return {
        "bench": "acd.api contacts created per second",
        "contacts_per_s": figures["contacts_per_s"],
        "count": args.count, "warmup": args.warmup, "clients": args.clients,
        "uvicorn_workers": args.workers, "offered_in_redis": offered,
        **{k: v for k, v in figures.items() if k != "contacts_per_s"},
        "burst": burst_figures, **longest.as_dict(),
        "machine": {"cores": os.cpu_count(), "cpu": _cpu_model(),
                    "loadavg_1m_before": round(load_before, 2),
                    "loadavg_1m_after": round(os.getloadavg()[0], 2),
                    "python": platform.python_version(), "os": platform.platform()},
        "note": "client, API workers and Redis share the machine",
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m lab.bench.api", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=5000, help="contacts to create (%(default)s)")
    p.add_argument("--warmup", type=int, default=300, help="contacts before timing")
    p.add_argument("--clients", type=int, default=32, help="concurrent clients")
    p.add_argument("--workers", type=int, default=2, help="uvicorn workers")
    p.add_argument("--burst", type=int, default=1000,
                   help="POSTs sent at once after the timed run (0: none)")
    p.add_argument("--timeout", type=float, default=300.0, help="deadline of a run, s")
    p.add_argument("--redis-url", default=None, help="default: REDIS_URL / .env")
    p.add_argument("--embedded", action="store_true",
                   help="start a throw-away embedded Redis instead")
    p.add_argument("--api-url", default=None,
                   help="benchmark a running API (on the same Redis) instead of starting one")
    args = p.parse_args(argv)
    if min(args.count, args.clients, args.workers) < 1 or min(args.warmup, args.burst) < 0:
        p.error("--count, --clients and --workers must be positive, --warmup and --burst "
                "not negative")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with ExitStack() as stack:
        own = throwaway_redis("bench-api", password="bench")
        redis_url = (stack.enter_context(own) if args.embedded
                     else args.redis_url or get_settings().redis_url)
        api_url = args.api_url or stack.enter_context(apiserver.running(
            {**os.environ, "REDIS_URL": redis_url}, workers=args.workers)).url
        result = asyncio.run(amain(args, api_url, redis_url))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
