"""The reconciler (acd/reconcile.py) on a real Redis: each kind of damage a write around
the functions can leave is made by hand, the reconciler repairs it, every promise of
acd.invariants holds again, no contact is lost, and a second pass finds nothing. Also
with a dispatcher process running meanwhile."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest
from acd_invariants import check_invariants, dispatcher_processes, wait_for
from test_bounded_calls import slowlog  # noqa: F401 - a fixture, used by name

from acd import Center
from acd.commands import json_set
from acd.invariants import violations
from acd.naive import NaiveDispatcher
from acd.reconcile import reconcile

Damage = Callable[[Center], Awaitable[None]]


async def _setup(center: Center) -> None:
    """Two agents busy (a1 on c1, a2 on c2), one available (a3, en only), two waiting
    contacts nobody available can serve (c3: fr, c4: de+fr), one ended (c5)."""
    await center.create_agent("a1", "A", "One", ["en", "fr"])
    await center.create_agent("a2", "A", "Two", ["en"])
    for cid in ("c1", "c2"):
        await center.create_contact(["en"], cid)
    await center.set_available("a1")
    await center.set_available("a2")
    assert len(await center.dispatch()) == 2
    await center.create_agent("a3", "A", "Three", ["en"], available=True)
    await center.create_contact(["fr"], "c3")
    await center.create_contact(["de", "fr"], "c4")
    await center.create_contact(["en"], "c5")
    assert [a.contact for a in await center.dispatch()] == ["c5"]
    await center.complete_contact("c5")
    await check_invariants(center)


async def _drop_index_entry(c: Center) -> None:
    await c.redis.zrem(c.keys.combo("fr"), "c3")


async def _drop_queue_entry(c: Center) -> None:
    await c.redis.zrem(c.keys.queue, "c4")


async def _drop_both(c: Center) -> None:
    await c.redis.zrem(c.keys.queue, "c3")
    await c.redis.zrem(c.keys.combo("fr"), "c3")


async def _stale_queue_entry(c: Center) -> None:
    await c.redis.zadd(c.keys.queue, {"c1": 1.0, "gone": 2.0})
    await c.redis.zadd(c.keys.combo("en"), {"c1": 1.0, "gone": 2.0})


async def _lost_contact_of_busy_agent(c: Center) -> None:
    await c.redis.delete(c.keys.contact("c1"))


async def _lost_agent_side(c: Center) -> None:
    """The contact says assigned to a2, a2 says available: the assignment half-lost."""
    await json_set(c.redis, c.keys.agent("a2"), ".", {
        "id": "a2", "fname": "A", "lname": "Two", "skills": ["en"], "state": "available",
        "available_since": 5, "created_at": 1})
    await c.redis.zadd(c.keys.avail("en"), {"a2": 5})


async def _available_not_in_set(c: Center) -> None:
    await c.redis.zrem(c.keys.avail("en"), "a3")


async def _busy_in_set(c: Center) -> None:
    await c.redis.zadd(c.keys.avail("fr"), {"a1": 7})


async def _lost_parking(c: Center) -> None:
    await c.redis.hdel(c.keys.parked_on, "fr")
    await c.redis.zrem(c.keys.ready, "fr")


async def _wrong_count(c: Center) -> None:
    await c.redis.hset(c.keys.waiting_sigs, "de,fr", 5)


async def _unlisted_agent(c: Center) -> None:
    await c.redis.srem(c.keys.agents, "a3")
    await c.redis.srem(c.keys.skill_agents("en"), "a3")


DAMAGE: dict[str, Damage] = {
    "index entry deleted": _drop_index_entry,
    "queue entry deleted": _drop_queue_entry,
    "queue and index entries deleted": _drop_both,
    "stale queue and index entries": _stale_queue_entry,
    "busy agent's contact deleted": _lost_contact_of_busy_agent,
    "assignment lost on the agent's side": _lost_agent_side,
    "available agent missing from its set": _available_not_in_set,
    "busy agent in a set": _busy_in_set,
    "parked combination neither parked nor ready": _lost_parking,
    "combination count wrong": _wrong_count,
    "agent missing from the center's sets": _unlisted_agent,
}


@pytest.mark.parametrize("damage", list(DAMAGE), ids=list(DAMAGE))
async def test_each_damage_is_repaired(center: Center, damage: str) -> None:
    await _setup(center)
    await DAMAGE[damage](center)
    assert await violations(center), f"{damage}: the damage should break a promise"
    report = await reconcile(center, batch=2)  # small batches: every page boundary
    assert report.repairs > 0, report.as_dict()
    await check_invariants(center)
    assert not report.reported, report.reported
    # No contact lost: every waiting one still waits, c1/c2 are assigned or waiting again.
    states = {c.id: c.state.value for c in await center.get_contacts(
        ["c2", "c3", "c4", "c5"]) if c}
    assert states["c3"] == states["c4"] == "queued"
    assert states["c2"] in ("assigned", "queued") and states["c5"] == "completed"
    again = await reconcile(center)
    assert again.repairs == 0, again.as_dict()


async def test_a_contact_whose_agent_was_lost_is_served_again(center: Center) -> None:
    await _setup(center)
    await _lost_agent_side(center)
    await reconcile(center)
    assert (await center.get_contact("c2")).state.value == "queued"
    queue = [cid for cid, _ in await center.queue()]
    assert queue.index("c2") < queue.index("c3"), "it goes back to its place, the oldest"
    served = {a.contact: a.agent for a in await center.dispatch()}
    assert served == {"c2": "a2"}  # available since 5: the longest available
    await check_invariants(center)


async def test_a_healthy_center_is_left_alone(center: Center) -> None:
    await _setup(center)
    before = await center.redis.xlen(center.keys.events)
    report = await reconcile(center, batch=1)
    assert report.repairs == 0 and not report.reported, report.as_dict()
    assert report.checked["contacts"] == 5 and report.checked["agents"] == 3
    assert await center.redis.xlen(center.keys.events) == before


async def test_an_interrupted_skill_deletion_is_reported(center: Center) -> None:
    await _setup(center)
    await center.redis.hset(center.keys.meta, "deleting_skill:de", "1")
    report = await reconcile(center)
    assert report.reported and "skill de is being deleted" in report.reported[0]


async def test_a_manual_center_is_skipped(center: Center) -> None:
    await _setup(center)
    await center.set_dispatch_mode("manual")
    await _drop_index_entry(center)
    report = await reconcile(center)
    assert report.skipped and report.repairs == 0


async def test_a_contact_a_dead_textbook_dispatcher_held_is_queued_again(
        center: Center) -> None:
    """The lessons' flaw 1 (acd.naive): a textbook dispatcher dies between popping a
    contact and claiming an agent. Back in automatic mode, the reconciler queues it again
    at its place, and the real dispatch serves it."""
    class Died(Exception):
        pass

    async def die(_: str) -> None:
        raise Died

    await center.set_dispatch_mode("manual")
    await center.create_agent("a1", "A", "One", ["en"], available=True)
    await center.create_contact(["en"], "c1")
    with pytest.raises(Died):
        await NaiveDispatcher(center, after_pop=die).step()
    assert await center.queue() == []
    await center.set_dispatch_mode("automatic")
    report = await reconcile(center)
    assert report.repairs > 0 and [c for c, _ in await center.queue()] == ["c1"]
    assert [(a.contact, a.agent) for a in await center.dispatch()] == [("c1", "a1")]
    await check_invariants(center)


async def test_repairs_race_a_running_dispatcher_without_double_assignment(
        center: Center, redis_url: str) -> None:
    """Damage made while a dispatcher process serves a flow of contacts: the reconciler
    runs alongside; at the end every contact was assigned once and completed."""
    rng = random.Random(5)
    skills = ["en", "fr", "de"]
    for i in range(12):
        await center.create_agent(f"ag{i}", "F", str(i), rng.sample(skills, 2), available=True)
    await center.register()
    created: list[str] = []
    repairs = 0
    with dispatcher_processes(center.name, redis_url, 1, idle_ms=100):
        for round_ in range(6):
            for j in range(15):
                cid = f"r{round_}-{j}"
                await center.create_contact([rng.choice(skills)], cid)
                created.append(cid)
            # Damage: index entries and agents' sets deleted under the dispatcher's feet.
            r = cast(Any, center.redis)
            for cid in rng.sample(created[-15:], 4):
                for skill in skills:
                    await r.zrem(center.keys.combo(skill), cid)
            await r.zrem(center.keys.avail(rng.choice(skills)), f"ag{rng.randrange(12)}")
            repairs += (await reconcile(center, batch=5)).repairs
            await _complete_assigned(center)

        async def drained() -> bool:
            await reconcile(center, batch=5)
            await _complete_assigned(center)
            contacts = await center.get_contacts(created)
            return all(c is not None and c.state.value == "completed" for c in contacts)
        await wait_for(drained, 30, "every contact completed")
    assert repairs > 0, "the damage should have needed repairs"
    events = [f for _, f in await center.redis.xrange(center.keys.events)]
    assigned = [f["contact"] for f in events if f["type"] == "contact_assigned"]
    assert sorted(assigned) == sorted(set(assigned)) and set(assigned) == set(created)
    await check_invariants(center)


async def _complete_assigned(center: Center) -> None:
    for agent in await center.list_agents():
        if agent.contact:
            await center.complete_contact(agent.contact)
    await asyncio.sleep(0)


@pytest.mark.usefixtures("slowlog")
async def test_every_call_is_bounded(center: Center) -> None:
    """Read in batches, one repair per entry: no command the reconciler sends reads more
    than a batch of documents, and none takes over 5 ms (the server's own SLOWLOG)."""
    for i in range(60):
        await center.create_agent(f"ag{i}", "F", str(i), ["en", f"s{i % 7}"], available=True)
    for i in range(150):
        await center.create_contact([f"s{i % 9}"], f"k{i}")  # s7, s8: nobody has them
    await center.dispatch(most=40)
    r = cast(Any, center.redis)
    for i in range(0, 150, 10):
        await r.zrem(center.keys.queue, f"k{i}")
    await r.hdel(center.keys.parked_on, "s7")
    await r.execute_command("SLOWLOG", "RESET")
    report = await reconcile(center, batch=25)
    assert report.repairs >= 5, report.as_dict()
    log = await r.execute_command("SLOWLOG", "GET", "100000")
    mine = [(int(e[2]), [a.decode() if isinstance(a, bytes) else str(a) for a in e[3]])
            for e in log]
    mine = [(us, argv) for us, argv in mine if any(center.keys.tag in a for a in argv[1:4])]
    assert mine, "the SLOWLOG recorded the reconciler's commands"
    slowest = max(mine)
    assert slowest[0] < 5000, f"{slowest[0]} µs: {slowest[1][:4]}"
    mgets = [argv for _, argv in mine if argv[0] == "JSON.MGET"]
    assert mgets and max(len(a) - 2 for a in mgets) <= 25
    await check_invariants(center)
