"""Proficiency (issue 14): an agent's level 1-5 per skill, a contact's minimum per skill.

A contact with minimums goes only to an agent at those levels or above, the longest
available of them (LAA); with the center's agent choice best_proficiency, to the one
whose lowest level over the contact's skills is highest, then LAA. Without levels and
minimums nothing changes (the rule tests and the model-based test run unchanged; here:
the documents and the keys stay as they were).
"""

from __future__ import annotations

import asyncio
import time

import pytest
from acd_invariants import check_invariants

from acd import Center, InvalidInput, InvalidState, NotFound
from acd.invariants import violations
from acd.levels import needs, signature
from acd.reconcile import reconcile


async def later(center: Center) -> None:
    """Wait until the server's clock has moved past now (a condition, not a sleep)."""
    now = await center.server_ms()
    deadline = time.monotonic() + 2
    while await center.server_ms() <= now:
        assert time.monotonic() < deadline, "the server's clock does not move"
        await asyncio.sleep(0.0002)


async def staff(center: Center, team: list[tuple[str, dict[str, int]]]) -> None:
    """Agents made available in this order (the first is the longest available)."""
    for aid, levels in team:
        await center.create_agent(aid, "F", aid, sorted(levels), available=True,
                                  levels=levels)
        await later(center)


async def served_by(center: Center, skills: list[str], mins: dict[str, int] | None = None
                    ) -> str | None:
    contact = await center.create_contact(skills, min_levels=mins)
    await center.dispatch()
    got = await center.get_contact(contact.id)
    return got.agent


def test_the_signature_names_minimums_above_one() -> None:
    assert signature(["en", "billing"]) == "billing,en"
    assert signature(["en", "billing"], {"billing": 3, "en": 1}) == "billing:3,en"
    assert needs("billing:3,en") == {"billing": 3, "en": 1}


async def test_plain_skills_are_level_one_and_store_nothing(center: Center) -> None:
    agent = await center.create_agent("a", "A", "B", ["en", "fr"], available=True)
    assert agent.levels == {"en": 1, "fr": 1}
    raw = await center.redis.execute_command("JSON.GET", center.keys.agent("a"), ".")
    assert "levels" not in raw  # documents without levels are as before
    assert not await center.redis.hexists(center.keys.meta, "proficiency")
    contact = await center.create_contact(["en"])
    raw = await center.redis.execute_command("JSON.GET", center.keys.contact(contact.id), ".")
    assert "min_levels" not in raw
    assert [k async for k in center.redis.scan_iter(match=center.keys.pattern("avail_at"))] == []


async def test_the_minimum_level_is_respected(center: Center) -> None:
    await staff(center, [("novice", {"billing": 1}), ("expert", {"billing": 4})])
    assert await served_by(center, ["billing"], {"billing": 3}) == "expert"
    # The novice is the only one left and does not qualify: the contact waits, parked.
    waiting = await center.create_contact(["billing"], min_levels={"billing": 3})
    assert await center.dispatch() == []
    assert (await center.get_contact(waiting.id)).state == "queued"
    assert await center.redis.hexists(center.keys.parked_on, "billing:3")
    # A contact without a minimum behind it is served by the novice: no head-of-line block.
    assert await served_by(center, ["billing"]) == "novice"
    await check_invariants(center)


async def test_longest_available_among_the_qualified(center: Center) -> None:
    await staff(center, [("low", {"en": 2}), ("old", {"en": 4}), ("new", {"en": 5})])
    assert await served_by(center, ["en"], {"en": 4}) == "old"
    assert await served_by(center, ["en"], {"en": 4}) == "new"
    assert await served_by(center, ["en"]) == "low"
    await check_invariants(center)


async def test_several_skills_each_with_its_minimum(center: Center) -> None:
    await staff(center, [("a", {"en": 5, "billing": 1}), ("b", {"en": 2, "billing": 3}),
                         ("c", {"en": 3, "billing": 3})])
    assert await served_by(center, ["en", "billing"], {"en": 3, "billing": 2}) == "c"
    await check_invariants(center)


