"""Wrap-up (after-contact work, issue 14): with a center's wrap-up time, an agent whose
contact is completed is in wrap_up (on no contact, in no availability set) for that long,
then available (or unavailable, if it asked meanwhile). Redis times it: any dispatch round
ends the wrap-ups that are due, and the dispatchers wake for the next one.

No sleep and hope: a wrap-up is either long (60 s: it cannot end during the test) or
tiny (a few ms), and then the test waits, with a deadline, until the server's clock has
passed its end, or until a dispatcher has ended it.
"""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
import time

import pytest
from acd_invariants import REPO, check_invariants, dispatcher_processes, wait_for

from acd import Center, InvalidInput, InvalidState, NotFound
from acd.reconcile import reconcile


async def busy(center: Center, agent: str = "a", skills: tuple[str, ...] = ("en",)) -> str:
    """Agent ``agent`` on a new contact (skill en); returns the contact id."""
    await center.create_agent(agent, "A", "B", list(skills), available=True)
    contact = await center.create_contact(["en"])
    [done] = await center.dispatch()
    assert done.agent == agent
    return contact.id


async def past_end(center: Center, agent: str = "a") -> int:
    """Until the server's clock is past the agent's wrap-up end; returns that end."""
    ends = (await center.get_agent(agent)).wrap_up_until
    assert ends is not None, f"agent {agent} is not in wrap-up"
    deadline = time.monotonic() + 5
    while await center.server_ms() <= ends:
        assert time.monotonic() < deadline, "the server's clock does not move"
        await asyncio.sleep(0.001)
    return ends


async def event_types(center: Center, after: str = "-") -> list[tuple[str, dict[str, str]]]:
    rows = await center.redis.xrange(center.keys.events, min=after)
    return [(f["type"], f) for _, f in rows]


async def test_off_by_default_a_completed_contact_frees_its_agent_at_once(
        center: Center) -> None:
    assert await center.wrap_up_seconds() == 0
    cid = await busy(center)
    await center.complete_contact(cid)
    agent = await center.get_agent("a")
    assert (agent.state, agent.wrap_up_until) == ("available", None)
    round_ = await center.dispatch_round()
    assert round_.wrap_up_in_ms is None, "nothing pending: the reply is today's"
    assert not await center.redis.exists(center.keys.wrap_up)
    assert "wrap_up_due" not in await center.redis.hgetall(center.keys.meta)


async def test_a_completed_contacts_agent_is_in_wrap_up_and_gets_no_contact(
        center: Center) -> None:
    cid = await busy(center)
    assert await center.set_wrap_up(60) == 0
    assert await center.wrap_up_seconds() == 60
    ended = await center.complete_contact(cid)
    agent = await center.get_agent("a")
    assert (agent.state, agent.contact, agent.available_since) == ("wrap_up", None, None)
    assert agent.wrap_up_until == ended.ended_at + 60_000
    assert await center.redis.zscore(center.keys.avail("en"), "a") is None
    assert await center.redis.zscore(center.keys.wrap_up, "a") == agent.wrap_up_until
    waiting = await center.create_contact(["en"])
    round_ = await center.dispatch_round()
    assert round_.pairs == [], "an agent in wrap-up is not dispatched to"
    assert round_.wrap_up_in_ms is not None and 0 < round_.wrap_up_in_ms <= 60_000
    assert (await center.get_contact(waiting.id)).state == "queued"
    assert (await center.stats()).agents["wrap_up"] == 1
    await check_invariants(center)
    kinds = [(t, f.get("until")) for t, f in await event_types(center)]
    assert ("wrap_up_started", str(agent.wrap_up_until)) in kinds


async def test_a_dispatch_round_ends_a_due_wrap_up_and_serves_with_that_agent(
        center: Center) -> None:
    cid = await busy(center)
    await center.set_wrap_up(0.02)
    await center.complete_contact(cid)
    waiting = await center.create_contact(["en"])
    ends = await past_end(center)
    assert [(a.contact, a.agent) for a in await center.dispatch()] == [(waiting.id, "a")]
    ended = [f for t, f in await event_types(center) if t == "wrap_up_ended"]
    assert [(f["agent"], f["state"], f["how"]) for f in ended] == [("a", "available", "timer")]
    assert (await center.get_agent("a")).last_assigned_at is not None
    assert await center.redis.zcard(center.keys.wrap_up) == 0
    assert "wrap_up_due" not in await center.redis.hgetall(center.keys.meta)
    assert ends > 0
    await check_invariants(center)


