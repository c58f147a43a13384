"""The statistics board and the explanation view (issue 14), driven without a browser on
a real Redis: each shows what Redis holds (lab.widgets.check), the board within 500 ms of
a change made by someone else, and both stop or fail visibly rather than hang."""

from __future__ import annotations

import asyncio
import time

from widget_checks import add_agents, shown_within, shows_redis

from acd import Center
from lab.widgets import ExplanationView, StatsBoard


async def test_stats_board_follows_changes_by_others(center: Center, other: Center) -> None:
    await add_agents(center)
    board = StatsBoard(center, interval=0.5)
    board.start()
    await board.settle()
    await shows_redis(board)
    shown = board.displayed()
    assert shown["waiting"] == 0 and shown["agents"]["available"] == 2
    took = [
        await shown_within([board], lambda: other.create_contact(["Spanish"]), "parked"),
        await shown_within([board], lambda: other.create_contact(["English", "Billing"]),
                           "queued"),
        await shown_within([board], other.dispatch, "assigned"),
        await shown_within([board], lambda: other.set_available("a3"), "available"),
        await shown_within([board], other.dispatch, "assigned again"),
    ]
    print("shown after (ms):", [round(t * 1000, 1) for t in took])
    assert board.displayed()["combinations"] == {} and board.redraws > 1
    await other.create_contact(["French"])
    await board.settle()
    assert board.displayed()["combinations"] == {"French": "1|parked|0|0"}
    assert "nobody has these skills" in board.table.value
    await other.create_contact(["English"], min_levels={"English": 4})  # a1, a2: level 1
    await board.settle()
    assert board.displayed()["combinations"]["English"] == "1|parked|0|0"
    assert "English ≥ 4" in board.table.value and "at these levels" in board.table.value
    await other.set_level("a2", "English", 4)
    await board.settle()
    await shows_redis(board)
    assert board.displayed()["combinations"]["English"] == "1|ready|1|1"
    assert board.errors == []
    board.stop()
    assert board.displayed()["following"] is False and "snapshot" in board.status.value


async def test_stats_board_stops_by_itself(center: Center) -> None:
    board = StatsBoard(center, interval=0.05, max_seconds=0.2)
    board.start()
    deadline = time.monotonic() + 5
    while board.following:
        assert time.monotonic() < deadline, "the board did not stop at its deadline"
        await asyncio.sleep(0.01)
    await board.settle()
    assert "stopped after 0.2 s" in board.status.value and board.errors == []


async def test_explanation_view_shows_the_picked_assignment(center: Center) -> None:
    await center.set_explanations(True)
    await add_agents(center)  # a1 then a2: English + Billing
    await center.set_agent_choice("fewest_skills")
    await center.create_agent("a4", "Di", "Four", ["Billing"], available=True)
    first = await center.create_contact(["Billing"], contact_id="bill")
    second = await center.create_contact(["English"], contact_id="eng")
    await center.dispatch()
    view = await ExplanationView.create(center)
    assert [v for _, v in view.picker.options] == [second.id, first.id]  # newest first
    view.pick(first.id)
    await view.settle()
    shown = view.displayed()
    assert shown == {"contact": "bill", "agent": "a4", "decided_by": "fewest_skills",
                     "candidates": ["a4", "a1", "a2"]}
    assert shown == await view.from_redis()
    assert "← winner" in view.body.value and view.intents == 1
    await asyncio.to_thread(view.pick, second.id)  # another thread, as a subshell's
    await view.settle()
    assert view.displayed()["agent"] == "a1" and view.displayed()["decided_by"] == \
        "longest_available"
    waiting = await center.create_contact(["Klingon"])
    await view.show(waiting.id)
    assert view.shown is None and "it is queued" in view.body.value
    assert view.errors == []