async def test_best_proficiency_first_then_laa(center: Center) -> None:
    await staff(center, [("plain", {"en": 1}), ("good", {"en": 3}), ("best1", {"en": 5}),
                         ("best2", {"en": 5})])
    await center.set_agent_choice("best_proficiency")
    assert await served_by(center, ["en"]) == "best1"
    assert await served_by(center, ["en"]) == "best2"
    assert await served_by(center, ["en"]) == "good"
    assert await served_by(center, ["en"]) == "plain"
    await check_invariants(center)


async def test_best_proficiency_ranks_by_the_weakest_skill(center: Center) -> None:
    await staff(center, [("lopsided", {"en": 5, "billing": 1}),
                         ("even", {"en": 3, "billing": 3})])
    await center.set_agent_choice("best_proficiency")
    assert await served_by(center, ["en", "billing"]) == "even"
    # Its own minimum still rules: a contact needing en 4 gets the lopsided agent.
    assert await served_by(center, ["en", "billing"], {"en": 4}) == "lopsided"


async def test_without_levels_best_proficiency_is_laa(center: Center) -> None:
    await staff(center, [("x", {"en": 1}), ("y", {"en": 1})])
    await center.set_agent_choice("best_proficiency")
    assert await served_by(center, ["en"]) == "x"


async def test_raising_a_level_while_available_serves_the_parked(center: Center) -> None:
    await staff(center, [("a", {"en": 2})])
    waiting = await center.create_contact(["en"], min_levels={"en": 4})
    assert await center.dispatch() == []
    agent = await center.set_level("a", "en", 4)
    assert agent.levels == {"en": 4} and agent.state == "available"
    assert [x.agent for x in await center.dispatch()] == ["a"]
    assert (await center.get_contact(waiting.id)).agent == "a"
    await check_invariants(center)


async def test_lowering_a_level_keeps_the_place_but_not_the_qualification(center: Center
                                                                          ) -> None:
    await staff(center, [("a", {"en": 5}), ("b", {"en": 5})])
    since = (await center.get_agent("a")).available_since
    agent = await center.set_level("a", "en", 1)
    assert agent.available_since == since and agent.levels == {"en": 1}
    assert await served_by(center, ["en"], {"en": 3}) == "b"
    assert await served_by(center, ["en"]) == "a"
    await check_invariants(center)


async def test_a_level_set_while_busy_applies_at_the_next_availability(center: Center
                                                                       ) -> None:
    await staff(center, [("a", {"en": 1})])
    first = await center.create_contact(["en"])
    await center.dispatch()
    await center.set_level("a", "en", 5)
    waiting = await center.create_contact(["en"], min_levels={"en": 5})
    assert await center.dispatch() == []
    await check_invariants(center)
    await center.complete_contact(first.id)
    await center.dispatch()
    assert (await center.get_contact(waiting.id)).agent == "a"
    await check_invariants(center)


async def test_level_changes_racing_dispatch_keep_every_promise(center: Center) -> None:
    """Levels change on available and busy agents while rounds dispatch and contacts end:
    every assignment meets its minimums, and every promise holds at the end."""
    team = [(f"a{i}", {"en": 1 + i % 5, "fr": 1 + (i * 2) % 5}) for i in range(8)]
    await staff(center, team)
    mins = [{"en": 3}, {"fr": 4}, {}, {"en": 2, "fr": 2}, {"en": 5}]
    made = [await center.create_contact(["en", "fr"] if m.keys() >= {"en", "fr"} else
                                        list(m) or ["en"], min_levels=m)
            for m in mins * 4]

    async def levels() -> None:
        for step in range(40):
            await center.set_level(f"a{step % 8}", "en" if step % 2 else "fr", 1 + step % 5)

    async def rounds() -> None:
        for _ in range(40):
            for pair in await center.dispatch(most=2):
                if int(pair.contact[-1], 16) % 2:
                    await center.complete_contact(pair.contact)

    start = await center.last_event_id()
    await asyncio.gather(levels(), rounds())
    await check_invariants(center)
    # Each call is atomic and emits its event inside, so the events stream orders them:
    # replay the level changes and check every assignment against the levels of then.
    have = {aid: {"en": 1, "fr": 1, **lv} for aid, lv in team}
    wanted = {c.id: c.min_levels for c in made}
    checked = 0
    page = await center.events(after=start, count=10_000)
    for event in page.events:
        f = event.fields
        if event.type == "agent_level":
            have[f["agent"]][f["skill"]] = int(f["level"])
        elif event.type == "contact_assigned":
            assert all(have[f["agent"]][s] >= m for s, m in wanted[f["contact"]].items()), f
            checked += 1
    assert checked >= 5, f"only {checked} assignments: the race was not run"


