"""Priority as virtual age (acd.priority): a contact of priority p is served as if it had
arrived p x seconds_per_point earlier; among equals, first come first served; a contact
that has waited longer than a newer one's head start goes first (nobody starves); LAA is
unchanged. With the default of 0 seconds per point, priorities change nothing.

Arrival gaps are never guessed: where the order depends on how far apart two contacts
arrived, the test waits (with a deadline) until the server's clock has passed the point,
or uses a point worth an hour, far more than any test lasts.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any, cast

import pytest
from acd_invariants import check_invariants

from acd import Center, InvalidInput
from acd.reconcile import reconcile

HOUR = 3600


async def served(center: Center, most: int = 100) -> list[str]:
    return [a.contact for a in await center.dispatch(most=most)]


async def staff(center: Center, n: int, skills: list[str]) -> None:
    """n agents with these skills, unavailable: contacts wait until open()."""
    for i in range(n):
        await center.create_agent(f"a{i}", "A", str(i), skills)


async def server_passes(center: Center, ms: float) -> None:
    """Wait until the server's clock is past ``ms``."""
    deadline = time.monotonic() + 10
    while await center.server_ms() <= ms:
        assert time.monotonic() < deadline, "the server's clock does not move"
        await asyncio.sleep(0.005)


async def test_the_default_is_off(center: Center) -> None:
    assert await center.seconds_per_point() == 0
    await staff(center, 3, ["en"])
    ids = [(await center.create_contact(["en"], priority=p)).id for p in (0, 50, 100)]
    first = await center.get_contact(ids[1])
    assert (first.priority, first.head_start_ms) == (50, 0)
    await center.open()
    assert await served(center) == ids  # arrival order, priorities or not


async def test_higher_priority_first(center: Center) -> None:
    assert await center.set_seconds_per_point(HOUR) == 0
    assert await center.seconds_per_point() == HOUR
    await staff(center, 4, ["en"])
    low = await center.create_contact(["en"])
    high = await center.create_contact(["en"], priority=5)
    mid = await center.create_contact(["en"], priority=1)
    top = await center.create_contact(["en"], priority=100)
    assert (high.priority, high.head_start_ms) == (5, 5 * HOUR * 1000)
    assert (await center.get_contact(mid.id)).head_start_ms == HOUR * 1000
    await check_invariants(center)
    await center.open()
    assert await served(center) == [top.id, high.id, mid.id, low.id]
    # The wait is the real one, from the real arrival: the head start is no waiting.
    assert (await center.counters())["wait_ms"] < HOUR * 1000
    assert [c for c, _ in await center.queue()] == []
    await check_invariants(center)


async def test_fifo_among_equal_priorities(center: Center) -> None:
    await center.set_seconds_per_point(HOUR)
    await staff(center, 5, ["en"])
    same = [(await center.create_contact(["en"], priority=3)).id for _ in range(4)]
    late_low = await center.create_contact(["en"])
    await center.open()
    assert await served(center) == [*same, late_low.id]


async def test_priority_orders_across_skill_combinations(center: Center) -> None:
    # The ready index ranks combinations by their head's virtual arrival.
    await center.set_seconds_per_point(HOUR)
    await center.create_agent("both", "B", "O", ["en", "fr"])
    en = await center.create_contact(["en"])
    fr = await center.create_contact(["fr"], priority=1)
    await center.set_available("both")
    assert await served(center) == [fr.id]
    await center.complete_contact(fr.id)
    assert await served(center) == [en.id]


async def test_a_head_start_moves_a_ready_combination_up(center: Center) -> None:
    # Found by the model: the combination is ready already when its new head arrives.
    await center.set_seconds_per_point(HOUR)
    await center.create_agent("both", "B", "O", ["de", "en"], available=True)
    de = await center.create_contact(["de"])
    en = await center.create_contact(["en"])
    urgent = await center.create_contact(["en"], priority=1)
    assert await served(center, most=1) == [urgent.id]
    await center.complete_contact(urgent.id)
    assert await served(center, most=1) == [de.id]
    await center.complete_contact(de.id)
    assert await served(center, most=1) == [en.id]


