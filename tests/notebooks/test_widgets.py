"""The lab widgets on their own, driven without a browser, on a real Redis.

Clicks are what the browser sends (a state update for a toggle, a click message for a
button), from the test's loop or, like ipykernel 7 with JupyterLab's comms over
subshells, from another thread running its own event loop. After each action the test
compares what each widget shows with what Redis holds (lab.widgets.check). How widgets
follow changes made by others is in test_widgets_follow.py.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from widget_checks import add_agents, shows_redis

from acd import AgentState, Center, ContactState
from lab.widgets import AgentBoard, ContactComposer, LAALab
from lab.widgets.check import compare


async def test_board_shows_agents_and_pages(center: Center) -> None:
    await add_agents(center)
    board = await AgentBoard.create(center, page_size=2)
    assert board.skills == ["Billing", "English", "Spanish"]
    assert board.page_label.value == "agents 1-2 of 3"
    assert board.rows[0].skill_buttons["Billing"].value is True
    assert board.rows[0].available.description == "available"
    await shows_redis(board)
    board.next.click()
    await board.settle()
    assert board.page == 1
    assert board.rows[0].agent is not None and board.rows[0].agent.id == "a3"
    assert board.rows[1].box.layout.display == "none"
    await shows_redis(board)
    assert "_repr_mimebundle_" in dir(board)
    board.stop()


async def test_board_clicks_change_redis(center: Center) -> None:
    await add_agents(center)
    board = await AgentBoard.create(center)
    board.click_skill("a3", "Billing")
    board.click_available("a3")
    await board.settle()
    a3 = await center.get_agent("a3")
    assert "Billing" in a3.skills and a3.state is AgentState.AVAILABLE
    assert board.row_of("a3").available.description == "available"
    await shows_redis(board)
    board.click_skill("a1", "English")
    await board.settle()
    assert "English" not in (await center.get_agent("a1")).skills
    assert (await center.candidates(["English"]))[0].agent == "a2"
    await shows_redis(board)
    assert board.errors == [] and board.refusals == [] and board.intents == 3
    board.stop()


async def test_board_shows_refusals(center: Center) -> None:
    await add_agents(center)
    board = await AgentBoard.create(center)
    await center.create_contact(["Spanish", "English"])
    await center.set_available("a3")
    await center.add_skill("a3", "English")
    await center.dispatch()
    await board.settle()
    row = board.row_of("a3")
    assert row.available.disabled and row.available.description == "busy"
    await board.apply("a1", "remove_skill", "Spanish")  # refused: a1 lacks it
    assert "⚠" in board.status.value and "Spanish" in board.status.value
    assert board.row_of("a1").skill_buttons["Spanish"].value is False
    # A click that raced the assignment: a busy agent made available is refused, and
    # the toggle flips back to what Redis holds.
    row.available.user_click()
    await board.settle()
    assert len(board.refusals) == 2 and "on contact" in board.status.value
    assert row.available.value is False and row.available.description == "busy"
    await shows_redis(board)
    assert board.errors == []
    board.stop()


async def test_composer_ranks_and_follows_the_assignment(center: Center) -> None:
    await add_agents(center)
    composer = await ContactComposer.create(center)
    composer.select("English", "Billing")
    await composer.settle()
    assert [c.agent for c in composer.ranking] == ["a1", "a2"]
    assert "← LAA" in composer.ranking_html.value and "a1" in composer.ranking_html.value
    await shows_redis(composer)
    composer.enqueue_button.click()
    await composer.settle()
    assert composer.contact is not None and composer.contact.state is ContactState.ASSIGNED
    assert composer.contact.agent == "a1" == composer.predicted
    assert "as predicted" in composer.result_html.value
    assert "by the dispatch round this composer ran" in composer.result_html.value
    assert [c.agent for c in composer.ranking] == ["a2"]
    await shows_redis(composer)
    composer.stop()


async def test_composer_says_why_a_contact_waits(center: Center, other: Center) -> None:
    await add_agents(center)
    composer = await ContactComposer.create(center, wait_s=0.2)
    composer.dispatch_now.set_state({"value": False})  # as the checkbox's click sends it
    composer.select("Spanish")
    await composer.settle()
    assert composer.dispatch_now.value is False
    contact = await composer.enqueue()  # a3 (Spanish) is unavailable
    assert contact.state is ContactState.QUEUED
    assert "no qualified agent available" in composer.result_html.value
    await shows_redis(composer)
    await other.set_dispatch_mode("manual")
    await other.set_available("a3")  # qualified now, but nobody dispatches in manual mode
    await composer.settle()
    assert "manual mode, run your dispatcher" in composer.result_html.value
    assert "Dispatch mode: <b>manual</b>" in composer.mode_html.value
    await shows_redis(composer)
    await other.set_dispatch_mode("automatic")  # no dispatcher process runs in this test
    await composer.settle()
    assert "no dispatcher is connected" in composer.result_html.value
    await shows_redis(composer)
    await other.dispatch()  # another client's round assigns it
    await composer.settle()
    assert "assigned to <b>a3</b> by the lab's dispatchers" in composer.result_html.value
    await shows_redis(composer)
    composer.stop()


async def test_laa_lab_board_click_changes_ranking(center: Center) -> None:
    await add_agents(center)
    lab = await LAALab.create(center)
    lab.composer.select("English", "Billing")
    await lab.settle()
    assert lab.composer.laa == "a1"
    lab.board.click_skill("a1", "Billing")  # a1 loses Billing: a2 becomes the LAA
    await lab.settle()
    assert lab.composer.laa == "a2"
    await shows_redis(lab.board, lab.composer)
    lab.stop()


async def test_clicks_from_another_thread_and_loop(center: Center) -> None:
    """The bug: ipykernel 7 handles a widget's comm message on a subshell thread with
    its own loop. Clicks arriving there must act on the widget's loop, with its Redis."""
    await add_agents(center)
    lab = await LAALab.create(center)
    await lab.settle()
    board, composer = lab.board, lab.composer
    billing, available = board.row_of("a2").skill_buttons["Billing"], board.row_of("a3").available
    needs = composer.skill_buttons

    def subshell() -> None:
        async def clicks() -> None:  # a running loop in this thread, as in a subshell
            billing.set_state({"value": False})
            available.set_state({"value": True})
            needs["English"].set_state({"value": True})
            composer.enqueue_button._handle_button_msg(None, {"event": "click"}, [])

        asyncio.run(clicks())

    thread = threading.Thread(target=subshell)
    thread.start()
    await asyncio.to_thread(thread.join, 5)
    await lab.settle()
    assert board.errors == [] and composer.errors == [], board.errors + composer.errors
    assert "Billing" not in (await center.get_agent("a2")).skills
    assert (await center.get_agent("a3")).state is AgentState.AVAILABLE
    assert composer.contact is not None and composer.contact.state is ContactState.ASSIGNED
    await shows_redis(board, composer)
    # The notebook's own client still works on its loop (no connection of another loop).
    assert await center.redis.ping()
    lab.stop()


