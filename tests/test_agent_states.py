"""One contact per agent: what state changes do to an agent on a contact.

An agent on a contact (busy) keeps it until the contact ends; nothing else releases it.
"unavailable" on a busy agent means not ready after this contact (``next_state``, applied
when the contact ends); "available" cancels that, and is refused while nothing is pending:
the agent becomes available when its contact ends.
"""

from __future__ import annotations

import pytest
from acd_invariants import check_invariants

from acd import Center, InvalidState
from acd.invariants import violations


async def busy_agent(center: Center, agent: str = "a") -> str:
    """An agent with skill 'en' on a contact; returns the contact id."""
    await center.create_agent(agent, "A", "B", ["en"], available=True)
    contact = await center.create_contact(["en"])
    [assignment] = await center.dispatch()
    assert assignment.agent == agent
    return contact.id


async def test_a_late_available_never_gives_an_agent_a_second_contact(center: Center) -> None:
    # The sequence of issue 9: complete, the next contact arrives, then "available".
    c1 = await busy_agent(center)
    await center.complete_contact(c1)
    c2 = await center.create_contact(["en"])
    assert [a.contact for a in await center.dispatch()] == [c2.id]
    with pytest.raises(InvalidState, match=f"agent a is on contact {c2.id}"):
        await center.set_available("a")
    c3 = await center.create_contact(["en"])
    assert await center.dispatch() == [], "c3 waits while a is on c2"
    agent = await center.get_agent("a")
    assert (agent.state, agent.contact) == ("busy", c2.id)
    assert (await center.get_contact(c2.id)).agent == "a"
    assert (await center.get_contact(c3.id)).state == "queued"
    await check_invariants(center)
    await center.complete_contact(c2.id)
    assert [(a.contact, a.agent) for a in await center.dispatch()] == [(c3.id, "a")]
    await check_invariants(center)


async def test_available_before_complete_keeps_the_agent_on_its_contact(
        center: Center) -> None:
    # Clients that set the agent available first, then complete the contact.
    first = await busy_agent(center)
    with pytest.raises(InvalidState):
        await center.set_available("a")
    second = await center.create_contact(["en"])
    assert await center.dispatch() == []
    await center.complete_contact(first)
    assert [a.contact for a in await center.dispatch()] == [second.id]
    await center.complete_contact(first)  # a repeated completion must not free the agent
    agent = await center.get_agent("a")
    assert (agent.state, agent.contact) == ("busy", second.id)
    await check_invariants(center)


async def test_a_refused_change_writes_nothing(center: Center) -> None:
    cid = await busy_agent(center)
    before = await center.get_agent("a")
    events = await center.redis.xlen(center.keys.events)
    with pytest.raises(InvalidState, match=cid):
        await center.set_available("a")
    assert await center.get_agent("a") == before
    assert await center.redis.xlen(center.keys.events) == events


async def test_unavailable_on_a_busy_agent_takes_effect_when_the_contact_ends(
        center: Center) -> None:
    cid = await busy_agent(center)
    agent = await center.set_unavailable("a")
    assert (agent.state, agent.contact, agent.next_state) == ("busy", cid, "unavailable")
    assert (await center.get_contact(cid)).state == "assigned"
    assert (await center.set_unavailable("a")) == agent, "asking twice changes nothing"
    await check_invariants(center)
    waiting = await center.create_contact(["en"])
    assert await center.dispatch() == []
    agent = await center.get_agent("a")
    assert (agent.state, agent.contact) == ("busy", cid)
    await center.complete_contact(cid)
    agent = await center.get_agent("a")
    assert (agent.state, agent.contact, agent.next_state) == ("unavailable", None, None)
    assert await center.dispatch() == [], "not ready after the contact: nothing assigned"
    await check_invariants(center)
    await center.set_available("a")
    assert [a.contact for a in await center.dispatch()] == [waiting.id]


async def test_available_cancels_a_pending_unavailable(center: Center) -> None:
    cid = await busy_agent(center)
    await center.set_unavailable("a")
    agent = await center.set_available("a")
    assert (agent.state, agent.contact, agent.next_state) == ("busy", cid, None)
    await center.complete_contact(cid)
    assert (await center.get_agent("a")).state == "available"
    await check_invariants(center)


async def test_closing_and_opening_keep_agents_on_their_contacts(center: Center) -> None:
    cid = await busy_agent(center)
    await center.create_agent("idle", "I", "D", ["en"], available=True)
    assert await center.close() == 1, "only the idle agent changes now"
    agent = await center.get_agent("a")
    assert (agent.state, agent.contact, agent.next_state) == ("busy", cid, "unavailable")
    assert await center.open() == 1
    assert (await center.get_agent("a")).next_state is None
    await center.close()
    await center.complete_contact(cid)
    assert (await center.get_agent("a")).state == "unavailable", "closed: not ready after"
    await check_invariants(center)


async def test_state_change_events_say_what_happens_and_when(center: Center) -> None:
    cid = await busy_agent(center)
    after = (await center.redis.xrevrange(center.keys.events, count=1))[0][0]
    await center.set_unavailable("a")
    await center.complete_contact(cid)
    rows = await center.redis.xrange(center.keys.events, min=f"({after}")
    kinds = [(f["type"], f.get("next_state") or f.get("state") or "") for _, f in rows]
    assert kinds == [("agent_next_state", "unavailable"), ("agent_state", "unavailable"),
                     ("contact_completed", "")]


async def test_the_invariant_check_sees_both_sides(center: Center) -> None:
    # What the old code left behind: the agent released from c2 and given c3. The
    # agents' side alone looks fine (a names c3, c3 names a); the contacts' side does not.
    await center.create_agent("a", "A", "B", ["en"], available=True)
    c2 = await center.create_contact(["en"])
    c3 = await center.create_contact(["en"])
    await center.dispatch()
    await center.redis.execute_command(
        "JSON.MERGE", center.keys.contact(c3.id), ".",
        '{"state":"assigned","agent":"a"}')
    await center.redis.zrem(center.keys.queue, c3.id)
    await center.redis.hdel(center.keys.waiting_sigs, "en")
    await center.redis.execute_command(
        "JSON.MERGE", center.keys.agent("a"), ".", f'{{"contact":"{c3.id}"}}')
    found = await violations(center)
    assert any("agent a is named by 2 assigned contacts" in f for f in found), found
    assert any(f"assigned contact {c2.id} names agent a, who is busy on contact {c3.id}" in f
               for f in found), found
    assert not any("busy agent a" in f for f in found), "the agents' side looks fine"
