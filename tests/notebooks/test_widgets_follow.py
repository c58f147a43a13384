"""The lab widgets follow Redis: changes made by others (another client's Center calls,
real dispatchers as a task or as processes, writers that emit no events) must show within
500 ms; the live view starts, stops and starts again, stops itself, and never hangs when
Redis is away. Driven without a browser, on a real Redis (lab.widgets.check compares what
each widget shows with what Redis holds).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from acd_invariants import dispatcher_processes
from redis.exceptions import ConnectionError as RedisConnectionError
from widget_checks import add_agents, shown_within, shows_redis

from acd import AgentState, Center, ContactState, connect
from acd.dispatcher import Dispatcher
from lab.widgets import LAALab, LiveView
from lab.widgets.check import Comparable


async def test_changes_by_others_show_within_500_ms(center: Center, other: Center) -> None:
    await add_agents(center)
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
    await add_agents(center)
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
    await add_agents(center)
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
    await add_agents(center)
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
