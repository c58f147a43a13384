"""Where the time goes: Redis-side command counts (INFO commandstats deltas, SLOWLOG) and
the Python side (cProfile).

INFO commandstats counts the commands a function runs with redis.call as well as the
FCALL itself, so the delta over a run shows what one assignment costs inside the Lua:
how many calls of each command, and their microseconds. FCALL time minus the inner
commands' time is the Lua interpreter and the redis.call round trips inside the server.
"""

from __future__ import annotations

import cProfile
import io
import pstats
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from redis.asyncio import Redis

from acd.commands import command

T = TypeVar("T")

IGNORED = {"info", "slowlog", "config", "client", "hgetall", "json.mget", "ping", "hello"}


Stats = dict[str, tuple[int, float]]  # command -> (calls, µs) since the last reset


async def commandstats(redis: Redis) -> Stats:
    info = await redis.info("commandstats")
    out: Stats = {}
    for key, value in info.items():
        name = str(key).removeprefix("cmdstat_")
        out[name] = (int(value["calls"]), float(value["usec"]))
    return out


def per_assignment(before: dict[str, tuple[int, float]], after: dict[str, tuple[int, float]],
                   assignments: int) -> dict[str, dict[str, float]]:
    """{command: {"calls": per assignment, "us": per assignment}}, biggest time first."""
    rows: dict[str, dict[str, float]] = {}
    n = max(1, assignments)
    for name, (calls, usec) in after.items():
        c0, u0 = before.get(name, (0, 0.0))
        if calls - c0 <= 0 or name in IGNORED:
            continue
        rows[name] = {"calls": round((calls - c0) / n, 2), "us": round((usec - u0) / n, 2)}
    return dict(sorted(rows.items(), key=lambda kv: -kv[1]["us"]))


def lua_overhead(rows: dict[str, dict[str, float]]) -> float | None:
    """FCALL microseconds not spent in the commands it calls (per assignment)."""
    if "fcall" not in rows:
        return None
    inner = sum(v["us"] for k, v in rows.items() if k not in ("fcall", "bzpopmin"))
    return round(rows["fcall"]["us"] - inner, 2)


async def slowlog_last_id(redis: Redis) -> int:
    """The id of the newest SLOWLOG entry (-1 for none): slowlog_max_us after it."""
    newest = await command(redis, "SLOWLOG", "GET", "1")
    return int(newest[0][0]) if newest else -1


async def slowlog_max_us(redis: Redis, after_id: int = -1, name: str = "fcall"
                         ) -> int | None:
    """Longest ``name`` command in the slow log after the entry ``after_id`` (only what
    crossed the server's threshold)."""
    entries = await command(redis, "SLOWLOG", "GET", "-1")
    durations = [int(e[2]) for e in entries
                 if int(e[0]) > after_id and str(e[3][0]).lower() == name]
    return max(durations) if durations else None


