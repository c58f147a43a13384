"""The lab widgets driven without a browser, on a real Redis.

Clicks are what the browser sends (a state update for a toggle, a click message for a
button), from the test's loop or, like ipykernel 7 with JupyterLab's comms over
subshells, from another thread running its own event loop. After each action the test
compares what each widget shows with what Redis holds (lab.widgets.check); changes made
by others (another client's Center calls, real dispatchers) must show within 500 ms.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from acd_invariants import dispatcher_processes
from redis.exceptions import ConnectionError as RedisConnectionError

from acd import AgentState, Center, ContactState, connect
from acd.dispatcher import Dispatcher
from lab.widgets import AgentBoard, ContactComposer, LAALab, LiveView
from lab.widgets.check import Comparable, compare

SHOW_WITHIN = 0.5  # seconds: the promise for changes made by others


async def _agents(center: Center) -> None:
    await center.create_agent("a1", "Ada", "One", ["English", "Billing"], available=True)
    await asyncio.sleep(0.005)
    await center.create_agent("a2", "Bo", "Two", ["English", "Billing"], available=True)
    await asyncio.sleep(0.005)
    await center.create_agent("a3", "Cy", "Three", ["Spanish"], available=False)


async def shows_redis(*widgets: Comparable) -> None:
    result = await compare(list(widgets))
    assert result.mismatches == [], result.mismatches


@pytest.fixture
async def other(redis_url: str, center: Center) -> AsyncIterator[Center]:
    """The same center through another client: another notebook, the API, a dispatcher."""
    redis = connect(redis_url)
    yield Center(redis, center.name)
    await redis.aclose()


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
    from lab.widgets.check import differences

    return differences(widget, widget.displayed(), truth)


async def test_board_shows_agents_and_pages(center: Center) -> None:
    await _agents(center)
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
    await _agents(center)
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
    await _agents(center)
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
    await _agents(center)
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
    await _agents(center)
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
    await _agents(center)
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
    await _agents(center)
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


async def test_changes_by_others_show_within_500_ms(center: Center, other: Center) -> None:
    await _agents(center)
    lab = await LAALab.create(center)
    view = LiveView(center, interval=0.5)
    view.start()
    lab.composer.select("English", "Billing")
    await lab.settle()
    await view.settle()
    widgets: list[Comparable] = [lab.board, lab.composer, view]
    await shows_redis(*widgets)
    took = [
        await shown_within(widgets, lambda: other.remove_skill("a1", "Billing"), "skill"),
        await shown_within(widgets, lambda: other.set_unavailable("a2"), "unavailable"),
        await shown_within(widgets, lambda: other.create_agent(
            "a4", "Di", "Four", ["English", "Billing"], available=True), "new agent"),
        await shown_within(widgets, lambda: other.set_dispatch_mode("manual"), "mode"),
        await shown_within(widgets, lambda: other.create_contact(["English"]), "queued"),
        await shown_within(widgets, other.dispatch, "assigned"),
        await shown_within(widgets, lambda: other.delete_agent("a3"), "deleted"),
        await shown_within(widgets, other.close, "center closed"),
    ]
    print("shown after (ms):", [round(t * 1000, 1) for t in took])
    busy = await center.get_agent("a1")  # the longest available with English
    assert busy.state is AgentState.BUSY and lab.board.row_of("a1").available.disabled
    assert busy.next_state is AgentState.UNAVAILABLE  # closed: not ready after the contact
    assert lab.board.row_of("a1").contact.value.endswith("→ unavailable")
    assert lab.composer.laa is None and view.assignments[-1][1] == "a1"
    for w in (lab.board, lab.composer, view):
        assert w.errors == []
        w.stop()


@pytest.mark.parametrize("how", ["task", "process"])
async def test_real_dispatchers_show_within_500_ms(center: Center, other: Center,
                                                   redis_url: str, how: str) -> None:
    await _agents(center)
    lab = await LAALab.create(center)
    view = LiveView(center, interval=0.5)
    view.start()
    lab.composer.dispatch_now.set_state({"value": False})
    lab.composer.select("English")
    widgets: list[Comparable] = [lab.board, lab.composer, view]
    if how == "task":
        dispatcher = Dispatcher(other, idle_ms=500)
        runner = asyncio.create_task(dispatcher.run())
        context: Any = None
    else:
        context = dispatcher_processes(center.name, redis_url, 2, idle_ms=500)
        context.__enter__()
    try:
        if how == "process":  # wait for the processes to connect (they name themselves)
            deadline = time.monotonic() + 30
            while lab.composer.displayed()["dispatchers"] in (None, "0"):
                assert time.monotonic() < deadline, "dispatcher processes did not connect"
                await asyncio.sleep(0.05)
        await shows_redis(*widgets)
        took = await shown_within(widgets, lambda: other.create_contact(["English"]),
                                  "assigned by a dispatcher")
        assigned = view.assignments[-1]
        assert (await center.get_agent(assigned[1])).state is AgentState.BUSY
        contact = await lab.composer.enqueue()  # the composer's own contact, no own round
        assert contact.state is ContactState.ASSIGNED
        assert "by the lab's dispatchers" in lab.composer.result_html.value
        await shows_redis(*widgets)
        took2 = await shown_within(widgets, lambda: other.complete_contact(assigned[0]),
                                   "completed")
        print(f"dispatcher as a {how}: shown after {took * 1000:.1f} ms, "
              f"{took2 * 1000:.1f} ms")
    finally:
        if how == "task":
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        else:
            context.__exit__(None, None, None)
        for w in (lab.board, lab.composer, view):
            w.stop()
    assert lab.board.errors == lab.composer.errors == view.errors == []


async def test_live_view_start_stop_start(center: Center, other: Center) -> None:
    await _agents(center)
    await other.create_contact(["English"], contact_id="before")
    await other.dispatch()  # an assignment made before the view starts: listed once
    view = LiveView(center, interval=0.05)
    view.start()
    assert view.running and view.stop_button.disabled is False
    await view.settle()
    assert view.lengths[-1] == 0 and [a for _, a, _ in view.assignments] == ["a1"]
    await shows_redis(view)
    await other.create_contact(["Spanish"], contact_id="waits")
    await view.settle()
    assert "queue length: 1" in view.queue_label.value and view.total_assigned == 0
    await shows_redis(view)
    view.stop_button.click()
    await view.settle()
    assert not view.running and "stopped" in view.status.value
    assert view.displayed()["following"] is False and view._tasks == []
    await shows_redis(view)  # a stopped view says it is stopped: nothing to compare
    await other.set_available("a3")
    await other.dispatch()  # while stopped: "waits" goes to a3
    view.start_button.click()
    view.stop_button.click()  # start, stop, start in a row: the last one wins
    view.start_button.click()
    await view.settle()
    assert view.running and view.start_button.disabled and not view.stop_button.disabled
    assert [c for c, _, _ in view.assignments] == ["before", "waits"]
    assert view.total_assigned == 1 and "queue length: 0" in view.queue_label.value
    await shows_redis(view)
    assert list(view.figure.data[0].y)[-1] == 0
    tasks = list(view._tasks)
    view.stop()
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 2)
    assert all(t.done() for t in tasks) and view.errors == []


async def test_live_view_stops_itself_and_shows_writers_without_events(
        center: Center, other: Center) -> None:
    await _agents(center)
    view = LiveView(center, interval=0.05, max_seconds=0.5)
    view.start()
    await view.settle()
    # A write no acd function made (like notebook 04's naive dispatcher): no event.
    await other.redis.zadd(other.keys.queue, {f"raw-{uuid.uuid4().hex[:6]}": 1})
    deadline = time.monotonic() + 0.3
    while view.displayed()["queue_length"] != 1:
        assert time.monotonic() < deadline, "a change without events did not show"
        await asyncio.sleep(0.01)
    deadline = time.monotonic() + 3
    while view.running:
        assert time.monotonic() < deadline, "the view did not stop after max_seconds"
        await asyncio.sleep(0.02)
    assert "stopped after 0.5 s" in view.status.value and view.errors == []


async def test_a_newer_widget_replaces_the_older_one(center: Center) -> None:
    await _agents(center)
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


async def test_redis_away_no_task_hangs(center: Center) -> None:
    """Every wait has a deadline: with Redis unreachable the view shows the error, keeps
    retrying, and stop() ends its tasks at once."""
    from lab.embedded import free_port

    away = Center(connect(f"redis://127.0.0.1:{free_port()}/0"), center.name)
    view = LiveView(away, interval=0.05)
    view.start()
    deadline = time.monotonic() + 10
    while not view.errors:
        assert time.monotonic() < deadline, "no error shown for an unreachable Redis"
        await asyncio.sleep(0.02)
    assert view.running and "ConnectionError" in view.status.value
    tasks = list(view._tasks)
    view.stop()
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 2)
    t = time.monotonic()
    with pytest.raises(RedisConnectionError):  # a stopped view's refresh fails, fast
        await asyncio.wait_for(view.refresh(), 10)
    assert time.monotonic() - t < view.call_timeout + 1
    await away.redis.aclose()


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