async def test_skill_removal_and_deletion_take_the_level_along(center: Center) -> None:
    await staff(center, [("a", {"en": 4, "fr": 3, "de": 1}), ("b", {"fr": 2, "de": 1})])
    agent = await center.remove_skill("a", "en")
    assert agent.levels == {"de": 1, "fr": 3}
    await center.delete_skill("fr")
    assert (await center.get_agent("a")).levels == {"de": 1}
    await check_invariants(center)
    assert [k async for k in center.redis.scan_iter(match=center.keys.pattern("avail_at"))] == []


async def test_closing_and_opening_move_the_level_sets(center: Center) -> None:
    await staff(center, [("a", {"en": 3})])
    await center.close()
    await check_invariants(center)
    await center.open()
    await check_invariants(center)
    assert await served_by(center, ["en"], {"en": 3}) == "a"


@pytest.mark.parametrize(("call", "message"), [
    (lambda c: c.create_agent("a", "A", "B", ["en"], levels={"fr": 2}), "not one of the skills"),
    (lambda c: c.create_agent("a", "A", "B", ["en"], levels={"en": 6}), "is not a level"),
    (lambda c: c.create_agent("a", "A", "B", ["en"], levels={"en": True}), "en"),
    (lambda c: c.create_contact(["en"], min_levels={"en": 0}), "is not a level"),
    (lambda c: c.create_contact(["en"], min_levels={"de": 2}), "not one of the skills"),
    (lambda c: c.set_level("a", "en", 9), "is not a level"),
])
async def test_bad_levels_are_refused_naming_them(center: Center, call, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        await call(center)
    assert await center.list_agents() == [] and await center.queue() == []


async def test_qualified_refuses_a_bad_skill_naming_it(center: Center) -> None:
    await staff(center, [("a", {"en": 3})])
    with pytest.raises(InvalidInput, match="skill 'bad skill' is not valid"):
        await center.qualified(["en", "bad skill"])
    with pytest.raises(InvalidInput, match="skill: U\\+202E"):
        await center.qualified(["en\u202e"], {"en\u202e": 2})


async def test_level_of_a_missing_agent_or_skill(center: Center) -> None:
    with pytest.raises(NotFound, match="agent ghost"):
        await center.set_level("ghost", "en", 2)
    await center.create_agent("a", "A", "B", ["en"])
    with pytest.raises(NotFound, match="skill fr of agent a"):
        await center.set_level("a", "fr", 2)
    with pytest.raises(InvalidState):
        await center.remove_skill("a", "en")  # levels do not change the one-skill rule


async def test_the_reconciler_repairs_level_sets_and_levelled_combinations(center: Center
                                                                           ) -> None:
    await staff(center, [("a", {"en": 3}), ("b", {"fr": 1})])
    waiting = await center.create_contact(["fr"], min_levels={"fr": 2})  # nobody: parked
    await center.redis.zrem(center.keys.avail_at(2, "en"), "a")
    await center.redis.zrem(center.keys.combo("fr:2"), waiting.id)
    found = await violations(center)
    assert any("avail_at:2:en" in v for v in found) and any("fr:2" in v for v in found), found
    report = await reconcile(center, batch=2)
    assert report.repairs >= 2, report.as_dict()
    await check_invariants(center)
    assert (await reconcile(center)).repairs == 0
    assert await served_by(center, ["en"], {"en": 3}) == "a"
    await center.set_level("b", "fr", 2)
    await center.dispatch()
    assert (await center.get_contact(waiting.id)).agent == "b"
