"""Benchmark: RedisJSON's string table, the cause of the flood's one 20-30 ms call.

    python -m lab.bench.json_strings                 # throw-away embedded Redis, ~30 s
    python -m lab.bench.json_strings --documents 300000 --cases unique

RedisJSON 2.8 keeps one copy of every distinct string of all documents (keys and values)
in one hash set for the whole server (its ijson crate interns strings). The set grows by
doubling, all at once, when it is 7/8 full: the JSON.SET that adds its 57,345th,
114,689th, 229,377th... distinct string rehashes every string the server holds in that one
call; the set never shrinks back. A contact's id is such a string, one per contact (see
README, Performance: the flood's one 25 ms acd_contact_create).

Writes ``--documents`` small documents one key each (``{"id": ..., "state": "queued",
"n": i}``), pipelined, and prints one JSON line per case with the server's figures
(SLOWLOG over ``--over-ms``, INFO latencystats):
- ``unique``: each document's id a distinct 32-hex string (as a contact's);
- ``numbers``: the id a number, so no document adds a string;
- ``churn``: ``--documents`` unique ones stay; as many more are written while the
  oldest are deleted (contacts created and ended at a steady count);
- ``contacts``: ``--documents`` contacts queued by the ACD's own acd_contact_create
  (``--lua``: this worktree's acd/lua/ or a git revision's), over 10,000 combinations
  nobody can serve, as lab.bench.flood queues them; ``slow`` numbers the contacts.
``slow`` lists the 20 longest calls over ``--over-ms`` as [document number from 0, µs]
(``calls_over`` counts them all: on a busy VM, calls the scheduler paused); ``doublings``
the distinct-string counts at which the set doubles: the document that adds one string
more doubles it, and each document of ``unique`` adds one to the 4 all share ("id",
"state", "n", "queued"), so its spikes come at document number doubling - 4 (114,684 for
114,688), as long as rehashing the whole set takes (tens of ms at 114,688 strings).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any, cast

import redis

from acd.keys import Keys
from lab.bench.flood import realtime
from lab.bench.interleave import library
from lab.embedded import throwaway_redis

BATCH = 1000
CONTACT_COMBOS = 10_000  # as lab.bench.flood's default flood


def document(kind: str, i: int) -> str:
    ident = i if kind == "numbers" else json.dumps(uuid.uuid4().hex)
    return f'{{"id":{ident},"state":"queued","n":{i}}}'


def write(r: redis.Redis, kind: str, first: int, last: int, delete_from: int | None = None
          ) -> None:
    """JSON.SET documents first..last-1; with ``delete_from``, DEL as many from there."""
    for start in range(first, last, BATCH):
        pipe: Any = r.pipeline(transaction=False)
        for i in range(start, min(last, start + BATCH)):
            pipe.execute_command("JSON.SET", f"j:{i}", ".", document(kind, i))
            if delete_from is not None:
                pipe.delete(f"j:{delete_from + i - first}")
        pipe.execute()


def create_contacts(r: redis.Redis, first: int, last: int, combos: int) -> None:
    """acd_contact_create for contacts first..last-1, as the flood queues them: each
    needs a skill nobody has (one of ``combos``), so all stay queued and parked."""
    k = Keys("strings")
    for start in range(first, last, BATCH):
        pipe: Any = r.pipeline(transaction=False)
        for i in range(start, min(last, start + BATCH)):
            cid = f"{i:08d}{uuid.uuid4().hex[:24]}"  # 32 characters, as a contact's id
            skills = sorted([f"s{i % 24:02d}", f"nobody{i % combos}"])
            pipe.execute_command(
                "FCALL", "acd_contact_create", 5, k.contact(cid), k.queue, k.waiting_sigs,
                k.stats, k.meta, cid, json.dumps(skills), ",".join(skills), 0, 0)
        pipe.execute()


def latency_us(r: redis.Redis, command: str) -> dict[str, float]:
    stats: dict[str, Any] = r.info("latencystats")
    row = stats.get(f"latency_percentiles_usec_{command}", {})
    return {k: float(v) for k, v in row.items()}


def run_case(url: str, kind: str, documents: int, over_ms: float, lua_rev: str = "here"
             ) -> dict[str, Any]:
    r = redis.Redis.from_url(url, decode_responses=True)
    r.flushall()
    # A real-time priority (when root): on a busy VM the scheduler otherwise pauses Redis
    # mid-call for a time slice (4-8 ms), which no data structure causes.
    paused_never = realtime(int(r.info("server")["process_id"]))
    if kind == "contacts":
        cast(Any, r).execute_command("FUNCTION", "LOAD", "REPLACE", library(lua_rev))
    r.config_set("slowlog-log-slower-than", int(over_ms * 1000))
    r.config_set("slowlog-max-len", 10_000)
    r.config_set("latency-tracking-info-percentiles", "50 99 100")
    started = time.perf_counter()
    if kind == "churn":
        write(r, "unique", 0, documents)  # the steady state, not timed
        r.slowlog_reset()
        r.config_resetstat()
        write(r, "unique", documents, 2 * documents, delete_from=0)
    elif kind == "contacts":
        r.slowlog_reset()
        r.config_resetstat()
        create_contacts(r, 0, documents, CONTACT_COMBOS)
    else:
        r.slowlog_reset()
        r.config_resetstat()
        write(r, kind, 0, documents)
    seconds = time.perf_counter() - started
    entries = cast(Any, r).execute_command("SLOWLOG", "GET", "10000")
    if kind == "contacts":  # the contact's number: its id's first 8 digits
        slow = sorted((int(str(e[3][8])[:8]), int(e[2])) for e in entries
                      if str(e[3][0]).upper() == "FCALL")
        timed = "fcall"
    else:
        slow = sorted((int(args[1].split(":")[1]), int(e[2])) for e in entries
                      for args in [[str(a) for a in e[3]]] if args[0].upper() == "JSON.SET")
        timed = "json.set"
    stats = latency_us(r, timed)
    r.close()
    return {"case": kind, "documents": documents, "seconds": round(seconds, 1),
            "redis_realtime": paused_never, "load_average": round(os.getloadavg()[0], 1),
            **({"lua": lua_rev} if kind == "contacts" else {}),
            "over_ms": over_ms, "calls_over": len(slow),
            "longest_us": max((us for _, us in slow), default=None),
            f"{timed}_p50_us": stats.get("p50"), f"{timed}_p99_us": stats.get("p99"),
            f"{timed}_p100_us": stats.get("p100"),
            "slow": sorted(sorted(slow, key=lambda s: -s[1])[:20])}  # the 20 longest


def doublings(upto: int) -> list[int]:
    """hashbrown grows at 7/8 of its buckets (a power of two)."""
    out, buckets = [], 1 << 12
    while buckets * 7 // 8 <= upto:
        out.append(buckets * 7 // 8)
        buckets *= 2
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m lab.bench.json_strings", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--redis-url", help="use this Redis, FLUSHALL first (default: a "
                                       "throw-away embedded one, fresh for each case)")
    p.add_argument("--documents", type=int, default=250_000)
    p.add_argument("--cases", nargs="+", choices=["unique", "numbers", "churn", "contacts"],
                   default=["unique", "numbers", "churn", "contacts"])
    p.add_argument("--lua", default="here",
                   help="the contacts case's acd library: here (this worktree's) or a git "
                        "revision (e.g. 9f2a82f: contact documents that held their id)")
    p.add_argument("--over-ms", type=float, default=5.0,
                   help="SLOWLOG threshold (default: %(default)s, the target's)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    for kind in args.cases:
        if args.redis_url:
            record = run_case(args.redis_url, kind, args.documents, args.over_ms, args.lua)
        else:
            # A fresh server each time: the string set never shrinks back.
            with throwaway_redis("json-strings") as url:
                record = run_case(url, kind, args.documents, args.over_ms, args.lua)
        record["doublings"] = doublings(2 * args.documents)
        print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
