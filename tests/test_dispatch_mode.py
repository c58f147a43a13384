"""Who dispatches a center: automatic (the dispatcher services) or manual (only explicit
dispatch calls, as the lessons that run their own textbook dispatcher need)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from acd_invariants import check_invariants, dispatcher_processes, wait_for

from acd import Center, DispatchMode, InvalidInput


async def blocked_dispatchers(center: Center, pids: list[int]) -> int:
    """Dispatcher processes blocked on a wake-up right now (CLIENT LIST flag 'b')."""
    names = {f"acd-dispatcher-{pid}" for pid in pids}
    clients: list[dict[str, Any]] = await center.redis.client_list()
    return sum(1 for c in clients if c.get("name") in names and "b" in c.get("flags", ""))


async def test_a_service_round_assigns_nothing_in_manual_mode(center: Center) -> None:
    await center.create_agent("a", "A", "B", ["en"], available=True)
    contact = await center.create_contact(["en"])
    assert await center.dispatch_mode() == "automatic"
    assert await center.set_dispatch_mode("manual") == "automatic"
    assert (await center.stats()).dispatch_mode == "manual"
    service_round = await center.dispatch_round(50, 1000, service=True)
    assert service_round.pairs == [] and service_round.wake_id != "0-0"
    [assignment] = await center.dispatch()  # an explicit call: the lesson's own dispatch
    assert assignment.contact == contact.id
    assert await center.set_dispatch_mode(DispatchMode.AUTOMATIC) == "manual"
    with pytest.raises(InvalidInput, match="dispatch mode 'sometimes'"):
        await center.set_dispatch_mode("sometimes")


@pytest.mark.timeout(60)
async def test_dispatcher_processes_keep_out_of_a_manual_center(center: Center,
                                                                redis_url: str) -> None:
    await center.create_agent("a", "A", "B", ["en"], available=True)
    await center.set_dispatch_mode("manual")
    with dispatcher_processes(center.name, redis_url, 2, idle_ms=10_000) as pool:
        pids = [p.pid for p in pool.procs]

        async def both_blocked() -> bool:
            return await blocked_dispatchers(center, pids) == 2

        await wait_for(both_blocked, 20, "dispatchers waiting for a wake-up")
        contact = await center.create_contact(["en"])  # wakes both
        # Blocked again means each ran its round after the wake-up, and left it alone.
        await wait_for(both_blocked, 10, "dispatchers back to waiting")
        assert (await center.get_contact(contact.id)).state == "queued"
        await center.set_dispatch_mode("automatic")  # wakes them: served at once

        async def assigned() -> bool:
            return (await center.get_contact(contact.id)).state == "assigned"

        await wait_for(assigned, 2, "assignment once the center is automatic again")
    await check_invariants(center)


@pytest.mark.timeout(120)
async def test_mode_changes_while_dispatchers_serve(center: Center, redis_url: str) -> None:
    # Every mode check is inside the atomic dispatch call, so the event stream is exact:
    # no service assignment between a switch to manual and the switch back.
    rng = random.Random(3)
    for i in range(8):
        await center.create_agent(f"a{i}", "A", f"{i}", ["en"], available=True)
    created: list[str] = []
    with dispatcher_processes(center.name, redis_url, 2, idle_ms=200):

        async def traffic() -> None:
            for _ in range(300):
                created.append((await center.create_contact(["en"])).id)
                await asyncio.sleep(rng.uniform(0, 0.004))

        async def agents() -> None:
            last = "0-0"
            while True:
                last, events = await center.events(last, block_ms=200, count=500)
                for event in events:
                    if event.type == "contact_assigned":
                        await center.complete_contact(event.fields["contact"])

        async def switches() -> None:
            for i in range(10):
                await asyncio.sleep(rng.uniform(0.02, 0.1))
                await center.set_dispatch_mode("manual" if i % 2 == 0 else "automatic")

        worker = asyncio.create_task(agents())
        await asyncio.gather(traffic(), switches())

        async def all_served() -> bool:
            return (await center.stats()).completed == len(created)

        await wait_for(all_served, 30, "every contact served once automatic again")
        worker.cancel()
    mode, inside_manual, assigned = "automatic", 0, 0
    for _, fields in await center.redis.xrange(center.keys.events):
        if fields["type"] == "dispatch_mode":
            mode = fields["mode"]
        elif fields["type"] == "contact_assigned":
            assigned += 1
            inside_manual += mode == "manual"
    assert assigned == len(created) == 300
    assert inside_manual == 0
    await check_invariants(center)
