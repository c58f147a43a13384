"""``python -m lab.bench``: the naive and the real dispatcher on one Redis, in one run.

Prints one JSON line per configuration, then a ``ratios`` line. Targets are ratios
measured in the same run, because absolute figures on a shared 2-core machine move with
the neighbours' load.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from acd.center import DEFAULT_BATCH
from acd.connection import connect
from lab.bench import profile as prof
from lab.bench.runs import (
    api_available,
    api_path,
    dumps,
    multi_dispatchers,
    naive_throughput,
    offered_latency,
    percentile,
    prepare,
    real_throughput,
)
from lab.bench.workload import Workload
from lab.embedded import on_redis

FULL_AGENTS = [1000, 2000, 5000, 10000]
SHORT_AGENTS = [1000, 10000]
PRIMARY_BATCH = DEFAULT_BATCH  # the dispatcher's default; the ratios use it


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m lab.bench",
        description="Naive vs real dispatcher: throughput, latency, memory, several "
                    "dispatchers, one JSON line per configuration.")
    p.add_argument("--redis-url", help="use this Redis (default: start an embedded one)")
    p.add_argument("--short", action="store_true",
                   help="CI mode, well under a minute: fewer points, shorter runs")
    p.add_argument("--agents", type=int, nargs="+", help="agent counts (default: "
                   f"{FULL_AGENTS}, short {SHORT_AGENTS})")
    p.add_argument("--contacts", type=int, default=None,
                   help="most pre-queued contacts per run; a run queues min(this, 0.6 x "
                        "agents) (default 2000, short 1000)")
    p.add_argument("--naive-contacts", type=int, default=None,
                   help="most contacts the naive dispatcher handles (a prefix of the same "
                        "workload; default: all, short 300)")
    p.add_argument("--batches", type=int, nargs="+", default=None,
                   help="acd_dispatch batch sizes to try (default 1 20 50 200 1000, short 50)")
    p.add_argument("--skills", type=int, default=20)
    p.add_argument("--agent-skills", type=int, default=8, help="skills of each agent")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rate", type=float, default=1000.0, help="offered contacts/s")
    p.add_argument("--latency-seconds", type=float, default=None,
                   help="length of each offered-rate run (default 5, short 1.5)")
    p.add_argument("--handle-ms", type=float, default=100.0,
                   help="how long after its assignment a contact is completed")
    p.add_argument("--latency-agents", type=int, nargs="+", default=None,
                   help="agent counts for the latency runs (default 1000 10000, short 1000)")
    p.add_argument("--dispatchers", type=int, nargs="+", default=None,
                   help="dispatcher process counts (default 1 2 3, short 1 2)")
    p.add_argument("--multi-agents", type=int, default=None,
                   help="agents for the multi-dispatcher runs (default 10000, short 1000)")
    p.add_argument("--api", choices=["auto", "yes", "no"], default="auto",
                   help="measure POST /v1/centers/{c}/contacts -> assignment (auto: when "
                        "acd/api exists and not --short)")
    p.add_argument("--repeat", type=int, default=None,
                   help="runs of each real/multi configuration; the median is reported "
                        "(default 3, short 2)")
    p.add_argument("--profile", action="store_true",
                   help="also cProfile the Python side (Redis commandstats are always on)")
    p.add_argument("--plot", type=Path, help="write the scaling curves to this HTML file")
    p.add_argument("--log-dir", type=Path, help="dispatcher/API logs (default: a temp dir)")
    return p.parse_args(argv)


def _defaults(args: argparse.Namespace) -> argparse.Namespace:
    short = args.short
    args.agents = args.agents or (SHORT_AGENTS if short else FULL_AGENTS)
    args.contacts = args.contacts or (1000 if short else 2000)
    args.naive_contacts = args.naive_contacts or (300 if short else args.contacts)
    full_batches = sorted({1, 20, PRIMARY_BATCH, 200, 1000})
    args.batches = args.batches or ([PRIMARY_BATCH] if short else full_batches)
    args.latency_seconds = args.latency_seconds or (1.5 if short else 5.0)
    args.latency_agents = args.latency_agents or ([1000] if short else [1000, 10000])
    args.dispatchers = args.dispatchers or ([1, 2] if short else [1, 2, 3])
    args.multi_agents = args.multi_agents or (1000 if short else 10000)
    args.repeat = args.repeat or (2 if short else 3)
    return args


def contacts_for(agents: int, cap: int) -> int:
    """Fewer contacts than agents so every contact finds one with the contacts queued in
    advance: 600 at 1,000 agents and 2,000 at 10,000, as in the original demo's runs."""
    return max(1, min(cap, int(agents * 0.6)))


