"""Each flaw of the textbook dispatcher (acd/naive.py), demonstrated on a real Redis.

These tests pass when the flaw shows: they are what notebook 05 teaches. The same
situations with the real dispatcher are in test_dispatch_rules.py / test_dispatcher_*.py.
"""

from __future__ import annotations

import asyncio

import pytest

from acd import Center
from acd.naive import NaiveDispatcher


class Crash(Exception):
    """Stands for the dispatcher process dying at this point."""


async def test_a_contact_popped_by_a_dispatcher_that_dies_is_lost(center: Center) -> None:
    await center.create_agent("a", "A", "A", ["en"], available=True)
    contact = await center.create_contact(["en"])

    async def die(_: str) -> None:
        raise Crash

    with pytest.raises(Crash):
        await NaiveDispatcher(center, after_pop=die).step()
    # Nobody holds it any more: not in the queue, never assigned, no dispatcher can find it.
    assert await center.queue() == []
    assert (await center.get_contact(contact.id)).state == "queued"
    assert await NaiveDispatcher(center, pop_timeout=0.1).step() is None
    # The real dispatcher has no such window: the same contact, queued again, is served.
    again = await center.create_contact(["en"])
    assert [a.contact for a in await center.dispatch()] == [again.id]


async def test_two_dispatchers_race_for_one_agent(center: Center) -> None:
    await center.create_agent("solo", "Solo", "Agent", ["en"], available=True)
    first = await center.create_contact(["en"])
    second = await center.create_contact(["en"])
    both_checked = asyncio.Barrier(2)

    async def wait_for_the_other(_: str) -> None:
        await asyncio.wait_for(both_checked.wait(), timeout=5)

    d1 = NaiveDispatcher(center, before_claim=wait_for_the_other)
    d2 = NaiveDispatcher(center, before_claim=wait_for_the_other)
    r1, r2 = await asyncio.gather(d1.step(), d2.step())
    assert r1 and r2 and r1.agent == r2.agent == "solo"
    c1, c2 = await center.get_contact(first.id), await center.get_contact(second.id)
    assert c1.state == c2.state == "assigned" and c1.agent == c2.agent == "solo"


async def test_putting_a_contact_back_changes_its_place(center: Center) -> None:
    waiting = await center.create_contact(["fr"])  # nobody speaks French
    later = await center.create_contact(["en"])
    result = await NaiveDispatcher(center, retry_delay_ms=1000).step()
    assert result is not None and result.agent is None
    order = [cid for cid, _ in await center.queue()]
    assert order == [later.id, waiting.id], "the older contact now waits behind a newer one"


async def test_a_contact_nobody_can_serve_holds_up_the_queue(center: Center) -> None:
    await center.create_agent("a", "A", "A", ["en"], available=True)
    stuck = await center.create_contact(["fr"])
    servable = await center.create_contact(["en"])
    # Put back 0 ms later, the stuck contact is at the head again every time:
    naive = NaiveDispatcher(center, retry_delay_ms=0, backoff=(0, 0))
    results = await naive.run(steps=5)
    assert [r.contact for r in results] == [stuck.id] * 5
    assert (await center.get_contact(servable.id)).state == "queued"
    # The real dispatcher serves the second contact in its first round.
    assert [a.contact for a in await center.dispatch()] == [servable.id]


async def test_zinter_sum_misranks_agents_whose_scores_differ_between_sets(
        center: Center) -> None:
    # If scores drift apart between sets (e.g. a skill added with "now" as its score,
    # as a hand-written update might do), AGGREGATE SUM no longer ranks by the time an
    # agent became available.
    r, k = center.redis, center.keys
    await r.zadd(k.avail("en"), {"early": 1000, "late": 2000})
    await r.zadd(k.avail("fr"), {"early": 9000, "late": 2500})
    by_sum = await r.zinter([k.avail("en"), k.avail("fr")])
    by_min = await r.zinter([k.avail("en"), k.avail("fr")], aggregate="MIN")
    assert by_sum[0] == "late" and by_min[0] == "early"