async def cprofiled(work: Callable[[], Awaitable[T]], top: int = 8
                    ) -> tuple[T, list[dict[str, Any]]]:
    """Run ``work`` under cProfile; the ``top`` functions by own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        result = await work()
    finally:
        profiler.disable()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    total = max(1e-9, sum(v[2] for v in stats.stats.values()))  # type: ignore[attr-defined]
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])  # type: ignore[attr-defined]
    out = []
    for (filename, line, func), (_, ncalls, tottime, cumtime, _) in rows[:top]:
        where = filename.rsplit("site-packages/", 1)[-1].rsplit("/work/main/", 1)[-1]
        out.append({"function": f"{where}:{line}({func})", "calls": ncalls,
                    "own_s": round(tottime, 4), "own_share": round(tottime / total, 3),
                    "cum_s": round(cumtime, 4)})
    return result, out


@dataclass
class LongestCalls:
    """The longest function call (FCALL) over a block, from the SLOWLOG and, as a check
    on it, INFO latencystats (every call, as a histogram: its p100 is the longest to
    about 1%)."""

    over_us: int  # the SLOWLOG's threshold during the block
    slow_calls: int = 0  # commands of any kind over it
    longest_fcall_us: int | None = None
    longest_fcall: str | None = None  # the command, its first arguments
    fcall_p100_us: float | None = None
    longest_fcall_at_s: int | None = None  # when, in seconds from the block's start
    # Redis's latency monitor over the block: each event's longest (ms), e.g. "command",
    # "fork", "aof-write": what stalled the server besides calls' own work.
    latency_events: dict[str, int] = field(default_factory=dict)
    # Function calls of 0.5 ms or more, by function: what a bystander's read may queue
    # behind (a read takes about 0.5 ms at p99 on an idle server).
    over_half_ms: dict[str, int] = field(default_factory=dict)
    longest_other: str | None = None  # the longest command of the ACD that is no FCALL

    def as_dict(self) -> dict[str, Any]:
        return {"slowlog_over_us": self.over_us, "slow_calls": self.slow_calls,
                "longest_fcall_us": self.longest_fcall_us,
                "longest_fcall": self.longest_fcall,
                "longest_fcall_at_s": self.longest_fcall_at_s,
                "fcall_p100_us": self.fcall_p100_us,
                "latency_events_ms": self.latency_events,
                "fcalls_over_half_ms": self.over_half_ms,
                "longest_other": self.longest_other}


SLOWLOG_MAX_LEN = 50_000  # entries kept; a few hundred bytes each
LATENCY_MONITOR_MS = 5


@asynccontextmanager
async def longest_calls(redis: Redis, over_us: int = 100) -> AsyncIterator[LongestCalls]:
    """SLOWLOG every call over ``over_us`` during the block (the server's settings are put
    back after it); the LongestCalls is filled in when the block ends. It resets the
    server's INFO statistics at the start (commandstats deltas inside the block still
    hold).

    Not 0 µs: every command would be logged and the log would keep only the newest
    ``SLOWLOG_MAX_LEN``, not the longest. A function call under ``over_us`` shows in
    ``fcall_p100_us``."""
    before = await cast(Any, redis).config_get("slowlog-*",
                                               "latency-tracking-info-percentiles",
                                               "latency-monitor-threshold")
    await command(redis, "CONFIG", "SET", "slowlog-log-slower-than", str(over_us),
                  "slowlog-max-len", str(SLOWLOG_MAX_LEN),
                  "latency-tracking-info-percentiles", "50 99 100",
                  "latency-monitor-threshold", str(LATENCY_MONITOR_MS))
    await command(redis, "SLOWLOG", "RESET")
    await command(redis, "LATENCY", "RESET")
    started = int((await command(redis, "TIME"))[0])
    await command(redis, "CONFIG", "RESETSTAT")
    found = LongestCalls(over_us)
    try:
        yield found
        # SLOWLOG GET entries: [id, unix time, duration µs, [command, args...], ...]
        entries = await command(redis, "SLOWLOG", "GET", "-1")
        found.slow_calls = len(entries)
        fcalls = [e for e in entries if str(e[3][0]).lower() == "fcall"]
        # (not the benchmark's own reads and settings: see IGNORED)
        others = [e for e in entries if str(e[3][0]).lower() not in {"fcall", *IGNORED}]
        if others:
            top = max(others, key=lambda e: int(e[2]))
            found.longest_other = f"{' '.join(str(a) for a in top[3][:3])}: {top[2]} µs"
        for entry in fcalls:
            if int(entry[2]) >= 500:
                name = str(entry[3][1])
                found.over_half_ms[name] = found.over_half_ms.get(name, 0) + 1
        if fcalls:
            top = max(fcalls, key=lambda e: int(e[2]))
            found.longest_fcall_us = int(top[2])
            found.longest_fcall = " ".join(str(a) for a in top[3][:6])
            found.longest_fcall_at_s = int(top[1]) - started
        # LATENCY LATEST rows: [event, unix time, latest ms, max ms]
        for row in await command(redis, "LATENCY", "LATEST"):
            found.latency_events[str(row[0])] = int(row[3])
        stats = await cast(Any, redis).info("latencystats")
        p100 = stats.get("latency_percentiles_usec_fcall", {}).get("p100")
        found.fcall_p100_us = None if p100 is None else float(p100)
    finally:
        await command(redis, "CONFIG", "SET", *(x for kv in before.items() for x in kv))
