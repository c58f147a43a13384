"""acd.stats: waiting contacts per skill combination, and who could serve them, read from
the waiting contacts' index on a real Redis. No dispatcher runs here: every dispatch
round is an explicit call, so each figure is known."""

from __future__ import annotations

import pytest

from acd import Center, InvalidInput, stats
from acd.invariants import violations
from acd.stats import WaitingCombinations


def table(view: WaitingCombinations) -> list[tuple[str, int, str, int, int]]:
    """(skills, waiting, state, eligible, available) per combination, in the listed order."""
    return [(",".join(c.skills), c.waiting, c.state.value, c.eligible, c.available)
            for c in view.combinations]


async def test_an_empty_center(center: Center) -> None:
    view = await stats.combinations(center)
    assert (view.center, view.waiting, view.total, view.complete) == (center.name, 0, 0, True)
    assert view.combinations == []


async def test_ready_busy_and_unservable_combinations(center: Center) -> None:
    await center.create_agent("ann", "A", "N", ["en", "billing"], available=True)
    await center.create_agent("bob", "B", "O", ["en"], available=True)
    await center.create_agent("cy", "C", "Y", ["en", "billing"])  # unavailable
    first = await center.create_contact(["billing", "en"])
    fr = await center.create_contact(["fr"])  # nobody has fr
    await center.create_contact(["en"])
    view = await stats.combinations(center)
    assert (view.waiting, view.total, view.complete) == (3, 3, True)
    assert table(view) == [("billing,en", 1, "ready", 2, 1),
                           ("fr", 1, "parked", 0, 0),
                           ("en", 1, "ready", 3, 2)]
    waits = [c.oldest_wait_ms for c in view.combinations]
    assert waits == sorted(waits, reverse=True) and waits[-1] >= 0  # oldest first

    done = await center.dispatch()  # ann takes billing,en; en goes to bob (LAA order)
    assert {(a.contact, a.agent) for a in done} >= {(first.id, "ann")}
    second = await center.create_contact(["en", "billing"])  # ann busy, cy unavailable
    view = await stats.combinations(center)
    assert table(view) == [("fr", 1, "parked", 0, 0), ("billing,en", 1, "parked", 2, 0)]
    assert view.combinations[0].skills == ["fr"]

    await center.complete_contact(first.id)  # ann is available: billing,en is ready again
    assert table(await stats.combinations(center))[1] == ("billing,en", 1, "ready", 2, 1)
    [served] = await center.dispatch()
    assert (served.contact, served.agent) == (second.id, "ann")
    view = await stats.combinations(center)
    assert table(view) == [("fr", 1, "parked", 0, 0)] and view.total == 1
    assert view.combinations[0].waiting == sum(c.waiting for c in view.combinations)
    await center.abandon_contact(fr.id)
    assert (await stats.combinations(center)).total == 0
    assert not await violations(center)


async def test_counts_follow_an_agents_skills(center: Center) -> None:
    await center.create_agent("dee", "D", "E", ["de"])  # unavailable
    await center.create_agent("eve", "E", "V", ["fr"], available=True)
    await center.create_contact(["de", "fr"])
    assert table(await stats.combinations(center)) == [("de,fr", 1, "parked", 0, 0)]
    await center.add_skill("dee", "fr")  # eligible now, not available
    assert table(await stats.combinations(center)) == [("de,fr", 1, "parked", 1, 0)]
    await center.add_skill("eve", "de")  # available and gains the missing skill
    assert table(await stats.combinations(center)) == [("de,fr", 1, "ready", 2, 1)]
    await center.remove_skill("dee", "fr")
    await center.set_unavailable("eve")  # the index keeps it ready until a round looks
    assert table(await stats.combinations(center)) == [("de,fr", 1, "ready", 1, 0)]
    assert await center.dispatch() == []  # the round finds nobody: parked
    assert table(await stats.combinations(center)) == [("de,fr", 1, "parked", 1, 0)]
    assert not await violations(center)