async def test_the_laa_score_is_the_wrap_ups_end(center: Center) -> None:
    """Available since its wrap-up ended: behind an agent available before that end, ahead
    of one available after it, even when the round that ends it runs later."""
    cid = await busy(center)
    await center.create_agent("early", "E", "A", ["en"], available=True)
    await center.set_wrap_up(0.02)
    await center.complete_contact(cid)
    ends = await past_end(center)
    await center.create_agent("late", "L", "A", ["en"], available=True)
    assert (await center.get_agent("late")).available_since > ends
    await center.dispatch_round()  # ends a's wrap-up: nothing waits
    a = await center.get_agent("a")
    assert (a.state, a.available_since) == ("available", ends)
    assert await center.redis.zscore(center.keys.avail("en"), "a") == ends
    assert [c.agent for c in await center.candidates(["en"])] == ["early", "a", "late"]
    await check_invariants(center)


async def test_unavailable_during_wrap_up_applies_at_its_end(center: Center) -> None:
    cid = await busy(center)
    await center.set_wrap_up(60)
    await center.complete_contact(cid)
    with pytest.raises(InvalidState, match="agent a is in wrap-up until"):
        await center.set_available("a")
    agent = await center.set_unavailable("a")
    assert (agent.state, agent.next_state) == ("wrap_up", "unavailable")
    assert (await center.set_available("a")).next_state is None, "available cancels it"
    await center.set_unavailable("a")
    await check_invariants(center)
    agent = await center.end_wrap_up("a")
    assert (agent.state, agent.next_state, agent.available_since) == ("unavailable", None, None)
    await check_invariants(center)


async def test_unavailable_asked_while_busy_applies_after_the_wrap_up(center: Center) -> None:
    cid = await busy(center)
    await center.set_unavailable("a")
    await center.set_wrap_up(0.02)
    await center.complete_contact(cid)
    agent = await center.get_agent("a")
    assert (agent.state, agent.next_state) == ("wrap_up", "unavailable")
    await past_end(center)
    await center.dispatch_round()
    assert (await center.get_agent("a")).state == "unavailable"
    ended = [f for t, f in await event_types(center) if t == "wrap_up_ended"]
    assert [(f["state"], f["how"]) for f in ended] == [("unavailable", "timer")]
    await check_invariants(center)


async def test_end_wrap_up_refuses_a_bad_agent_id_naming_it(center: Center) -> None:
    with pytest.raises(InvalidInput, match="agent id 'no way' is not valid"):
        await center.end_wrap_up("no way")


async def test_end_wrap_up_now(center: Center) -> None:
    cid = await busy(center)
    await center.set_wrap_up(60)
    ended = await center.complete_contact(cid)
    waiting = await center.create_contact(["en"])
    before = await center.redis.xrevrange(center.keys.wake, count=1)
    agent = await center.end_wrap_up("a")
    assert agent.state == "available"
    assert agent.available_since is not None and agent.available_since >= (ended.ended_at or 0)
    assert agent.wrap_up_until is None
    after = await center.redis.xrevrange(center.keys.wake, count=1)
    assert after != before and after[0][1]["why"] == "agent", "the dispatchers are woken"
    assert [a.contact for a in await center.dispatch()] == [waiting.id]
    with pytest.raises(InvalidState, match="agent a is busy, not in wrap-up"):
        await center.end_wrap_up("a")
    with pytest.raises(NotFound):
        await center.end_wrap_up("nobody")
    with pytest.raises(InvalidInput):
        await center.end_wrap_up("no spaces")
    kinds = [(f["state"], f["how"]) for t, f in await event_types(center) if t == "wrap_up_ended"]
    assert kinds == [("available", "ended")]
    await check_invariants(center)


async def test_closing_and_opening_during_wrap_up(center: Center) -> None:
    cid = await busy(center)
    await center.set_wrap_up(60)
    await center.complete_contact(cid)
    await center.close()
    agent = await center.get_agent("a")
    assert (agent.state, agent.next_state) == ("wrap_up", "unavailable")
    await center.open()
    agent = await center.get_agent("a")
    assert (agent.state, agent.next_state) == ("wrap_up", None)
    await check_invariants(center)


