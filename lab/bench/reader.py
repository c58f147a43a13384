"""A bystander's reads, timed in a process of its own (``python -m lab.bench.reader``):
the benchmark's own event loop, busy posting and completing, would add its delays to
the figure. JSON.GET of one key every ``--every-ms`` for ``--seconds``; prints one JSON
line with the count and p50/p99/max in ms."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any, cast

import redis


def percentile(ordered: Sequence[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5))) - 1]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.bench.reader", description=__doc__)
    p.add_argument("url")
    p.add_argument("key", help="a RedisJSON document to read")
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--every-ms", type=float, default=2.0)
    args = p.parse_args(argv)
    client = cast(Any, redis.Redis.from_url(args.url, socket_timeout=5,
                                            socket_connect_timeout=2))
    if client.execute_command("JSON.GET", args.key, "$") is None:
        p.error(f"{args.key}: no such document")
    times: list[float] = []
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        t0 = time.perf_counter()
        client.execute_command("JSON.GET", args.key, "$")
        times.append((time.perf_counter() - t0) * 1000)
        time.sleep(args.every_ms / 1000)
    times.sort()
    print(json.dumps({"reads": len(times), "p50_ms": round(percentile(times, 50) or 0, 3),
                      "p99_ms": round(percentile(times, 99) or 0, 3),
                      "max_ms": round(times[-1], 3) if times else None}), flush=True)
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