async def test_an_old_contact_beats_a_newer_one_whose_head_start_it_outwaited(
        center: Center) -> None:
    await center.set_seconds_per_point(0.05)  # 50 ms a point
    await staff(center, 3, ["en"])
    old = await center.create_contact(["en"])
    await server_passes(center, old.queued_at + 5 * 50)
    outwaited = await center.create_contact(["en"], priority=5)  # 250 ms head start
    assert outwaited.head_start_ms == 250
    assert outwaited.queued_at - outwaited.head_start_ms > old.queued_at
    # A point worth an hour now: the next one's head start is far beyond old's wait.
    await center.set_seconds_per_point(HOUR)
    jumps = await center.create_contact(["en"], priority=1)
    await center.open()
    assert await served(center) == [jumps.id, old.id, outwaited.id]
    await check_invariants(center)


async def test_laa_is_unchanged(center: Center) -> None:
    await center.set_seconds_per_point(HOUR)
    await center.create_agent("first", "F", "I", ["en"], available=True)
    await center.create_agent("second", "S", "E", ["en"], available=True)
    c = await center.create_contact(["en"], priority=7)
    [a] = await center.dispatch()
    assert (a.contact, a.agent) == (c.id, "first")


async def test_waiting_contacts_keep_their_head_start(center: Center) -> None:
    await center.set_seconds_per_point(HOUR)
    await staff(center, 2, ["en"])
    early = await center.create_contact(["en"], priority=1)
    assert await center.set_seconds_per_point(0) == HOUR  # off for contacts from now on
    later = await center.create_contact(["en"], priority=1)
    assert later.head_start_ms == 0
    assert (await center.get_contact(early.id)).head_start_ms == HOUR * 1000
    await center.open()
    assert await served(center) == [early.id, later.id]


async def test_a_contact_pushed_back_keeps_its_head_start(center: Center) -> None:
    # The textbook's retry (notebook 05) puts a contact back into the queue with a later
    # score: the index follows, its head start kept.
    await center.set_seconds_per_point(HOUR)
    await staff(center, 2, ["en"])
    high = await center.create_contact(["en"], priority=1)
    low = await center.create_contact(["en"])
    now = await center.server_ms()
    await cast(Any, center.redis).zadd(center.keys.queue, {high.id: f"{now + 10:.3f}"})
    await center.open()
    assert await served(center) == [high.id, low.id]
    await check_invariants(center)


async def test_repairs_restore_the_virtual_place(center: Center) -> None:
    await center.set_seconds_per_point(HOUR)
    await staff(center, 2, ["en"])
    high = await center.create_contact(["en"], priority=2)
    low = await center.create_contact(["en"])
    r = cast(Any, center.redis)
    await r.zrem(center.keys.combo("en"), high.id)  # a write around the functions
    report = await reconcile(center)
    assert report.repairs, report
    await check_invariants(center)
    await r.zrem(center.keys.queue, high.id)  # the other side: only the index has it
    assert (await reconcile(center)).repairs
    await check_invariants(center)
    await center.open()
    assert await served(center) == [high.id, low.id]


@pytest.mark.parametrize("priority", [-1, 101, "5", 5.0, True, None])
async def test_a_bad_priority_is_refused(center: Center, priority: Any) -> None:
    with pytest.raises(InvalidInput, match="priority"):
        await center.create_contact(["en"], priority=priority)
    assert await center.queue() == []


@pytest.mark.parametrize("seconds", [-1, 86_401, math.nan, math.inf, "60", True, None])
async def test_a_bad_setting_is_refused(center: Center, seconds: Any) -> None:
    with pytest.raises(InvalidInput, match="seconds_per_point"):
        await center.set_seconds_per_point(seconds)
    assert await center.seconds_per_point() == 0
