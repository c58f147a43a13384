"""Agent states (issue 14): a break is 'unavailable' with a reason code, logged_out is a
state of its own; the busy and wrap-up rules hold for both (asked on a contact, they
apply when it ends); every transition is an event carrying the reason; statistics count
agents per state and breaks per reason (acd/lua/03_agent_states.lua, "Agent states")."""

from __future__ import annotations

import asyncio

import pytest
from acd_invariants import check_invariants

from acd import Center, InvalidInput, InvalidState
from acd.functions import Functions


async def events(center: Center) -> list[dict[str, str]]:
    return [f for _, f in await center.redis.xrange(center.keys.events)]


async def busy(center: Center, agent: str = "a") -> str:
    await center.create_agent(agent, "A", "B", ["en"], available=True)
    contact = await center.create_contact(["en"])
    [done] = await center.dispatch()
    assert done.agent == agent
    return contact.id


async def test_a_break_is_unavailable_with_a_reason_and_gets_no_contact(center: Center) -> None:
    await center.create_agent("a", "A", "B", ["en"], available=True)
    agent = await center.start_break("a", "lunch")
    assert (agent.state, agent.reason, agent.available_since) == ("unavailable", "lunch", None)
    assert await center.redis.zscore(center.keys.avail("en"), "a") is None
    waiting = await center.create_contact(["en"])
    assert await center.dispatch() == []
    assert (await center.get_contact(waiting.id)).state == "queued"
    assert {"type": "agent_state", "agent": "a", "state": "unavailable",
            "reason": "lunch"} in await events(center)
    stats = await center.stats()
    assert stats.agents["unavailable"] == 1 and stats.breaks == {"lunch": 1}
    await check_invariants(center)


async def test_unavailable_without_a_reason_is_as_before(center: Center) -> None:
    await center.create_agent("a", "A", "B", ["en"], available=True)
    agent = await center.set_unavailable("a")
    assert (agent.state, agent.reason) == ("unavailable", None)
    assert {"type": "agent_state", "agent": "a", "state": "unavailable"} in await events(center)
    assert (await center.stats()).breaks == {}
    await center.start_break("a", "coaching")
    ended = await center.set_unavailable("a")  # the break ends; still not ready
    assert (ended.state, ended.reason) == ("unavailable", None)
    back = await center.set_available("a")
    assert (back.state, back.reason) == ("available", None)
    await check_invariants(center)


@pytest.mark.parametrize(("state", "reason", "named"), [
    ("unavailable", "Lunch", "break reason"), ("unavailable", "", "break reason"),
    ("unavailable", "x" * 33, "break reason"), ("unavailable", "a b", "break reason"),
    ("available", "lunch", "only a break"), ("logged_out", "lunch", "only a break"),
    ("break", None, "state"),
])
async def test_bad_states_and_reasons_are_refused_naming_them(
        center: Center, state: str, reason: str | None, named: str) -> None:
    await center.create_agent("a", "A", "B", ["en"], available=True)
    with pytest.raises(InvalidInput, match=named):
        await center.set_agent_state("a", state, reason)
    assert (await center.get_agent("a")).state == "available"


async def test_the_function_checks_the_reason_too(center: Center) -> None:
    """A client calling acd_agent_state itself (a lesson, another language)."""
    await center.create_agent("a", "A", "B", ["en"], available=True)
    fn = Functions(center.redis, center.keys)
    for state, reason in (("unavailable", "Not Ok"), ("available", "lunch"), ("busy", "")):
        with pytest.raises(InvalidInput):
            await fn.agent_state("a", state, reason)
    assert (await center.get_agent("a")).state == "available"


async def test_a_break_asked_on_a_contact_starts_when_it_ends(center: Center) -> None:
    cid = await busy(center)
    agent = await center.start_break("a", "lunch")
    assert (agent.state, agent.next_state, agent.next_reason) == ("busy", "unavailable", "lunch")
    assert agent.reason is None
    assert {"type": "agent_next_state", "agent": "a", "next_state": "unavailable",
            "reason": "lunch"} in await events(center)
    await center.complete_contact(cid)
    after = await center.get_agent("a")
    assert (after.state, after.reason, after.next_state, after.next_reason) == (
        "unavailable", "lunch", None, None)
    await check_invariants(center)


