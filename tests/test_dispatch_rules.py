"""The real dispatcher's rules, one atomic round at a time, against a reference model.

LAA: among available agents with every required skill, the one available longest.
FIFO without head-of-line blocking: contacts are served oldest first; one that nobody
available can serve keeps its place and does not delay the contacts behind it.
"""

from __future__ import annotations

import random

from acd_invariants import check_invariants

from acd import Center


def expected_round(agents: dict[str, tuple[int, set[str]]],
                   queue: list[tuple[str, set[str]]]) -> list[tuple[str, str]]:
    """Reference model: oldest contact first, each takes the longest available agent."""
    free = dict(agents)
    out = []
    for contact, needs in queue:
        qualified = [(since, aid) for aid, (since, skills) in free.items() if needs <= skills]
        if qualified:
            _, chosen = min(qualified)
            out.append((contact, chosen))
            del free[chosen]
    return out


async def snapshot(center: Center) -> tuple[dict[str, tuple[int, set[str]]],
                                            list[tuple[str, set[str]]]]:
    agents = {a.id: (a.available_since or 0, set(a.skills))
              for a in await center.list_agents() if a.state == "available"}
    queue = [(cid, set((await center.get_contact(cid)).skills))
             for cid, _ in await center.queue(limit=10_000)]
    return agents, queue


async def test_longest_available_qualified_agent_is_chosen(center: Center) -> None:
    await center.create_agent("a-gen", "Gen", "Eral", ["en"], available=True)
    await center.create_agent("b-old", "Old", "Est", ["en", "billing"], available=True)
    await center.create_agent("c-new", "New", "Est", ["en", "billing"], available=True)
    contact = await center.create_contact(["billing", "en"])
    [assignment] = await center.dispatch()
    assert (assignment.contact, assignment.agent) == (contact.id, "b-old")


async def test_a_skill_added_later_keeps_the_agents_place(center: Center) -> None:
    # b became available first; adding a skill must not make it look newer (its score
    # in the new set is its original availability time, not now).
    await center.create_agent("b", "B", "B", ["en"], available=True)
    await center.create_agent("c", "C", "C", ["en", "fr"], available=True)
    await center.add_skill("b", "fr")
    await center.create_contact(["en", "fr"])
    [assignment] = await center.dispatch()
    assert assignment.agent == "b"


async def test_unservable_contact_keeps_its_place_and_blocks_nobody(center: Center) -> None:
    await center.create_agent("a1", "A", "One", ["en"], available=True)
    await center.create_agent("a2", "A", "Two", ["en"], available=True)
    stuck = await center.create_contact(["fr"])
    c2 = await center.create_contact(["en"])
    c3 = await center.create_contact(["en"])
    assigned = await center.dispatch()
    assert [(a.contact, a.agent) for a in assigned] == [(c2.id, "a1"), (c3.id, "a2")]
    assert await center.queue() == [(stuck.id, stuck.queued_at)]
    # When an agent who can serve it arrives, the stuck contact is next.
    await center.create_agent("f", "F", "R", ["fr"], available=True)
    [assignment] = await center.dispatch()
    assert (assignment.contact, assignment.agent) == (stuck.id, "f")
    await check_invariants(center)


async def test_the_oldest_contact_an_agent_can_serve_goes_first(center: Center) -> None:
    await center.create_agent("a", "A", "A", ["en", "fr"])
    contacts = [await center.create_contact(s) for s in (["de"], ["fr"], ["en"], ["fr"])]
    await center.set_available("a")
    [assignment] = await center.dispatch()
    assert assignment.contact == contacts[1].id


async def test_dispatch_matches_the_reference_model(center: Center) -> None:
    rng = random.Random(20261128)
    skills = ["en", "fr", "de", "billing", "support"]
    for rnd in range(25):
        for i in range(rng.randint(4, 12)):
            await center.create_agent(f"r{rnd}-{i}", "F", "L",
                                      rng.sample(skills, rng.randint(1, 3)))
        ids = [a.id for a in await center.list_agents() if a.state == "unavailable"]
        for aid in rng.sample(ids, k=len(ids) * 2 // 3):
            await center.set_available(aid)
        for _ in range(rng.randint(1, 15)):
            await center.create_contact(rng.sample(skills, rng.randint(1, 2)))
        agents, queue = await snapshot(center)
        want = expected_round(agents, queue)
        got = [(a.contact, a.agent) for a in await center.dispatch(most=1000)]
        assert got == want, f"round {rnd}"
        await check_invariants(center)
        # Finish some contacts so agents come back at new times for the next round.
        for contact, _ in got[: len(got) // 2]:
            await center.complete_contact(contact)


async def test_batch_size_bounds_one_round(center: Center) -> None:
    for i in range(5):
        await center.create_agent(f"a{i}", "A", "A", ["en"], available=True)
    for _ in range(5):
        await center.create_contact(["en"])
    assert len(await center.dispatch(most=2)) == 2
    assert len(await center.dispatch(most=10)) == 3
    assert await center.dispatch() == []
