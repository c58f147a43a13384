"""Steps by waiting time (issue 14): requirement relaxation, overflow to other skills and
a maximum wait that closes a contact, timed by Redis (any dispatch round takes the steps
that are due), and abandonment as a KPI with its wait.

No sleep and hope: a step is either long (an hour: it cannot come due during the test)
and then the test makes time pass for it (``time_passes``: its entry in the due set
says it is due now, as the clock would an hour later), or tiny (1 ms) and the test waits,
with a deadline, until the server's clock is past it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from acd_invariants import check_invariants

from acd import Center, InvalidInput
from acd.reconcile import reconcile

HOUR = 3600.0


async def time_passes(center: Center, *cids: str) -> None:
    """The next step of each contact is due now: as if its wait reached after_s."""
    k = center.keys
    for cid in cids:
        await center.redis.zadd(k.steps_due, {cid: 0})
    await center.redis.hset(k.meta, "step_due", 0)


async def past(center: Center, ms: int) -> None:
    """Until the server's clock is past ``ms``."""
    deadline = time.monotonic() + 5
    while await center.server_ms() <= ms:
        assert time.monotonic() < deadline, "the server's clock does not move"
        await asyncio.sleep(0.001)


async def events(center: Center, kind: str) -> list[dict[str, str]]:
    rows = await center.redis.xrange(center.keys.events)
    return [f for _, f in rows if f["type"] == kind]


RELAX = [{"after_s": HOUR, "skills": ["billing"]}]


async def test_off_by_default_nothing_is_stored_and_no_timer_runs(center: Center) -> None:
    contact = await center.create_contact(["billing", "spanish"])
    assert contact.steps is None and contact.steps_taken == []
    raw = await center.redis.execute_command("JSON.GET", center.keys.contact(contact.id), ".")
    assert "steps" not in raw, "a contact without steps stores what it stored before"
    round_ = await center.dispatch_round()
    assert round_.wrap_up_in_ms is None
    assert not await center.redis.exists(center.keys.steps_due, center.keys.step_defaults)
    assert "step_due" not in await center.redis.hgetall(center.keys.meta)


async def test_a_relaxed_contact_is_served_by_an_agent_with_the_fewer_skills(
        center: Center) -> None:
    await center.create_agent("a", "A", "B", ["billing"], available=True)
    contact = await center.create_contact(["billing", "spanish"], "c1", steps=RELAX)
    assert contact.steps is not None and contact.steps[0].after_ms == 3_600_000
    assert await center.redis.zscore(center.keys.steps_due, "c1") == contact.queued_at + 3_600_000
    round_ = await center.dispatch_round()
    assert round_.pairs == [], "nobody has spanish: it waits"
    assert round_.wrap_up_in_ms is not None and 0 < round_.wrap_up_in_ms <= 3_600_000, \
        "the dispatcher is told when the step is due"
    await time_passes(center, "c1")
    assert [(a.contact, a.agent) for a in await center.dispatch()] == [("c1", "a")]
    served = await center.get_contact("c1")
    assert served.skills == ["billing"]
    [taken] = served.steps_taken
    assert (taken.before, taken.skills, taken.after_ms) == (["billing", "spanish"],
                                                            ["billing"], 3_600_000)
    [relaxed] = await events(center, "contact_relaxed")
    assert (relaxed["contact"], relaxed["from"], relaxed["to"]) == ("c1", "billing,spanish",
                                                                    "billing")
    assert (await center.counters())["relaxed"] == 1
    assert (await center.outcomes())["billing,spanish"]["relaxed"] == 1
    await check_invariants(center)


