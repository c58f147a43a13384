"""Live statistics of a center: waiting contacts, agents by state, and why contacts wait,
per skill combination (GET .../stats and .../stats/combinations, read through
acd.Center and acd.stats).

It follows the center's events stream (``_follow``): every state change redraws within
milliseconds, and a quiet ``interval`` redraws too, because waits grow with no event.
It stops by itself after ``max_seconds`` (a forgotten tab does not poll for ever) and
says so; the stop and start buttons do the same by hand. ``displayed()`` reads back what
it shows and ``from_redis()`` computes the same from Redis alone (lab.widgets.check);
waits, which change every millisecond, are shown but not compared.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w  # type: ignore[import-untyped]

from acd import AgentState, Center
from acd.stats import CenterStats, CombinationStats, WaitingCombinations, combinations
from lab.widgets._base import age, data_attrs, esc
from lab.widgets._follow import Event, FollowingPanel

COMBINATIONS = 10  # rows of the combinations table


async def read(center: Center, limit: int = COMBINATIONS
               ) -> tuple[CenterStats, WaitingCombinations]:
    return await center.stats(), await combinations(center, limit)


def _row(cells: list[str], head: bool = False) -> str:
    tag = "th" if head else "td"
    return "<tr>" + "".join(f"<{tag} style='padding:2px 8px'>{c}</{tag}>" for c in cells) + "</tr>"


def shown_skills(c: CombinationStats) -> str:
    """A combination as a person reads it: each minimum level after its skill."""
    return " + ".join(f"{s} ≥ {c.min_levels[s]}" if s in c.min_levels else s for s in c.skills)


class StatsBoard(FollowingPanel):
    """``board = StatsBoard(center); board.start(); board`` - a wallboard of the center."""

    def __init__(self, center: Center, interval: float = 1.0, limit: int = COMBINATIONS,
                 max_seconds: float | None = 600.0) -> None:
        super().__init__(center, block_s=interval, max_seconds=max_seconds)
        self.limit = limit
        self.redraws = 0
        self.summary = w.HTML()
        self.agents_html = w.HTML()
        self.table = w.HTML()
        self.widget = w.VBox([w.HBox([self.start_button, self.stop_button, self.summary]),
                              self.agents_html, self.table, self.status])
        self._show_following(False)

    async def _update(self, events: list[Event], full: bool) -> None:
        stats, combos = await read(self.center, self.limit)
        self.redraws += 1
        self.summary.value = (
            f"&nbsp;<b data-waiting='{stats.waiting}'>{stats.waiting} waiting</b> · oldest "
            f"{age(stats.oldest_wait_ms)} · offered {stats.offered}, assigned "
            f"{stats.assigned}, abandoned {stats.abandoned} · mean wait "
            f"{age(None if stats.mean_wait_ms is None else int(stats.mean_wait_ms))}")
        self.agents_html.value = "agents: " + " · ".join(
            f"<span data-state='{esc(s.value)}' data-count='{n}'>{esc(s.value)} "
            f"<b>{n}</b></span>" for s, n in stats.agents.items())
        rows = [_row(["skills", "waiting", "oldest wait", "state", "eligible", "available"],
                     head=True)]
        for c in combos.combinations:
            sig = ",".join(c.skills)
            eligible = f"≥ {c.eligible}" if c.eligible_capped else str(c.eligible)
            why = ("nobody has these skills" + (" at these levels" if c.min_levels else "")
                   if c.eligible == 0 else
                   "its agents are busy or away" if c.available == 0 else "")
            rows.append(_row([
                f"<code data-combination='{esc(sig)}' data-row='{c.waiting}|{c.state.value}|"
                f"{esc(eligible)}|{c.available}'>{esc(shown_skills(c))}</code>",
                str(c.waiting), age(c.oldest_wait_ms),
                f"{esc(c.state.value)} <i>{esc(why)}</i>", eligible, str(c.available)]))
        more = (f"<br><i>{combos.total - len(combos.combinations)} more combinations</i>"
                if combos.total > len(combos.combinations) else "")
        self.table.value = (f"<b>Why contacts wait, per skill combination</b>"
                            f"<table>{''.join(rows)}</table>{more}"
                            if combos.combinations else "<i>nobody waits</i>")

    # -- comparable views -----------------------------------------------------------
    def displayed(self) -> dict[str, Any]:
        """What the board shows now (waits left out: they change every millisecond)."""
        waiting = data_attrs(self.summary.value, "waiting")
        return {
            "following": data_attrs(self.status.value, "live") == ["1"],
            "waiting": int(waiting[0]) if waiting else None,
            "agents": dict(zip(data_attrs(self.agents_html.value, "state"),
                               map(int, data_attrs(self.agents_html.value, "count")), strict=True)),
            "combinations": dict(zip(data_attrs(self.table.value, "combination"),
                                     data_attrs(self.table.value, "row"), strict=True)),
        }

    async def from_redis(self) -> dict[str, Any]:
        """What a following board must show, computed from Redis alone."""
        stats, combos = await read(self.center, self.limit)
        return {
            "following": True, "waiting": stats.waiting,
            "agents": {s.value: stats.agents.get(s, 0) for s in AgentState},
            "combinations": {",".join(c.skills): f"{c.waiting}|{c.state.value}|"
                             f"{'≥ ' if c.eligible_capped else ''}{c.eligible}|{c.available}"
                             for c in combos.combinations},
        }