async def test_a_newer_widget_replaces_the_older_one(center: Center) -> None:
    await add_agents(center)
    old = await AgentBoard.create(center)
    new = await AgentBoard.create(center)  # a notebook cell run again
    assert new.following and not old.following
    assert "replaced by a newer AgentBoard" in old.live_label.value
    result = await compare([old])
    assert result.mismatches == ["AgentBoard: not following Redis (replaced by a newer "
                                 "AgentBoard of this center)"]
    old.refresh_button.click()  # follow again: now the newer one stops
    await old.settle()
    assert old.following and not new.following
    await shows_redis(old)
    old.stop()


@pytest.mark.parametrize(("mode", "dispatchers", "qualified", "key"), [
    ("automatic", 2, True, "dispatching"),
    ("automatic", None, True, "dispatching"),  # CLIENT LIST refused: says it cannot see
    ("automatic", 0, True, "no-dispatcher"),
    ("manual", 2, True, "manual"),
    ("automatic", 2, False, "no-agent"),
    ("manual", 0, False, "no-agent+manual"),
])
def test_waiting_reasons(mode: str, dispatchers: int | None, qualified: bool, key: str
                         ) -> None:
    from acd.models import DispatchMode
    from lab.widgets.composer import waiting_reason

    got, words = waiting_reason(DispatchMode(mode), dispatchers, qualified)
    assert got == key
    assert ("does not show" in words) == (dispatchers is None and key == "dispatching")
