"""The offers board (lab.widgets.OffersBoard) with a real dispatcher making the offers and
timing them out, as the lab's dispatchers do: an offer appears, Accept assigns, Reject
puts the contact back, a timeout shows, and the board survives offers switched off and
the center deleted. Driven without a browser, on a real Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from widget_checks import shows_redis

from acd import AgentState, Center, ContactState
from acd.dispatcher import Dispatcher
from acd.invariants import violations
from lab.widgets import OffersBoard


async def until(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        await asyncio.sleep(0.01)


async def test_offers_board_with_a_real_dispatcher(center: Center, other: Center) -> None:
    await center.create_agent("a5", "Ana", "Five", ["French", "German"], available=True)
    board = OffersBoard(center, interval=0.1)
    board.start()
    await board.settle()
    assert board.displayed()["offers"] == "off" and "set_offers" in board.header.value
    await center.set_offers(timeout_s=1, max_misses=2, backoff_s=30)
    dispatcher = Dispatcher(other, idle_ms=200)
    runner = asyncio.create_task(dispatcher.run())

    async def offered(cid: str) -> bool:
        return board.displayed()["pending"] == [f"a5|{cid}"]

    try:
        # 1. An offer appears, with its seconds counting down; Accept assigns.
        await center.create_contact(["French"], contact_id="c1")
        await until(lambda: offered("c1"), "the offer of c1")
        await shows_redis(board)
        left = float(board.rows[0].text.value.split("data-left='")[1].split("'")[0])
        assert 0 < left <= 1.0
        board.click("a5", "accept")
        await board.settle()
        contact, agent = await center.get_contact("c1"), await center.get_agent("a5")
        assert contact.state is ContactState.ASSIGNED and contact.agent == "a5"
        assert agent.state is AgentState.BUSY and agent.contact == "c1"
        assert not await violations(center)
        assert board.answers == [("accept", "a5", "c1")] and board.displayed()["pending"] == []
        assert "a5 accepted c1" in board.events_html.value
        await center.complete_contact("c1")

        # 2. Reject: the contact goes back to its place, one miss in a row.
        await center.create_contact(["French"], contact_id="c2")
        await until(lambda: offered("c2"), "the offer of c2")
        board.click("a5", "reject")
        await board.settle()
        assert (await center.get_contact("c2")).state is ContactState.QUEUED
        assert (await center.get_agent("a5")).missed_offers == 1
        assert "a5|1" in board.displayed()["misses"] and "back to its place" in \
            board.events_html.value
        assert not await violations(center)

        # 3. Nobody answers: Redis times the offer out, the second miss is a break.
        await center.create_contact(["German"], contact_id="c3")  # c2 excludes a5 for 30 s
        await until(lambda: offered("c3"), "the offer of c3")

        async def timed_out() -> bool:
            return "time out" in board.events_html.value

        await until(timed_out, "the timeout", seconds=5)
        await board.settle()
        a5 = await center.get_agent("a5")
        assert a5.state is AgentState.UNAVAILABLE and a5.reason == "missed_offers"
        assert (await center.get_contact("c3")).state is ContactState.QUEUED
        assert "on a break" in board.misses_html.value and board.displayed()["pending"] == []
        await shows_redis(board)
        assert not await violations(center)

        # A click on an offer that is gone says so and changes nothing.
        await board._answer("a5", "c3", "accept")
        assert board.refusals and "refused" in board.answer_status.value

        # 4. Offers off, then the center deleted: the board says so, no error.
        await other.set_offers(0)
        await until(lambda: _is(board.displayed()["offers"], "off"), "offers off")
        await other.delete()
        await board.refresh()
        assert "no settings" in board.header.value and board.displayed()["pending"] == []
    finally:
        dispatcher.stop()
        await asyncio.wait_for(asyncio.gather(runner, return_exceptions=True), 5)
    assert board.errors == []
    board.stop()
    assert board.displayed()["following"] is False


async def _is(value: object, expected: object) -> bool:
    return value == expected
