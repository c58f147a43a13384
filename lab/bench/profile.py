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
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import Redis

T = TypeVar("T")

IGNORED = {"info", "slowlog", "config", "client", "hgetall", "json.mget", "ping", "hello"}


async def commandstats(redis: Redis) -> dict[str, tuple[int, float]]:
    info = await redis.info("commandstats")
    out: dict[str, tuple[int, float]] = {}
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


async def slowlog_max_us(redis: Redis, command: str = "fcall") -> int | None:
    """Longest ``command`` in the slow log (only what crossed the server's threshold)."""
    entries = await redis.slowlog_get(128)
    durations = [int(e["duration"]) for e in entries
                 if str(e.get("command", b"")).lower().lstrip("b'").startswith(command)]
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