async def test_deleting_an_agent_in_wrap_up(center: Center) -> None:
    cid = await busy(center)
    await center.set_wrap_up(60)
    await center.complete_contact(cid)
    await center.delete_agent("a")
    assert await center.redis.zcard(center.keys.wrap_up) == 0
    await check_invariants(center)
    # The center's next due time may stay early (never late): a round then finds
    # nothing due and drops it. Here it is a minute away: the round says so.
    round_ = await center.dispatch_round()
    assert round_.wrap_up_in_ms is not None and round_.wrap_up_in_ms <= 60_000


async def test_the_option_is_checked_and_wrap_ups_under_way_keep_their_end(
        center: Center) -> None:
    for bad in (-1, True, "30", math.nan, math.inf, 3600.5):
        with pytest.raises(InvalidInput, match="wrap_up_seconds"):
            await center.set_wrap_up(bad)  # type: ignore[arg-type]
    assert await center.set_wrap_up(2.5) == 0
    assert await center.set_wrap_up(0.0333) == 2.5
    assert await center.wrap_up_seconds() == 0.033, "kept to the ms"
    await center.set_wrap_up(60)
    cid = await busy(center)
    await center.complete_contact(cid)
    until = (await center.get_agent("a")).wrap_up_until
    assert await center.set_wrap_up(0) == 60
    assert (await center.get_agent("a")).wrap_up_until == until
    options = [f["ms"] for t, f in await event_types(center) if t == "wrap_up_option"]
    assert options == ["2500", "33", "60000", "0"]


async def test_many_due_wrap_ups_end_in_bounded_calls(center: Center) -> None:
    await center.set_wrap_up(0.01)
    for i in range(30):
        await center.create_agent(f"a{i:02d}", "A", "B", ["en"], available=True)
    contacts = [await center.create_contact(["en"]) for _ in range(30)]
    assert len(await center.dispatch(most=30)) == 30
    for c in contacts:
        await center.complete_contact(c.id)
    for i in range(30):
        await past_end(center, f"a{i:02d}")
    first = await center.dispatch_round()
    assert first.wrap_up_in_ms == 0, "25 ended, more are due: the next round starts now"
    assert await center.redis.zcard(center.keys.wrap_up) == 5
    assert await center.release_wrap_ups() == 5
    assert (await center.stats()).agents["available"] == 30
    await check_invariants(center)


async def test_the_reconciler_ends_due_wrap_ups_and_repairs_the_set(center: Center) -> None:
    cid = await busy(center)
    await center.create_agent("b", "B", "C", ["en"])
    await center.set_wrap_up(0.02)
    await center.complete_contact(cid)
    await past_end(center)
    await center.redis.zadd(center.keys.wrap_up, {"b": 1})  # written around the functions
    report = await reconcile(center)
    assert report.repaired["wrap_up:ended"] == 1
    assert report.repaired["agent:left_wrap_up"] == 1
    assert (await center.get_agent("a")).state == "available"
    await check_invariants(center)
    # An agent in wrap-up whose entry was lost gets it back, and then ends.
    cid = (await center.create_contact(["en"])).id
    await center.dispatch()
    await center.set_wrap_up(60)
    await center.complete_contact(cid)
    await center.redis.zrem(center.keys.wrap_up, "a")
    assert (await reconcile(center)).repaired["agent:wrap_up"] == 1
    await check_invariants(center)
    assert (await reconcile(center)).repairs == 0, "a second pass finds nothing"


async def test_a_dispatcher_wakes_for_a_wrap_up_end(center: Center, redis_url: str) -> None:
    """Nothing wakes a dispatcher when a wrap-up ends: it times the end itself. With a
    wait of a minute, the agent would otherwise stay in wrap-up for that minute."""
    with dispatcher_processes(center.name, redis_url, 1, idle_ms=60_000):
        await center.set_wrap_up(0.05)
        await center.create_agent("a", "A", "B", ["en"], available=True)
        first = await center.create_contact(["en"])
        await wait_for(lambda: _state(center, "a", "busy"), 20, "the first assignment")
        second = await center.create_contact(["en"])
        await center.complete_contact(first.id)
        await wait_for(lambda: _contact_state(center, second.id, "assigned"), 20,
                       "the agent, out of its wrap-up, to get the second contact")
    await check_invariants(center)


