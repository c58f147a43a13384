"""How fast the agent board is with 200 agents: ``python -m lab.widgets.bench``.

Targets: first render under 1 s, an update under 100 ms. "Render" here is the Python side
of a kernel: reading the agents from Redis and building the widget tree and its state
(what the kernel sends the browser); "update" is a click's round trip: the Center call
(one Redis Function), then its event on the center's stream, then one JSON.MGET + TIME,
then the redraw.
Starts its own embedded Redis unless --redis-url is given.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from acd import Center, connect
from lab.widgets.agent_board import AgentBoard

SKILLS = ["English", "Spanish", "Support", "Billing", "Disputes", "Sales"]


def _widget_states(widget: Any) -> int:
    """Serialise the state of a widget tree, as displaying it does; returns the count."""
    count = 1
    widget.get_state()
    for child in getattr(widget, "children", ()):
        count += _widget_states(child)
    return count


async def bench(url: str, agents: int, updates: int, page_size: int) -> dict[str, float]:
    redis = connect(url)
    center = Center(redis, f"bench-{uuid.uuid4().hex[:8]}")
    try:
        for i in range(agents):
            skills = [SKILLS[i % 2], SKILLS[2 + i % 4]] + ([SKILLS[4]] if i % 3 == 0 else [])
            await center.create_agent(f"a{i:03d}", f"Agent{i}", "Bench", sorted(set(skills)),
                                      available=i % 2 == 0)
        t = time.perf_counter()
        board = await AgentBoard.create(center, SKILLS, page_size=page_size)
        n_widgets = _widget_states(board.widget)
        first = time.perf_counter() - t

        def timed(samples: list[float], start: float) -> None:
            samples.append((time.perf_counter() - start) * 1000)

        clicks: list[float] = []
        for i in range(updates):
            agent = f"a{(i * 7) % agents:03d}"
            t = time.perf_counter()
            board.click_skill(agent, "Sales")  # the toggle's callback schedules the change
            await board.settle()
            timed(clicks, t)
        avail: list[float] = []
        for i in range(updates):
            agent = f"a{(i * 11) % agents:03d}"
            t = time.perf_counter()
            board.click_available(agent)
            await board.settle()
            timed(avail, t)
        pages: list[float] = []
        for i in range(updates):
            t = time.perf_counter()
            board.show_page((i * 3) % board.pages)
            timed(pages, t)
        refresh: list[float] = []
        for _ in range(max(3, updates // 5)):
            t = time.perf_counter()
            await board.refresh()
            timed(refresh, t)
        assert not board.errors, board.errors

        def p95(xs: list[float]) -> float:
            return sorted(xs)[max(0, int(len(xs) * 0.95) - 1)]

        return {"agents": agents, "widgets": n_widgets, "first_render_ms": first * 1000,
                "skill_click_median_ms": statistics.median(clicks),
                "skill_click_p95_ms": p95(clicks),
                "availability_click_median_ms": statistics.median(avail),
                "availability_click_p95_ms": p95(avail),
                "page_change_median_ms": statistics.median(pages),
                "page_change_p95_ms": p95(pages),
                "refresh_all_median_ms": statistics.median(refresh)}
    finally:
        await center.wipe()
        await redis.aclose()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.widgets.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--redis-url", help="use this Redis (default: start an embedded one)")
    p.add_argument("--agents", type=int, default=200)
    p.add_argument("--updates", type=int, default=100)
    p.add_argument("--page-size", type=int, default=20)
    args = p.parse_args(argv)
    server = None
    url = args.redis_url
    if url is None:
        from lab.embedded import EmbeddedRedis, free_port

        server = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="acd-bench-")), free_port())
        server.start()
        url = server.url
    try:
        result = asyncio.run(bench(url, args.agents, args.updates, args.page_size))
    finally:
        if server is not None:
            server.stop()
    for key, value in result.items():
        print(f"{key:32s} {value:10.1f}" if isinstance(value, float) else f"{key:32s} {value:10d}")
    ok = result["first_render_ms"] < 1000 and result["skill_click_p95_ms"] < 100 \
        and result["availability_click_p95_ms"] < 100
    print("targets (first render < 1000 ms, update p95 < 100 ms):", "met" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