async def throughput_runs(redis: Redis, args: argparse.Namespace,
                          emit: Callable[[dict[str, Any]], None]) -> None:
    for agents in args.agents:
        workload = Workload.generate(agents, contacts_for(agents, args.contacts), args.skills,
                                     args.agent_skills, seed=args.seed)
        base = {"kind": "throughput", **workload.describe(), "dispatchers": 1}
        naive_specs = workload.contact_specs[:args.naive_contacts]
        setup = await prepare(redis, workload, "naive", contacts=naive_specs)
        try:
            naive = await naive_throughput(setup.center, naive_specs)
        finally:
            await setup.center.wipe()
        assert naive.stats is not None
        rows = prof.per_assignment(*naive.stats, naive.assigned)
        emit({**base, "dispatcher": "naive", "batch": None, "contacts": len(naive_specs),
              "assignments": naive.assigned, "seconds": round(naive.seconds, 4),
              "assignments_per_s": round(naive.rate, 1),
              "us_per_assignment": _r(naive.us_per_assignment),
              "p50_ms": None, "p99_ms": None,
              "memory_per_agent_bytes": round(setup.memory_per_agent),
              "memory_per_queued_contact_bytes": round(setup.memory_per_contact),
              "correct": naive.check.ok, "check": naive.check.as_dict(),
              "redis_per_assignment": dict(list(rows.items())[:8])})
        for batch in args.batches:
            runs = [await _real_once(redis, workload, batch, base)
                    for _ in range(args.repeat)]
            emit(_median(runs))
        if args.profile and agents in (min(args.agents), max(args.agents)):
            await profile_runs(redis, workload, naive_specs, emit)