async def test_several_contacts_of_one_combination(center: Center) -> None:
    await center.create_agent("a", "A", "B", ["en"])
    for _ in range(4):
        await center.create_contact(["en"])
    await center.create_contact(["fr"])
    view = await stats.combinations(center)
    assert table(view) == [("en", 4, "parked", 1, 0), ("fr", 1, "parked", 0, 0)]
    assert view.waiting == 5 == sum(c.waiting for c in view.combinations)


async def test_limit_lists_the_longest_waiting(center: Center) -> None:
    await center.create_agent("a", "A", "B", ["s1", "s3"], available=True)
    for i in range(5):  # s0 and s2, s4 parked; s1, s3 ready: both kinds interleave
        await center.create_contact([f"s{i}"])
    view = await stats.combinations(center, limit=3)
    assert view.total == 5 and view.complete
    assert [c.skills for c in view.combinations] == [["s0"], ["s1"], ["s2"]]
    assert [c.state.value for c in view.combinations] == ["parked", "ready", "parked"]
    assert [c.skills for c in (await stats.combinations(center, limit=1)).combinations] == [
        ["s0"]]


async def test_many_parked_combinations_are_read_a_bounded_number_at_a_time(
        center: Center) -> None:
    # More than a small hash holds (hash-max-listpack-entries, 512 on Redis 8): beyond it
    # HSCAN reads the parked combinations a page at a time.
    for i in range(600):
        await center.create_contact([f"x{i:03d}"])
    everything = await stats.combinations(center, limit=500)
    assert everything.complete and everything.total == 600
    assert [c.skills for c in everything.combinations] == [[f"x{i:03d}"] for i in range(500)]
    some = await stats.combinations(center, limit=5, examine=20)
    assert not some.complete and some.total == 600 and len(some.combinations) == 5
    assert all(c.state.value == "parked" and c.eligible == 0 for c in some.combinations)


@pytest.mark.parametrize("limit", [0, 501, -1, True, "3", 2.0])
async def test_a_bad_limit_is_refused(center: Center, limit: object) -> None:
    with pytest.raises(InvalidInput, match="limit"):
        await stats.combinations(center, limit=limit)  # type: ignore[arg-type]



async def test_eligible_honours_minimum_levels(center: Center) -> None:
    await center.create_agent("ann", "A", "N", ["en", "billing"], available=True,
                              levels={"billing": 4})
    await center.create_agent("bob", "B", "O", ["en", "billing"], available=True)  # level 1
    await center.create_agent("cy", "C", "Y", ["en", "billing"], levels={"billing": 3})
    await center.create_agent("dee", "D", "E", ["billing"], levels={"billing": 5})  # no en
    await center.set_unavailable("ann")
    await center.create_contact(["billing", "en"], min_levels={"billing": 3})
    await center.create_contact(["billing", "en"])  # any level: the one-command count
    view = await stats.combinations(center)
    rows = {(",".join(c.skills), tuple(c.min_levels.items())): c for c in view.combinations}
    leveled = rows[("billing,en", (("billing", 3),))]
    plain = rows[("billing,en", ())]
    # ann and cy qualify (bob is at level 1, dee lacks en); neither is available.
    assert (leveled.eligible, leveled.available, leveled.eligible_capped) == (2, 0, False)
    assert (plain.eligible, plain.eligible_capped) == (3, False)
    await center.set_level("bob", "billing", 3)  # now bob qualifies, and is available
    leveled = next(c for c in (await stats.combinations(center)).combinations
                   if c.min_levels)
    assert (leveled.eligible, leveled.available) == (3, 1)
    await center.delete_agent("cy")
    assert await stats.eligible_at_levels(center, {"billing": 3, "en": 1}) == (2, False)
    assert await stats.eligible_at_levels(center, {"billing": 5, "en": 1}) == (0, False)
    # Capped: the walk stops after `examine` agents of the rarest skill (en: ann, bob).
    found, capped = await stats.eligible_at_levels(center, {"billing": 3, "en": 1}, examine=1)
    assert capped and found <= 1
    assert not await violations(center)
