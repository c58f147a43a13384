"""What the widget tests share: a small team of agents, and the check that every widget
shows what Redis holds, now or within the time promised for changes made by others."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from acd import Center
from lab.widgets.check import Comparable, compare, differences

SHOW_WITHIN = 0.5  # seconds: the promise for changes made by others


async def add_agents(center: Center) -> None:
    """a1 and a2 (English + Billing, a1 available first), a3 (Spanish, unavailable)."""
    await center.create_agent("a1", "Ada", "One", ["English", "Billing"], available=True)
    await asyncio.sleep(0.005)
    await center.create_agent("a2", "Bo", "Two", ["English", "Billing"], available=True)
    await asyncio.sleep(0.005)
    await center.create_agent("a3", "Cy", "Three", ["Spanish"], available=False)


async def shows_redis(*widgets: Comparable) -> None:
    result = await compare(list(widgets))
    assert result.mismatches == [], result.mismatches


async def shown_within(widgets: list[Comparable], change: Callable[[], Awaitable[Any]],
                       what: str) -> float:
    """Make ``change`` (as someone else), then time until every widget shows Redis."""
    t = time.monotonic()
    await change()
    deadline = t + SHOW_WITHIN
    while True:
        diffs = [d for w in widgets for d in _diff(w, await w.from_redis())]
        took = time.monotonic() - t
        if not diffs:
            return took
        assert time.monotonic() < deadline, f"{what}: not shown after {SHOW_WITHIN} s: {diffs}"
        await asyncio.sleep(0.005)


def _diff(widget: Comparable, truth: dict[str, Any]) -> list[str]:
    return differences(widget, widget.displayed(), truth)