async def test_available_cancels_a_pending_break_or_log_out(center: Center) -> None:
    cid = await busy(center)
    await center.start_break("a", "lunch")
    cancelled = await center.set_available("a")
    assert (cancelled.next_state, cancelled.next_reason) == (None, None)
    with pytest.raises(InvalidState, match="on contact"):
        await center.set_available("a")  # nothing pending any more
    await center.log_out("a")
    assert (await center.get_agent("a")).next_state == "logged_out"
    await center.complete_contact(cid)
    assert (await center.get_agent("a")).state == "logged_out"
    await check_invariants(center)


async def test_a_log_out_during_wrap_up_applies_at_its_end(center: Center) -> None:
    cid = await busy(center)
    await center.set_wrap_up(60)
    await center.complete_contact(cid)
    await center.log_out("a")
    assert (await center.get_agent("a")).next_state == "logged_out"
    ended = await center.end_wrap_up("a")
    assert (ended.state, ended.next_state, ended.wrap_up_until) == ("logged_out", None, None)
    assert {"type": "wrap_up_ended", "agent": "a", "state": "logged_out",
            "how": "ended"} in await events(center)
    await check_invariants(center)


async def test_opening_and_closing_leave_breaks_and_logged_out_agents(center: Center) -> None:
    await center.create_agent("idle", "A", "B", ["en"])
    await center.create_agent("lunch", "A", "B", ["en"])
    await center.create_agent("home", "A", "B", ["en"])
    await center.start_break("lunch", "lunch")
    await center.log_out("home")
    assert await center.open() == 1
    states = {a.id: (a.state.value, a.reason) for a in await center.list_agents()}
    assert states == {"idle": ("available", None), "lunch": ("unavailable", "lunch"),
                      "home": ("logged_out", None)}
    assert await center.close() == 1
    states = {a.id: (a.state.value, a.reason) for a in await center.list_agents()}
    assert states == {"idle": ("unavailable", None), "lunch": ("unavailable", "lunch"),
                      "home": ("logged_out", None)}
    stats = await center.stats()
    assert (stats.agents["logged_out"], stats.agents["unavailable"]) == (1, 2)
    await check_invariants(center)


async def test_opening_leaves_a_break_pending_after_a_contact(center: Center) -> None:
    cid = await busy(center)
    await center.start_break("a", "lunch")
    await center.open()
    assert (await center.get_agent("a")).next_reason == "lunch"
    await center.complete_contact(cid)
    assert (await center.get_agent("a")).reason == "lunch"


async def test_a_logged_out_agent_logs_in_and_may_be_deleted(center: Center) -> None:
    await center.create_agent("a", "A", "B", ["en"], available=True)
    out = await center.log_out("a")
    assert (out.state, out.available_since) == ("logged_out", None)
    assert await center.redis.zscore(center.keys.avail("en"), "a") is None
    waiting = await center.create_contact(["en"])
    assert await center.dispatch() == []
    await center.set_available("a")
    [done] = await center.dispatch()
    assert (done.contact, done.agent) == (waiting.id, "a")
    await center.complete_contact(waiting.id)
    await center.log_out("a")
    await center.delete_agent("a")
    await check_invariants(center)


async def test_breaks_race_dispatch_rounds_without_losing_anyone(center: Center) -> None:
    """State changes race rounds: every agent ends on one contact at most, a break asked
    while a round gave it a contact starts when that contact ends."""
    for i in range(6):
        await center.create_agent(f"a{i}", "A", "B", ["en"], available=True)
    contacts = [(await center.create_contact(["en"])).id for _ in range(8)]

    async def breaks() -> None:
        for i in range(6):
            await center.start_break(f"a{i}", "lunch")
            await asyncio.sleep(0)

    await asyncio.gather(breaks(), *(center.dispatch(most=1) for _ in range(6)))
    await check_invariants(center)
    for agent in await center.list_agents():
        if agent.state == "busy":
            assert (agent.next_state, agent.next_reason) == ("unavailable", "lunch")
            await center.complete_contact(agent.contact or "")
        assert (await center.get_agent(agent.id)).reason == "lunch"
    assert await center.dispatch() == []
    queued = [c for c in await center.get_contacts(contacts) if c and c.state == "queued"]
    assert len(queued) >= 2
    await check_invariants(center)