async def test_the_every_center_dispatcher_wakes_for_a_wrap_up_end(
        center: Center, redis_url: str, subprocess_env: dict[str, str]) -> None:
    cmd = [sys.executable, "-m", "acd.dispatcher", "--redis-url", redis_url,
           "--idle-ms", "60000"]
    await center.set_wrap_up(0.05)
    cid = await busy(center)
    proc = subprocess.Popen(cmd, env=subprocess_env, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        # Running: it serves the center (a contact gets assigned), then times the wrap-up.
        await center.create_agent("b", "B", "C", ["en"], available=True)
        probe = await center.create_contact(["en"])
        await wait_for(lambda: _contact_state(center, probe.id, "assigned"), 30,
                       "the every-center dispatcher to serve the center")
        await center.complete_contact(cid)
        await wait_for(lambda: _state(center, "a", "available"), 20,
                       "the wrap-up to end without a wake-up")
    finally:
        proc.kill()
        proc.wait(timeout=10)
    await check_invariants(center)


@pytest.mark.parametrize("then", ["another dispatcher", "the reconciler"])
async def test_a_dispatcher_killed_during_a_wrap_up_strands_nobody(
        center: Center, redis_url: str, then: str) -> None:
    with dispatcher_processes(center.name, redis_url, 1) as pool:
        await center.set_wrap_up(0.3)
        await center.create_agent("a", "A", "B", ["en"], available=True)
        first = await center.create_contact(["en"])
        await wait_for(lambda: _state(center, "a", "busy"), 20, "the assignment")
        await center.complete_contact(first.id)
        assert (await center.get_agent("a")).state == "wrap_up"
        pool.kill(pool.procs[0])  # kill -9 while the agent is in wrap-up
        waiting = await center.create_contact(["en"])
        await past_end(center)
        assert (await center.get_agent("a")).state == "wrap_up", "nobody ended it yet"
        if then == "another dispatcher":
            pool.spawn()
            await wait_for(lambda: _contact_state(center, waiting.id, "assigned"), 20,
                           "another dispatcher to end the wrap-up and assign")
        else:
            report = await reconcile(center)
            assert report.repaired["wrap_up:ended"] == 1
            assert (await center.get_agent("a")).state == "available"
    await check_invariants(center)


async def test_state_changes_racing_dispatch_rounds_keep_every_promise(
        center: Center) -> None:
    """Agents end contacts into tiny wrap-ups while rounds, state changes, early ends and
    open/close run at once: every call succeeds or is refused as documented, and the
    center keeps its promises after each wave."""
    await center.set_wrap_up(0.003)
    agents = [f"a{i}" for i in range(6)]
    for aid in agents:
        await center.create_agent(aid, "A", "B", ["en"], available=True)
    for wave in range(15):
        for _ in range(4):
            await center.create_contact(["en"])
        assigned = await center.dispatch(most=4)
        calls = [center.complete_contact(a.contact) for a in assigned]
        calls += [center.dispatch_round() for _ in range(3)]
        calls += [center.set_unavailable(agents[wave % 6]), center.set_available(
            agents[(wave + 1) % 6]), center.end_wrap_up(agents[(wave + 2) % 6])]
        calls += [center.close() if wave % 5 == 4 else center.open()]
        for outcome in await asyncio.gather(*calls, return_exceptions=True):
            if isinstance(outcome, BaseException):
                assert isinstance(outcome, InvalidState), repr(outcome)
        await check_invariants(center)
    await center.open()
    await center.release_wrap_ups()
    for aid in agents:
        agent = await center.get_agent(aid)
        if agent.state == "wrap_up":
            await past_end(center, aid)
    await center.release_wrap_ups()
    states = {a.state for a in await center.list_agents()}
    assert "wrap_up" not in states
    await check_invariants(center)


async def _state(center: Center, aid: str, state: str) -> bool:
    return (await center.get_agent(aid)).state == state


async def _contact_state(center: Center, cid: str, state: str) -> bool:
    return (await center.get_contact(cid)).state == state