async def test_a_step_drops_minimum_levels_too(center: Center) -> None:
    # A step's skills are needed at any level (see "Steps by waiting time" in acd/lua/04_steps.lua).
    await center.create_agent("a", "A", "B", ["billing"], available=True)  # level 1
    contact = await center.create_contact(["billing"], "c1", min_levels={"billing": 3},
                                          steps=RELAX)
    assert (await center.dispatch_round()).pairs == [], "nobody has billing at level 3"
    await time_passes(center, "c1")
    assert [(a.contact, a.agent) for a in await center.dispatch()] == [("c1", "a")]
    served = await center.get_contact("c1")
    assert served.skills == ["billing"] and not served.min_levels
    [relaxed] = await events(center, "contact_relaxed")
    assert (relaxed["from"], relaxed["to"]) == ("billing:3", "billing")
    assert contact.min_levels == {"billing": 3}
    await check_invariants(center)


async def test_a_relaxed_contact_keeps_its_place_by_arrival(center: Center) -> None:
    await center.create_contact(["billing", "spanish"], "first", steps=RELAX)
    await center.create_contact(["billing"], "second")
    await time_passes(center, "first")
    await center.release_steps()
    await center.create_agent("a", "A", "B", ["billing"], available=True)
    [done] = await center.dispatch(most=1)
    assert done.contact == "first", "it arrived first: relaxing it keeps that place"
    await check_invariants(center)


async def test_a_tiny_step_comes_due_by_the_servers_clock(center: Center) -> None:
    await center.create_agent("a", "A", "B", ["billing"], available=True)
    contact = await center.create_contact(["billing", "spanish"], "c1",
                                          steps=[{"after_s": 0.001, "skills": ["billing"]}])
    await past(center, contact.queued_at + 1)
    assert [a.contact for a in await center.dispatch()] == ["c1"]


async def test_overflow_moves_it_to_other_skills_then_a_maximum_wait_closes_it(
        center: Center) -> None:
    steps = [{"after_s": 30, "skills": ["sales"]}, {"after_s": 60, "close": "max_wait"}]
    contact = await center.create_contact(["support"], "c1", steps=steps)
    await time_passes(center, "c1")
    assert await center.release_steps() == 1
    moved = await center.get_contact("c1")
    assert (moved.state, moved.skills) == ("queued", ["sales"])
    assert await center.redis.zscore(center.keys.steps_due, "c1") == contact.queued_at + 60_000
    assert [e["to"] for e in await events(center, "contact_overflowed")] == ["sales"]
    await check_invariants(center)
    await time_passes(center, "c1")
    await center.dispatch()
    closed = await center.get_contact("c1")
    assert (closed.state, closed.close_reason) == ("closed", "max_wait")
    assert closed.ended_at is not None and [t.close for t in closed.steps_taken] == [None,
                                                                                  "max_wait"]
    assert await center.queue() == []
    assert not await center.redis.exists(center.keys.steps_due)
    [event] = await events(center, "contact_closed")
    assert (event["reason"], event["skills"]) == ("max_wait", "sales")
    counters = await center.counters()
    assert (counters["overflowed"], counters["closed"]) == (1, 1)
    assert counters.get("abandoned", 0) == 0, "closed by the center, not abandoned"
    outcomes = await center.outcomes()
    assert outcomes["support"]["overflowed"] == 1 and outcomes["sales"]["closed"] == 1
    assert 0 < await center.redis.ttl(center.keys.contact("c1")) <= 3600
    await check_invariants(center)


async def test_a_step_due_while_the_contact_is_assigned_does_nothing(center: Center) -> None:
    await center.create_agent("a", "A", "B", ["billing", "spanish"], available=True)
    await center.create_contact(["billing", "spanish"], "c1",
                                steps=[{"after_s": HOUR, "close": "max_wait"}])
    await center.dispatch()
    await time_passes(center, "c1")
    await center.dispatch()
    contact = await center.get_contact("c1")
    assert (contact.state, contact.steps_taken) == ("assigned", [])
    assert not await center.redis.exists(center.keys.steps_due)
    await center.complete_contact("c1")
    assert (await center.get_contact("c1")).state == "completed"
    await check_invariants(center)


