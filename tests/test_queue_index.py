"""The waiting contacts' index: a dispatch round looks only at skill combinations some
available agent may serve, so what nobody can serve costs it nothing, while the order of
service stays the universal queue's (FIFO, then the longest available agent).

Work is counted in commands run inside the function (INFO commandstats counts the
commands a function calls), not timed: the counts do not depend on the machine.
"""

from __future__ import annotations

from typing import Any, cast

import pytest
from test_dispatch_rules import expected_round, snapshot

from acd import Center, InvalidState
from acd.invariants import violations


async def calls(center: Center) -> int:
    """Commands the server has run so far (FCALLs and the commands inside them)."""
    stats = await cast(Any, center.redis).info("commandstats")
    return sum(int(v["calls"]) for v in stats.values())


async def round_cost(center: Center) -> tuple[int, int]:
    """(assignments, commands run) of one explicit dispatch round."""
    before = await calls(center)
    done = await center.dispatch()
    return len(done), await calls(center) - before - 2  # the INFO and the FCALL


async def test_an_idle_round_costs_the_same_with_1000_unservable_contacts(
        center: Center) -> None:
    await center.create_agent("a", "A", "B", ["en"], available=True)
    _, empty = await round_cost(center)
    for i in range(200):  # 200 combinations x 5 contacts; nobody has "x<i>"
        for n in range(5):
            await center.create_contact(["en", f"x{i}"], contact_id=f"c{i}-{n}")
    assert await center.redis.zcard(center.keys.ready) == 0  # parked as they arrived
    assigned, idle = await round_cost(center)
    assert assigned == 0
    assert idle <= empty + 2, (idle, empty)
    assert not await violations(center)


async def test_a_servable_contact_behind_unservable_ones_costs_one_look(
        center: Center) -> None:
    await center.create_agent("a", "A", "B", ["en"], available=True)
    for i in range(300):
        await center.create_contact(["en", f"x{i}"])
    served = await center.create_contact(["en"])
    assigned, cost = await round_cost(center)
    assert assigned == 1 and (await center.get_contact(served.id)).agent == "a"
    assert cost < 40, cost  # one combination looked at, one claim: no walk of 300


async def test_agents_that_can_serve_a_parked_combination_make_it_ready(
        center: Center) -> None:
    await center.create_agent("en-only", "E", "N", ["en"], available=True)
    await center.create_agent("later", "L", "A", ["fr"], available=False)
    waiting = await center.create_contact(["en", "fr"])
    assert await center.redis.zcard(center.keys.ready) == 0  # parked as it arrived
    assert await center.dispatch() == []
    await center.set_available("later")  # fr only: still nobody with both
    assert await center.redis.zcard(center.keys.ready) == 0
    assert not await violations(center)
    await center.add_skill("en-only", "fr")  # gains the missing skill while available
    assert await center.redis.zcard(center.keys.ready) == 1
    [done] = await center.dispatch()
    assert (done.contact, done.agent) == (waiting.id, "en-only")
    assert not await violations(center)


async def test_a_contact_for_a_parked_combination_does_not_wake_the_dispatchers(
        center: Center) -> None:
    await center.create_agent("a", "A", "B", ["en"], available=True)
    before = await center.redis.xlen(center.keys.wake)
    await center.create_contact(["en", "nobody-has-it"])  # parked as it arrives
    await center.create_contact(["en", "nobody-has-it"])
    assert await center.redis.xlen(center.keys.wake) == before
    assert await center.redis.zcard(center.keys.ready) == 0
    await center.create_contact(["en"])  # servable: a round should look at it
    assert await center.redis.xlen(center.keys.wake) == before + 1


async def test_order_across_combinations_is_the_universal_queues(center: Center) -> None:
    for aid, skills in (("a1", ["en"]), ("a2", ["en", "fr"]), ("a3", ["fr"])):
        await center.create_agent(aid, "F", aid, skills)
    for i, needs in enumerate([["fr"], ["en"], ["en", "fr"], ["en"], ["fr"], ["de"],
                               ["en", "fr"], ["en"]]):
        await center.create_contact(needs, contact_id=f"c{i}")
    assert await center.redis.zcard(center.keys.ready) == 0  # nobody available: all parked
    await center.open()
    agents, queue = await snapshot(center)
    want = expected_round(agents, queue)
    got = [(a.contact, a.agent) for a in await center.dispatch(most=100)]
    assert got == want and len(got) == 3
    assert not await violations(center)


async def test_a_queue_written_around_the_index_is_reconciled(center: Center) -> None:
    # What the textbook dispatcher of notebook 04 does: BZPOPMIN a contact, and put one
    # it cannot serve back a second later than it came.
    await center.create_agent("a", "A", "B", ["en"], available=False)
    first = await center.create_contact(["en"])
    second = await center.create_contact(["en"])
    third = await center.create_contact(["fr"])
    r, k = center.redis, center.keys
    score = await r.zscore(k.queue, first.id)
    await r.zadd(k.queue, {first.id: score + 1000})  # pushed back: now after second
    await r.zrem(k.queue, third.id)  # taken by the textbook dispatcher (and ended)
    await r.execute_command("JSON.MERGE", k.contact(third.id), ".", '{"state":"abandoned"}')
    await center.set_available("a")
    [done] = await center.dispatch()
    assert (done.contact, done.agent) == (second.id, "a")
    assert not await violations(center)


@pytest.mark.parametrize("extra_skills", [0, 20])  # few skills: subsets asked; many: scanned
async def test_an_agent_finds_the_parked_combinations_it_can_serve(
        center: Center, extra_skills: int) -> None:
    skills = ["en", "fr", "de", *[f"z{i:02d}" for i in range(extra_skills)]]
    await center.create_agent("busy", "B", "Y", ["en"], available=True)
    await center.create_contact(["en"])
    await center.dispatch()  # "busy" is on it; it has every skill filed below
    await center.create_agent("other", "O", "T", ["en", "fr", "de"])
    for i in range(30):  # parked under en, fr or de; nobody will have x<i>
        await center.create_contact([skills[i % 3], f"x{i}"])
    servable = [await center.create_contact(needs) for needs in (["de", "en"], ["fr"])]
    await center.create_agent("z", "Z", "Z", skills)
    assert await center.redis.zcard(center.keys.ready) == 0
    await center.set_available("z")
    assert await center.redis.zcard(center.keys.ready) == 2
    assert not await violations(center)
    done = await center.dispatch()
    assert [(a.contact, a.agent) for a in done] == [(servable[0].id, "z")]
    assert not await violations(center)


async def test_deleting_a_skill_waiting_contacts_need_is_refused_naming_them(
        center: Center) -> None:
    await center.create_agent("a", "A", "B", ["en", "fr"])
    waiting = [await center.create_contact(["fr"]), await center.create_contact(["en", "fr"])]
    other = await center.create_contact(["en"])
    with pytest.raises(InvalidState, match="needed by 2 waiting contacts") as refused:
        await center.delete_skill("fr")
    assert all(c.id in str(refused.value) for c in waiting)
    assert "fr" in (await center.get_agent("a")).skills, "nothing was changed"
    done = await center.delete_skill("fr", force=True)
    assert (done.agents, done.abandoned) == (1, 2)
    assert [(await center.get_contact(c.id)).state.value for c in waiting] == ["abandoned"] * 2
    assert (await center.get_contact(other.id)).state.value == "queued"
    assert (await center.get_agent("a")).skills == ["en"]
    assert not await violations(center)