async def profile_runs(redis: Redis, workload: Workload,
                       naive_specs: Sequence[tuple[str, list[str]]],
                       emit: Callable[[dict[str, Any]], None]) -> None:
    """cProfile of the Python side, in runs of their own: the profiler's overhead would
    distort the measured runs (it slows the Python-heavy naive loop three-fold)."""
    for name in ("naive", "real"):
        specs = naive_specs if name == "naive" else workload.contact_specs
        setup = await prepare(redis, workload, f"prof-{name}", contacts=specs)
        try:
            if name == "naive":
                res, rows = await prof.cprofiled(
                    functools.partial(naive_throughput, setup.center, specs))
            else:
                res, rows = await prof.cprofiled(
                    functools.partial(real_throughput, setup.center, specs, PRIMARY_BATCH))
        finally:
            await setup.center.wipe()
        emit({"kind": "profile", "dispatcher": name, "agents": workload.agents,
              "batch": PRIMARY_BATCH if name == "real" else None,
              "assignments": res.assigned,
              "profiled_us_per_assignment": _r(res.us_per_assignment),
              "python_top_own_time": rows})


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median rate, listing every run's rate (noisy neighbours)."""
    ordered = sorted(runs, key=lambda r: r["assignments_per_s"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["runs_per_s"] = [r["assignments_per_s"] for r in runs]
    chosen["correct"] = all(r["correct"] for r in runs)
    return chosen


async def _real_once(redis: Redis, workload: Workload, batch: int,
                     base: dict[str, Any]) -> dict[str, Any]:
    setup = await prepare(redis, workload, f"real{batch}")
    try:
        mark = await prof.slowlog_last_id(redis)
        real = await real_throughput(setup.center, workload.contact_specs, batch)
        slowest = await prof.slowlog_max_us(redis, mark)
    finally:
        await setup.center.wipe()
    assert real.stats is not None
    rows = prof.per_assignment(*real.stats, real.assigned)
    return {**base, "dispatcher": "real", "batch": batch,
            "assignments": real.assigned, "seconds": round(real.seconds, 4),
            "fcalls": real.calls, "assignments_per_s": round(real.rate, 1),
            "us_per_assignment": _r(real.us_per_assignment),
            "server_us_per_assignment": rows.get("fcall", {}).get("us"),
            "lua_glue_us_per_assignment": prof.lua_overhead(rows),
            "longest_fcall_us_in_slowlog": slowest,
            "p50_ms": None, "p99_ms": None,
            "memory_per_agent_bytes": round(setup.memory_per_agent),
            "memory_per_queued_contact_bytes": round(setup.memory_per_contact),
            "correct": real.check.ok and real.assigned == workload.contacts,
            "check": real.check.as_dict(),
            "redis_per_assignment": dict(list(rows.items())[:12])}


async def latency_runs(redis: Redis, url: str, args: argparse.Namespace, log_dir: Path,
                       emit: Callable[[dict[str, Any]], None]) -> None:
    for agents in args.latency_agents:
        n = int(args.rate * args.latency_seconds)
        workload = Workload.generate(agents, n, args.skills, args.agent_skills,
                                     seed=args.seed + 1)
        lat = await offered_latency(redis, url, workload, args.rate, args.latency_seconds,
                                    args.handle_ms, log_dir)
        emit({"kind": "latency", "dispatcher": "real", **workload.describe(),
              "contacts": lat.sent, "dispatchers": 1, "batch": PRIMARY_BATCH,
              "offered_per_s": args.rate, "achieved_offer_per_s": round(lat.achieved_rate, 1),
              "handle_ms": args.handle_ms, "assigned": lat.assigned,
              "p50_ms": _r(percentile(lat.client_ms, 50), 3),
              "p99_ms": _r(percentile(lat.client_ms, 99), 3),
              "max_ms": _r(max(lat.client_ms, default=0.0), 3),
              "server_clock_p50_ms": percentile(lat.server_ms, 50),
              "server_clock_p99_ms": percentile(lat.server_ms, 99),
              "correct": lat.check.ok and lat.assigned == lat.sent,
              "check": lat.check.as_dict()})


async def multi_runs(redis: Redis, url: str, args: argparse.Namespace, log_dir: Path,
                     emit: Callable[[dict[str, Any]], None]) -> None:
    agents = args.multi_agents
    workload = Workload.generate(agents, contacts_for(agents, args.contacts), args.skills,
                                 args.agent_skills, seed=args.seed + 2)
    for count in args.dispatchers:
        runs = []
        for _ in range(args.repeat):
            runs.append(await _multi_once(redis, url, workload, count, log_dir))
        emit(_median(runs))


async def _multi_once(redis: Redis, url: str, workload: Workload, count: int,
                      log_dir: Path) -> dict[str, Any]:
    res = await multi_dispatchers(redis, url, workload, count, log_dir, PRIMARY_BATCH)
    return {"kind": "multi", "dispatcher": "real", **workload.describe(),
            "dispatchers": count, "batch": PRIMARY_BATCH, "assigned": res.assigned,
            "seconds": round(res.seconds, 4), "assignments_per_s": round(res.rate, 1),
            "per_process": res.per_process,
            "correct": res.check.ok and res.assigned == workload.contacts,
            "check": res.check.as_dict()}


async def api_runs(redis: Redis, url: str, args: argparse.Namespace, log_dir: Path,
                   emit: Callable[[dict[str, Any]], None]) -> None:
    if args.api == "no" or (args.api == "auto" and (args.short or not api_available())):
        return
    if not api_available():
        emit({"kind": "api", "skipped": "acd/api/app.py not found"})
        return
    workload = Workload.generate(10000, 2000, args.skills, args.agent_skills,
                                 seed=args.seed + 3)
    for concurrency in (1, 16):
        try:
            res = await api_path(redis, url, workload, 2000 if concurrency > 1 else 500,
                                 concurrency, log_dir)
        except Exception as exc:  # noqa: BLE001 - the colleague's API may be mid-change
            emit({"kind": "api", "concurrency": concurrency, "error": repr(exc)[:300]})
            continue
        emit({"kind": "api", "dispatcher": "real", **workload.describe(),
              "contacts": res.posted, "concurrency": concurrency, "dispatchers": 1,
              "api_workers": 1, "posted_per_s": round(res.post_rate, 1),
              "assigned": res.assigned,
              "contacts_in_to_assigned_per_s": round(res.assign_rate, 1)})


def ratios(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The targets, as ratios from this run (the dispatcher's default batch for the real one)."""
    tp = [r for r in records if r["kind"] == "throughput"]
    naive = {r["agents"]: r for r in tp if r["dispatcher"] == "naive"}
    real = {r["agents"]: r for r in tp if r["dispatcher"] == "real"
            and r["batch"] == PRIMARY_BATCH}
    best = {a: max((r for r in tp if r["dispatcher"] == "real" and r["agents"] == a),
                   key=lambda r: r["assignments_per_s"]) for a in real}
    out: dict[str, Any] = {"kind": "ratios", "batch": PRIMARY_BATCH}
    out["real_vs_naive"] = {
        str(a): round(real[a]["assignments_per_s"] / naive[a]["assignments_per_s"], 1)
        for a in sorted(real) if a in naive and naive[a]["assignments_per_s"]}
    out["best_batch"] = {str(a): best[a]["batch"] for a in sorted(best)}
    lo, hi = min(real, default=None), max(real, default=None)
    if lo is not None and hi is not None and lo != hi:
        out["cost_ratio"] = {
            "agents": [lo, hi],
            "wall_us": [real[lo]["us_per_assignment"], real[hi]["us_per_assignment"]],
            "wall_ratio": _r(real[hi]["us_per_assignment"] / real[lo]["us_per_assignment"], 2),
            "server_us": [real[lo]["server_us_per_assignment"],
                          real[hi]["server_us_per_assignment"]],
            "server_ratio": _r(_div(real[hi]["server_us_per_assignment"],
                                    real[lo]["server_us_per_assignment"]), 2)}
    lat = [r for r in records if r["kind"] == "latency"]
    out["p99_ms_at_offered"] = {str(r["agents"]): r["p99_ms"] for r in lat}
    mem = [r for r in tp if r["dispatcher"] == "real"]
    if mem:
        out["memory_per_queued_contact_bytes"] = max(
            r["memory_per_queued_contact_bytes"] for r in mem)
        out["memory_per_agent_bytes"] = {
            str(a): real[a]["memory_per_agent_bytes"] for a in sorted(real)}
    multi = [r for r in records if r["kind"] == "multi"]
    if multi:
        one = next((r for r in multi if r["dispatchers"] == 1), multi[0])
        out["multi_vs_one"] = {str(r["dispatchers"]): _r(_div(
            r["assignments_per_s"], one["assignments_per_s"]), 2) for r in multi}
    out["all_correct"] = all(r.get("correct", True) for r in records)
    targets = {"real_vs_naive_1000": 25, "real_vs_naive_10000": 100, "cost_ratio_max": 1.5,
               "assignments_per_s_10000": 20000, "p99_ms": 2.0, "bytes_per_contact": 1024}
    out["targets"] = targets
    return out


def _div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


async def run(args: argparse.Namespace, url: str,
              emit: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Every configuration against the Redis at ``url``; returns the records emitted."""
    args = _defaults(args)
    records: list[dict[str, Any]] = []

    def record(r: dict[str, Any]) -> None:
        records.append(r)
        (emit or _print)(r)

    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="acd-bench-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    redis = connect(url, client_name="acd-bench")
    try:
        async with prof.longest_calls(redis) as longest:
            await throughput_runs(redis, args, record)
            await latency_runs(redis, url, args, log_dir, record)
            await multi_runs(redis, url, args, log_dir, record)
            await api_runs(redis, url, args, log_dir, record)
        default_batch = [r.get("longest_fcall_us_in_slowlog") for r in records
                         if r.get("batch") == PRIMARY_BATCH and r["kind"] == "throughput"]
        record({"kind": "longest_call", "workloads": "all of this run",
                **longest.as_dict(),
                "default_batch": PRIMARY_BATCH, "longest_fcall_us_default_batch": max(
                    (us for us in default_batch if us is not None), default=None)})
    finally:
        await redis.aclose()
    record(ratios(records))
    if args.plot:
        files = await asyncio.to_thread(_plot, records, args.plot)  # Playwright sync API
        record({"kind": "plot", "files": [str(f) for f in files]})
    return records


def _plot(records: Sequence[dict[str, Any]], path: Path) -> list[Path]:
    from lab.bench.plot import draw

    return draw(records, path)


def _print(record: dict[str, Any]) -> None:
    print(dumps(record), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    # SIGTERM unwinds like Ctrl-C, so the embedded Redis below is stopped, not orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    records = on_redis(args.redis_url, "bench-redis", lambda url: asyncio.run(run(args, url)))
    print(f"# {len(records)} records in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0 if all(r.get("correct", True) for r in records) else 1
