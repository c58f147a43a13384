"""Proficiency through /v1 (acd.proficiency): agents' levels, a level changed, contacts'
minimum levels, the agent choice best_proficiency; bad levels are 422 naming them."""

from __future__ import annotations

import httpx

from acd import Center


async def agent(client: httpx.AsyncClient, v1: str, aid: str, levels: dict[str, int] | None,
                skills: list[str] | None = None) -> httpx.Response:
    body: dict[str, object] = {"id": aid, "fname": "A", "lname": aid,
                               "skills": skills or ["Billing", "English"], "available": True}
    if levels is not None:
        body["levels"] = levels
    return await client.post(f"{v1}/agents", json=body)


async def test_levels_are_given_shown_and_changed(client: httpx.AsyncClient, v1: str) -> None:
    r = await agent(client, v1, "a1", {"Billing": 4})
    assert r.status_code == 201, r.text
    assert r.json()["levels"] == {"Billing": 4, "English": 1}
    plain = await agent(client, v1, "a2", None)  # the list-of-names form, unchanged
    assert plain.json()["levels"] == {"Billing": 1, "English": 1}
    r = await client.put(f"{v1}/agents/a2/skills/English/level", json={"level": 5})
    assert r.status_code == 200, r.text
    assert r.json()["levels"] == {"Billing": 1, "English": 5}
    r = await client.put(f"{v1}/agents/a2/skills/French/level", json={"level": 2})
    assert r.status_code == 404 and "French" in r.json()["detail"]


async def test_a_contact_with_a_minimum_goes_to_a_qualified_agent(
        client: httpx.AsyncClient, v1: str, center: Center) -> None:
    await agent(client, v1, "novice", None)
    await agent(client, v1, "expert", {"Billing": 3})
    await center.set_dispatch_mode("manual")
    r = await client.post(f"{v1}/contacts", json={"skills": ["Billing"],
                                                  "min_levels": {"Billing": 3}, "id": "c1"})
    assert r.status_code == 201, r.text
    assert r.json()["min_levels"] == {"Billing": 3}
    # A retry with the same id and minimums is the same contact; other minimums: 409.
    again = await client.post(f"{v1}/contacts", json={"skills": ["Billing"],
                                                      "min_levels": {"Billing": 3}, "id": "c1"})
    assert again.status_code == 200, again.text
    other = await client.post(f"{v1}/contacts", json={"skills": ["Billing"], "id": "c1"})
    assert other.status_code == 409 and "min_levels" in other.json()["detail"]
    await center.dispatch()
    assert (await client.get(f"{v1}/contacts/c1")).json()["agent"] == "expert"


async def test_best_proficiency_is_an_agent_choice(client: httpx.AsyncClient, v1: str) -> None:
    r = await client.put(f"{v1}/agent-choice", json={"choice": "best_proficiency"})
    assert r.status_code == 200, r.text
    assert (await client.get(f"{v1}/agent-choice")).json()["choice"] == "best_proficiency"


BAD = [
    ("/agents", {"id": "a", "fname": "A", "lname": "B", "skills": ["x"],
                 "levels": {"y": 2}}, "'y' is not one of the skills"),
    ("/agents", {"id": "a", "fname": "A", "lname": "B", "skills": ["x"],
                 "levels": {"x": 6}}, "levels.x: 6 is not a level"),
    ("/agents", {"id": "a", "fname": "A", "lname": "B", "skills": ["x"],
                 "levels": {"x": "3"}}, "levels"),
    ("/contacts", {"skills": ["x"], "min_levels": {"x": 0}}, "min_levels.x: 0 is not a level"),
    ("/contacts", {"skills": ["x"], "min_levels": {"z": 2}}, "'z' is not one of the skills"),
]


async def test_bad_levels_are_422_naming_what_is_wrong(
        client: httpx.AsyncClient, v1: str, center: Center) -> None:
    # One test for every case: each case is one request, the app's setup is the cost.
    for path, body, words in BAD:
        r = await client.post(f"{v1}{path}", json=body)
        assert r.status_code == 422, (body, r.text)
        assert words in r.text, (body, r.text)
    await agent(client, v1, "a1", None)
    for level in (0, 6, "3", True, 2.5):
        r = await client.put(f"{v1}/agents/a1/skills/English/level", json={"level": level})
        assert r.status_code == 422, (level, r.text)
        assert "level" in r.text
    assert (await center.get_agent("a1")).levels == {"Billing": 1, "English": 1}
    assert await center.queue() == []