async def test_ending_a_contact_removes_its_timer(center: Center) -> None:
    await center.create_contact(["en"], "c1", steps=[{"after_s": HOUR, "close": "x"}])
    await center.abandon_contact("c1")
    assert not await center.redis.exists(center.keys.steps_due)


async def test_a_centers_default_applies_to_new_contacts_without_their_own(
        center: Center) -> None:
    assert await center.set_default_steps(["spanish", "billing"], RELAX) == []
    assert [s.skills for s in (await center.default_steps())["billing,spanish"]] == [
        ["billing"]]
    by_default = await center.create_contact(["billing", "spanish"])
    assert by_default.steps is not None and by_default.steps[0].skills == ["billing"]
    assert (await center.create_contact(["billing", "spanish"], steps=[])).steps is None
    assert (await center.create_contact(["billing"])).steps is None, "another combination"
    previous = await center.set_default_steps(["billing", "spanish"], [])
    assert [s.skills for s in previous] == [["billing"]]
    assert await center.default_steps() == {}
    assert "step_defaults" not in await center.redis.hgetall(center.keys.meta)
    assert (await center.create_contact(["billing", "spanish"])).steps is None


@pytest.mark.parametrize(("steps", "message"), [
    ([{"after_s": 0, "skills": ["a"]}], "greater than 0"),
    ([{"after_s": 10}], "either skills or close"),
    ([{"after_s": 10, "skills": ["a"], "close": "x"}], "either skills or close"),
    ([{"after_s": 10, "skills": []}], "at least 1"),
    ([{"after_s": 10, "skills": ["a", "a"]}], "repeated: a"),
    ([{"after_s": 10, "skills": ["bad skill"]}], "is not valid"),
    ([{"after_s": 10, "skills": ["a"]}, {"after_s": 10, "skills": ["c"]}],
     "steps[1]: after_s 10 must be more than the step before"),
    ([{"after_s": 10, "close": "x"}, {"after_s": 20, "skills": ["a"]}],
     "steps[0]: a close ends the contact"),
    ([{"after_s": 10, "skills": ["b", "a"]}], "what the contact needs already"),
    ([{"after_s": 10, "skills": ["a"], "when": 1}], "unknown field 'when'"),
    ([{"after_s": True, "skills": ["a"]}], "valid number"),
])
async def test_bad_steps_are_refused_naming_what_is_wrong(
        center: Center, steps: list[Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("[", r"\[").replace("]", r"\]")):
        await center.create_contact(["a", "b"], "c1", steps=steps)
    with pytest.raises(InvalidInput, match=message.replace("[", r"\[").replace("]", r"\]")):
        await center.set_default_steps(["a", "b"], steps)
    assert await center.queue() == [] and await center.default_steps() == {}


async def test_a_default_for_a_bad_skill_is_refused_naming_it(center: Center) -> None:
    with pytest.raises(InvalidInput, match="skill 'bad skill' is not valid"):
        await center.set_default_steps(["a", "bad skill"], [])
    with pytest.raises(InvalidInput, match="skill must be a string, not int"):
        await center.set_default_steps([7], [])
    assert await center.default_steps() == {}


async def test_abandonment_is_a_kpi_with_its_wait_per_combination(center: Center) -> None:
    contact = await center.create_contact(["en", "fr"], "c1")
    await past(center, contact.queued_at + 2)
    ended = await center.abandon_contact("c1")
    wait = (ended.ended_at or 0) - contact.queued_at
    assert wait >= 2
    assert (await center.counters())["abandon_wait_ms"] == wait
    assert (await center.stats()).mean_abandon_wait_ms == wait
    assert (await center.outcomes())["en,fr"] == {"relaxed": 0, "overflowed": 0, "closed": 0,
                                                   "abandoned": 1, "abandon_wait_ms": wait}
    [event] = await events(center, "contact_abandoned")
    assert (event["wait_ms"], event["skills"]) == (str(wait), "en,fr")


async def test_a_lost_timer_is_repaired_and_the_step_then_taken(center: Center) -> None:
    await center.create_contact(["billing", "spanish"], "c1", steps=RELAX)
    await center.redis.delete(center.keys.steps_due)
    await center.redis.hdel(center.keys.meta, "step_due")
    report = await reconcile(center)
    assert report.repaired["contact:step_due"] == 1
    await check_invariants(center)
    tiny = await center.create_contact(["billing", "spanish"], "c2", steps=[
        {"after_s": 0.001, "skills": ["billing"]}])
    await past(center, tiny.queued_at + 1)
    await center.redis.hdel(center.keys.meta, "step_due")  # lost again: the set is the truth
    report = await reconcile(center)
    assert report.repaired["steps:taken"] == 1, "no dispatcher ran: the reconciler took it"
    assert (await center.get_contact("c2")).skills == ["billing"]
    assert (await center.get_contact("c1")).skills == ["billing", "spanish"]
    assert (await reconcile(center)).repairs == 0
    await check_invariants(center)


async def test_a_contact_requeued_by_a_repair_gets_its_timer_again(center: Center) -> None:
    await center.create_agent("a", "A", "B", ["billing", "spanish"], available=True)
    await center.create_contact(["billing", "spanish"], "c1", steps=RELAX)
    await center.dispatch()
    await time_passes(center, "c1")
    await center.dispatch()  # due while assigned: the entry goes
    await center.redis.delete(center.keys.agent("a"))  # its agent is lost
    await reconcile(center)
    assert (await center.get_contact("c1")).state == "queued"
    await check_invariants(center)
    assert await center.redis.zscore(center.keys.steps_due, "c1") is not None


async def test_steps_race_with_dispatch_and_assignment(center: Center) -> None:
    """Contacts with tiny steps arrive while dispatch rounds, step releases and agents
    run at once: every contact ends served, closed or waiting, never lost, never twice."""
    for i in range(6):
        await center.create_agent(f"a{i}", "A", "B", ["billing"] if i % 2 else ["sales"],
                                  available=True)
    steps = [{"after_s": 0.001, "skills": ["billing"]}, {"after_s": 0.003, "close": "max"}]
    ids = [f"c{i}" for i in range(60)]

    async def arrivals() -> None:
        for cid in ids:
            await center.create_contact(["billing", "spanish"] if int(cid[1:]) % 3
                                        else ["sales"], cid, steps=steps)

    async def rounds() -> None:
        for _ in range(60):
            for done in await center.dispatch():
                await center.complete_contact(done.contact)

    await asyncio.gather(arrivals(), rounds(), rounds(), center.release_steps())
    last = max(c.queued_at for c in await center.get_contacts(ids) if c)
    await past(center, last + 4)
    await center.dispatch()
    final = [c.state for c in await center.get_contacts(ids) if c]
    assert len(final) == 60 and set(final) <= {"completed", "closed", "assigned", "queued"}
    assert "queued" not in final, "every step was due: served or closed"
    await check_invariants(center)


async def test_a_waiting_dispatcher_wakes_for_the_step_with_no_other_call(
        center: Center) -> None:
    """Only the server's timer moves the contact: the dispatcher learns when the step is
    due from its round's reply and times its wait (its idle wait is a minute here)."""
    from acd.dispatcher import Dispatcher

    await center.create_agent("a", "A", "B", ["billing"], available=True)
    dispatcher = Dispatcher(center, idle_ms=60_000)
    task = asyncio.create_task(dispatcher.run())
    try:
        contact = await center.create_contact(["billing", "spanish"], "c1", steps=[
            {"after_s": 0.2, "skills": ["billing"]}])
        deadline = time.monotonic() + 10
        while (await center.get_contact("c1")).state != "assigned":
            assert time.monotonic() < deadline, "the step was not taken by the dispatcher"
            await asyncio.sleep(0.01)
        served = await center.get_contact("c1")
        assert served.assigned_at is not None
        assert served.assigned_at >= contact.queued_at + 200, "not before the step was due"
    finally:
        dispatcher.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
