"""The agent choice (issue 14): which qualified available agent a contact gets.

longest_available (the default, unchanged): the agent available the longest.
fewest_skills: the agent with the fewest skills in all, ties by longest available, so
generalists stay free for the contacts only they can serve.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from acd_invariants import check_invariants

from acd import AgentChoice, Center, InvalidInput

GENERALIST = ["billing", "en", "es", "tech"]


async def later(center: Center) -> None:
    """Wait until the server's clock has moved past now: the next agent made available
    gets a later available_since (a condition, not a guessed sleep)."""
    now = await center.server_ms()
    deadline = time.monotonic() + 2
    while await center.server_ms() <= now:
        assert time.monotonic() < deadline, "the server's clock does not move"
        await asyncio.sleep(0.0002)


async def staff(center: Center) -> None:
    """A generalist available first (the longest), then a billing specialist."""
    await center.create_agent("gen", "Gen", "Eral", GENERALIST, available=True)
    await later(center)
    await center.create_agent("spec", "Spe", "Cialist", ["billing"], available=True)


async def served_by(center: Center, skills: list[str]) -> str:
    contact = await center.create_contact(skills)
    [assignment] = await center.dispatch()
    assert assignment.contact == contact.id
    return assignment.agent


async def test_default_is_longest_available_the_generalist(center: Center) -> None:
    await staff(center)
    assert await center.agent_choice() == "longest_available"
    assert await served_by(center, ["billing"]) == "gen"
    await check_invariants(center)


async def test_fewest_skills_gives_the_specialist(center: Center) -> None:
    await staff(center)
    assert await center.set_agent_choice("fewest_skills") == "longest_available"
    assert await center.agent_choice() == AgentChoice.FEWEST_SKILLS
    assert await served_by(center, ["billing"]) == "spec"
    # The generalist stayed free for what only it can serve.
    assert await served_by(center, ["billing", "es"]) == "gen"
    await check_invariants(center)


async def test_equal_skill_counts_go_by_longest_available(center: Center) -> None:
    await center.set_agent_choice("fewest_skills")
    # z- first: were the tie broken by id rather than by time, a- would win.
    await center.create_agent("z-old", "Z", "Old", ["billing", "en"], available=True)
    await later(center)
    await center.create_agent("a-new", "A", "New", ["billing", "fr"], available=True)
    await later(center)
    await center.create_agent("gen", "Gen", "Eral", GENERALIST, available=True)
    assert await served_by(center, ["billing"]) == "z-old"
    assert await served_by(center, ["billing"]) == "a-new"
    assert await served_by(center, ["billing"]) == "gen"
    await check_invariants(center)


async def test_changing_an_agents_skills_changes_its_rank(center: Center) -> None:
    await staff(center)
    await center.set_agent_choice("fewest_skills")
    for skill in ("x1", "x2", "x3", "x4"):  # the specialist now has 5 skills, gen 4
        await center.add_skill("spec", skill)
    await check_invariants(center)
    contact = await center.create_contact(["billing"])
    [first] = await center.dispatch()
    assert (first.contact, first.agent) == (contact.id, "gen")
    await center.complete_contact(contact.id)  # gen is available again, now the newest
    for skill in ("en", "es", "tech"):  # gen down to 1 skill: fewer than spec's 5
        await center.remove_skill("gen", skill)
    await check_invariants(center)
    assert await served_by(center, ["billing"]) == "gen"


async def test_agents_that_come_and_go_keep_their_rank(center: Center) -> None:
    await center.set_agent_choice("fewest_skills")
    await staff(center)  # created after the switch: ranked all the same
    await center.set_unavailable("spec")
    assert await served_by(center, ["billing"]) == "gen"
    await center.set_available("spec")
    await center.close()
    await center.open()
    assert await served_by(center, ["billing"]) == "spec"
    await check_invariants(center)


async def test_deleting_a_skill_re_ranks_its_agents(center: Center) -> None:
    await center.set_agent_choice("fewest_skills")
    await center.create_agent("two", "T", "Wo", ["billing", "legacy"], available=True)
    await later(center)
    await center.create_agent("one", "O", "Ne", ["billing", "en"], available=True)
    await center.delete_skill("en")  # "one" keeps billing only: the fewest now
    await check_invariants(center)
    assert await served_by(center, ["billing"]) == "one"


async def test_switching_back_removes_every_trace(center: Center) -> None:
    await staff(center)
    await center.set_agent_choice("fewest_skills")
    assert await center.set_agent_choice("fewest_skills") == "fewest_skills"  # no change
    assert await center.set_agent_choice("longest_available") == "fewest_skills"
    keys = [k async for k in center.redis.scan_iter(match=center.keys.pattern("fewest"))]
    assert keys == []
    assert all("in_fewest" not in a.model_dump() for a in await center.list_agents())
    await check_invariants(center)
    assert await served_by(center, ["billing"]) == "gen"


async def test_the_default_path_writes_nothing_of_its_own(center: Center) -> None:
    """With the default choice nothing of the fewest-skills bookkeeping exists."""
    await staff(center)
    await served_by(center, ["billing"])
    raw = await center.redis.execute_command("JSON.GET", center.keys.agent("spec"), ".")
    assert "in_fewest" not in raw
    assert [k async for k in center.redis.scan_iter(match=center.keys.pattern("fewest"))] == []
    assert await center.redis.hget(center.keys.meta, "agent_choice_index") is None


@pytest.mark.parametrize("bad", ["fewest", "LAA", "", "Fewest_Skills"])
async def test_bad_values_are_refused_naming_them(center: Center, bad: str) -> None:
    with pytest.raises(InvalidInput, match=f"agent choice '{bad}': must be "
                                           "'longest_available' or 'fewest_skills'"):
        await center.set_agent_choice(bad)
    assert await center.agent_choice() == "longest_available"


async def test_the_api_sets_and_reads_it(center: Center, redis_url: str,
                                         api_headers: dict[str, str]) -> None:
    from acd.api.app import create_app
    from acd.settings import Settings

    app = create_app(Settings(redis_url=redis_url, acd_center=center.name))
    url = f"/v1/centers/{center.name}/agent-choice"
    async with (app.router.lifespan_context(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                  headers=api_headers, base_url="http://127.0.0.1") as api):
        assert (await api.get(url)).json() == {"choice": "longest_available",
                                               "previous": None}
        done = await api.put(url, json={"choice": "fewest_skills"})
        assert done.status_code == 200
        assert done.json() == {"choice": "fewest_skills", "previous": "longest_available"}
        for body in ({"choice": "fewest"}, {"choice": 1}, {"choice": "fewest_skills", "x": 1},
                     {}):
            refused = await api.put(url, json=body)
            assert refused.status_code == 422, body
        refused = await api.put(url, json={"choice": "fewest"})
        assert "fewest_skills" in refused.text and "'fewest'" in refused.text
        assert (await api.get(url)).json()["choice"] == "fewest_skills"
