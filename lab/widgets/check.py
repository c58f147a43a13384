"""Does a widget show what Redis holds? Compare ``displayed()`` with ``from_redis()``.

Every lab widget has both: ``displayed()`` reads back what its widgets show now (toggle
values, labels, the data attributes of its HTML), ``from_redis()`` computes the same
from Redis alone, with the same view parameters (page, selected skills, last contact).
``compare`` settles the widgets first, then reads Redis between two reads of the events
stream's newest id: if the stream moved meanwhile (a dispatcher assigned), the snapshot
is not taken as evidence and it tries again. A difference is reported only if it is
still there at the deadline, so a test fails on a display that does not converge, not
on a change caught half-way. A widget that is not following (a stopped live view) is
only checked to say so: its figures are labelled as a snapshot.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Protocol


class Comparable(Protocol):
    intents: int
    center: Any

    def displayed(self) -> dict[str, Any]: ...

    async def from_redis(self) -> dict[str, Any]: ...

    async def settle(self, timeout: float = 10.0) -> None: ...

    def caught_up(self, tip: str) -> bool: ...


@dataclass
class Comparison:
    mismatches: list[str] = field(default_factory=list)  # still there at the deadline
    transient: int = 0  # snapshots that differed, then converged
    transient_diffs: list[str] = field(default_factory=list)  # the first ones, to look at
    tries: int = 0
    seconds: float = 0.0


def differences(widget: Comparable, shown: dict[str, Any], truth: dict[str, Any]
                ) -> list[str]:
    name = type(widget).__name__
    if not shown.get("following", True):
        # Stopped on purpose, and saying so on screen: nothing there claims to be live.
        reason = getattr(widget, "stopped_reason", "?")
        return [] if reason == "stopped" else [f"{name}: not following Redis ({reason})"]
    return [f"{name}.{key}: shows {shown.get(key)!r}, Redis holds {truth.get(key)!r}"
            for key in sorted(set(shown) | set(truth)) if shown.get(key) != truth.get(key)]


async def wait_intents(widgets: list[Comparable], intents: int, timeout: float) -> None:
    """Wait until the widgets received ``intents`` user actions (clicks in a browser
    arrive as comm messages, possibly on another thread, a little after the click)."""
    deadline = time.monotonic() + timeout
    while sum(w.intents for w in widgets) < intents:
        if time.monotonic() > deadline:
            got = sum(w.intents for w in widgets)
            raise TimeoutError(f"{got} of {intents} user actions reached the widgets")
        await asyncio.sleep(0.005)


async def compare(widgets: list[Comparable], timeout: float = 3.0,
                  intents: int | None = None) -> Comparison:
    """Settle ``widgets`` and compare each one's display with Redis (see module doc)."""
    started = time.monotonic()
    deadline = started + timeout
    result = Comparison()
    if intents is not None:
        await wait_intents(widgets, intents, timeout)
    while True:
        result.tries += 1
        left = max(0.1, deadline - time.monotonic())
        for widget in widgets:
            await widget.settle(left)
        tips = [await w.center.last_event_id() for w in widgets]
        truths = [await w.from_redis() for w in widgets]
        shown = [w.displayed() for w in widgets]
        after = [await w.center.last_event_id() for w in widgets]
        quiet = tips == after and all(w.caught_up(t) for w, t in zip(widgets, tips,
                                                                      strict=True))
        diffs = [d for w, s, t in zip(widgets, shown, truths, strict=True)
                 for d in differences(w, s, t)] if quiet else []
        if quiet and not diffs:
            result.seconds = time.monotonic() - started
            return result
        if quiet:
            result.transient += 1
            result.transient_diffs += diffs[:3]
        if time.monotonic() > deadline:
            result.mismatches = diffs or ["the events stream never stayed quiet for a "
                                          "comparison"]
            result.seconds = time.monotonic() - started
            return result
        await asyncio.sleep(0.01)
