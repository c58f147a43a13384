"""The lab widgets driven without a browser: set values, click, check Redis."""

from __future__ import annotations

import asyncio

from acd import AgentState, Center, ContactState
from lab.widgets import AgentBoard, ContactComposer, LAALab, LiveView


async def _agents(center: Center) -> None:
    await center.create_agent("a1", "Ada", "One", ["English", "Billing"], available=True)
    await asyncio.sleep(0.005)
    await center.create_agent("a2", "Bo", "Two", ["English", "Billing"], available=True)
    await asyncio.sleep(0.005)
    await center.create_agent("a3", "Cy", "Three", ["Spanish"], available=False)


async def test_board_shows_agents_and_pages(center: Center) -> None:
    await _agents(center)
    board = await AgentBoard.create(center, page_size=2)
    assert board.skills == ["Billing", "English", "Spanish"]
    assert board.page_label.value == "agents 1-2 of 3"
    assert board.rows[0].skill_buttons["Billing"].value is True
    assert board.rows[0].available.description == "available"
    board.next.click()
    assert board.page == 1
    assert board.rows[0].agent is not None and board.rows[0].agent.id == "a3"
    assert board.rows[1].box.layout.display == "none"
    assert "_repr_mimebundle_" in dir(board)


async def test_board_clicks_change_redis(center: Center) -> None:
    await _agents(center)
    board = await AgentBoard.create(center)
    board.click_skill("a3", "Billing")
    board.click_available("a3")
    await board.settle()
    a3 = await center.get_agent("a3")
    assert "Billing" in a3.skills and a3.state is AgentState.AVAILABLE
    assert board.row_of("a3").available.description == "available"
    board.click_skill("a1", "English")
    await board.settle()
    assert "English" not in (await center.get_agent("a1")).skills
    assert (await center.candidates(["English"]))[0].agent == "a2"
    assert board.errors == []


async def test_board_shows_refusals(center: Center) -> None:
    await _agents(center)
    board = await AgentBoard.create(center)
    await center.create_contact(["Spanish", "English"])
    await center.set_available("a3")
    await center.add_skill("a3", "English")
    await center.dispatch()
    await board.refresh()
    row = board.row_of("a3")
    assert row.available.disabled and row.available.description == "busy"
    await board.apply("a1", "remove_skill", "Spanish")  # refused: a1 lacks it
    assert "⚠" in board.status.value and "Spanish" in board.status.value
    assert board.row_of("a1").skill_buttons["Spanish"].value is False


async def test_composer_ranks_and_follows_the_assignment(center: Center) -> None:
    await _agents(center)
    composer = await ContactComposer.create(center)
    composer.select("English", "Billing")
    await composer.settle()
    assert [c.agent for c in composer.ranking] == ["a1", "a2"]
    assert "← LAA" in composer.ranking_html.value and "a1" in composer.ranking_html.value
    composer.enqueue_button.click()
    await composer.settle()
    assert composer.contact is not None and composer.contact.state is ContactState.ASSIGNED
    assert composer.contact.agent == "a1" == composer.predicted
    assert "as predicted" in composer.result_html.value
    assert [c.agent for c in composer.ranking] == ["a2"]


async def test_composer_without_dispatcher_reports_waiting(center: Center) -> None:
    await _agents(center)
    composer = await ContactComposer.create(center, wait_s=0.2)
    composer.dispatch_now.value = False
    composer.select("Spanish")
    contact = await composer.enqueue()
    assert contact.state is ContactState.QUEUED
    assert "still <b>queued</b>" in composer.result_html.value


async def test_laa_lab_board_click_changes_ranking(center: Center) -> None:
    await _agents(center)
    lab = await LAALab.create(center)
    lab.composer.select("English", "Billing")
    await lab.settle()
    assert lab.composer.laa == "a1"
    lab.board.click_skill("a1", "Billing")  # a1 loses Billing: a2 becomes the LAA
    await lab.settle()
    assert lab.composer.laa == "a2"


async def test_live_view_polls_queue_and_assignments(center: Center) -> None:
    await _agents(center)
    view = LiveView(center, interval=0.05)
    await center.create_contact(["Spanish"])
    await center.create_contact(["English"])
    await center.dispatch()
    view.start()
    assert view.running and view.stop_button.disabled is False
    for _ in range(100):
        if view.polls >= 2:
            break
        await asyncio.sleep(0.02)
    assert view.lengths[-1] == 1
    assert view.assignments and view.assignments[-1][1] == "a1"
    assert "queue length: 1" in view.queue_label.value
    await center.create_agent("a4", "Di", "Four", ["Spanish"], available=True)
    await center.dispatch()
    polls = view.polls
    for _ in range(100):
        if view.polls > polls + 1:
            break
        await asyncio.sleep(0.02)
    assert view.total_assigned == 1 and view.lengths[-1] == 0
    assert list(view.figure.data[0].y)[-1] == 0
    view.stop_button.click()
    await view.settle()
    assert not view.running and view.status.value == "stopped"
