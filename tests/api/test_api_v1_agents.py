"""/v1/centers/{center}/agents and /skills."""

from __future__ import annotations

import httpx
import pytest

from acd import Center


async def create(client: httpx.AsyncClient, v1: str, agent_id: str = "a1",
                 skills: list[str] | None = None, available: bool = False) -> httpx.Response:
    body = {"id": agent_id, "fname": "Ada", "lname": "Lovelace",
            "skills": skills or ["English", "Billing"], "available": available}
    return await client.post(f"{v1}/agents", json=body)


async def test_create_get_list(client: httpx.AsyncClient, v1: str) -> None:
    r = await create(client, v1)
    assert r.status_code == 201, r.text
    agent = r.json()
    assert agent["id"] == "a1" and agent["state"] == "unavailable"
    assert agent["skills"] == ["English", "Billing"]
    assert (await client.get(f"{v1}/agents/a1")).json() == agent
    await create(client, v1, "a2", available=True)
    listed = (await client.get(f"{v1}/agents")).json()
    assert [a["id"] for a in listed] == ["a1", "a2"]
    assert listed[1]["state"] == "available" and listed[1]["available_since"] > 0


async def test_create_twice_is_409(client: httpx.AsyncClient, v1: str) -> None:
    assert (await create(client, v1)).status_code == 201
    r = await create(client, v1)
    assert r.status_code == 409 and "a1" in r.json()["detail"]


@pytest.mark.parametrize(("body", "field"), [
    ({"id": "bad id", "fname": "A", "lname": "B", "skills": ["x"]}, "id"),
    ({"id": "a", "fname": "", "lname": "B", "skills": ["x"]}, "fname"),
    ({"id": "a", "fname": "A", "lname": "B", "skills": []}, "skills"),
    ({"id": "a", "fname": "A", "lname": "B", "skills": ["x", "x"]}, "skills"),
    ({"id": "a", "fname": "A", "lname": "B", "skills": ["{tag}"]}, "skills"),
    ({"id": "a", "fname": "A", "lname": "B", "skills": ["x"], "extra": 1}, "extra"),
    ({"id": "a", "fname": "A", "lname": "B"}, "skills"),
])
async def test_create_invalid_is_422_naming_the_field(
        client: httpx.AsyncClient, v1: str, body: dict[str, object], field: str) -> None:
    r = await client.post(f"{v1}/agents", json=body)
    assert r.status_code == 422, r.text
    locs = [item["loc"] for item in r.json()["detail"]]
    assert any(loc[:2] == ["body", field] for loc in locs), locs
    assert all(item["msg"] for item in r.json()["detail"])


async def test_invalid_names_in_paths_are_422(client: httpx.AsyncClient, v1: str) -> None:
    for method, url in [("GET", "/v1/centers/bad%7Bc%7D/agents"),
                        ("GET", f"{v1}/agents/a%20b"),
                        ("GET", f"{v1}/agents/{'x' * 65}"),
                        ("GET", f"{v1}/agents/a%0A"),
                        ("PUT", f"{v1}/agents/a1/skills/_x"),
                        ("DELETE", f"{v1}/skills/a:b")]:
        r = await client.request(method, url)
        assert r.status_code == 422, (url, r.text)
        assert r.json()["detail"][0]["loc"][0] == "path"


async def test_get_missing_is_404(client: httpx.AsyncClient, v1: str) -> None:
    r = await client.get(f"{v1}/agents/nobody")
    assert r.status_code == 404 and "nobody" in r.json()["detail"]
    assert (await client.patch(f"{v1}/agents/nobody",
                               json={"fname": "a", "lname": "b"})).status_code == 404
    assert (await client.delete(f"{v1}/agents/nobody")).status_code == 404
    assert (await client.put(f"{v1}/agents/nobody/state",
                             json={"state": "available"})).status_code == 404
    assert (await client.put(f"{v1}/agents/nobody/skills/x")).status_code == 404


async def test_update_names(client: httpx.AsyncClient, v1: str) -> None:
    await create(client, v1)
    r = await client.patch(f"{v1}/agents/a1", json={"fname": "Grace", "lname": "Hopper"})
    assert r.status_code == 200
    assert (r.json()["fname"], r.json()["lname"]) == ("Grace", "Hopper")
    r = await client.patch(f"{v1}/agents/a1", json={"fname": "Grace"})
    assert r.status_code == 422


async def test_state_changes(client: httpx.AsyncClient, v1: str, center: Center) -> None:
    await create(client, v1)
    r = await client.put(f"{v1}/agents/a1/state", json={"state": "available"})
    assert r.status_code == 200 and r.json()["state"] == "available"
    cands = (await client.get(f"{v1}/candidates", params={"skills": ["English"]})).json()
    assert [c["agent"] for c in cands] == ["a1"]
    r = await client.put(f"{v1}/agents/a1/state", json={"state": "unavailable"})
    assert r.json()["state"] == "unavailable"
    r = await client.put(f"{v1}/agents/a1/state", json={"state": "busy"})
    assert r.status_code == 422
    assert (await center.get_agent("a1")).state == "unavailable"


async def test_state_of_an_agent_on_a_contact(client: httpx.AsyncClient, v1: str,
                                              center: Center) -> None:
    await create(client, v1, available=True)
    cid = (await client.post(f"{v1}/contacts", json={"skills": ["English"]})).json()["id"]
    assert len(await center.dispatch()) == 1
    r = await client.put(f"{v1}/agents/a1/state", json={"state": "available"})
    assert r.status_code == 409
    assert r.json()["detail"] == (f"agent a1 is on contact {cid}: it becomes available when "
                                  "that contact ends")
    r = await client.put(f"{v1}/agents/a1/state", json={"state": "unavailable"})
    assert r.status_code == 200
    body = r.json()
    assert (body["state"], body["contact"], body["next_state"]) == ("busy", cid, "unavailable")
    r = await client.put(f"{v1}/agents/a1/state", json={"state": "available"})
    assert r.status_code == 200 and r.json()["next_state"] is None, "cancels the pending change"
    await client.put(f"{v1}/agents/a1/state", json={"state": "unavailable"})
    assert (await client.post(f"{v1}/contacts/{cid}/complete")).status_code == 200
    assert (await client.get(f"{v1}/agents/a1")).json()["state"] == "unavailable"


async def test_delete_agent(client: httpx.AsyncClient, v1: str) -> None:
    await create(client, v1)
    r = await client.delete(f"{v1}/agents/a1")
    assert r.status_code == 204 and r.content == b""
    assert (await client.get(f"{v1}/agents/a1")).status_code == 404


async def test_delete_busy_agent_is_409(client: httpx.AsyncClient, v1: str,
                                        center: Center) -> None:
    await create(client, v1, available=True)
    await client.post(f"{v1}/contacts", json={"skills": ["English"]})
    assert len(await center.dispatch()) == 1
    r = await client.delete(f"{v1}/agents/a1")
    assert r.status_code == 409 and "contact" in r.json()["detail"]


async def test_skills(client: httpx.AsyncClient, v1: str) -> None:
    await create(client, v1, skills=["English"], available=True)
    r = await client.put(f"{v1}/agents/a1/skills/Billing")
    assert r.status_code == 200 and r.json()["skills"] == ["English", "Billing"]
    assert (await client.put(f"{v1}/agents/a1/skills/Billing")).status_code == 409
    assert (await client.get(f"{v1}/skills")).json() == ["Billing", "English"]
    cands = (await client.get(f"{v1}/candidates",
                              params={"skills": ["English", "Billing"]})).json()
    assert [c["agent"] for c in cands] == ["a1"]
    r = await client.delete(f"{v1}/agents/a1/skills/English")
    assert r.status_code == 200 and r.json()["skills"] == ["Billing"]
    assert (await client.delete(f"{v1}/agents/a1/skills/English")).status_code == 404
    await create(client, v1, "a2", skills=["Billing", "Spanish"])
    await client.put(f"{v1}/agents/a1/skills/French")
    r = await client.delete(f"{v1}/skills/Billing")
    assert r.status_code == 200 and r.json() == {"skill": "Billing", "agents": 2, "abandoned": 0}
    assert (await client.get(f"{v1}/agents/a1")).json()["skills"] == ["French"]
    # Only skills some agent still has are listed: nobody has English any more.
    assert (await client.get(f"{v1}/skills")).json() == ["French", "Spanish"]
    r = await client.delete(f"{v1}/skills/nothing")
    assert r.status_code == 404 and r.json() == {"detail": "not found: skill nothing"}


async def test_candidates_rank_longest_available_first(client: httpx.AsyncClient,
                                                       v1: str) -> None:
    for agent_id in ("late", "early"):
        await create(client, v1, agent_id, skills=["English"])
    await client.put(f"{v1}/agents/early/state", json={"state": "available"})
    await client.put(f"{v1}/agents/late/state", json={"state": "available"})
    cands = (await client.get(f"{v1}/candidates", params={"skills": "English"})).json()
    assert [c["agent"] for c in cands] == ["early", "late"]
    assert cands[0]["available_since"] <= cands[1]["available_since"]
    assert (await client.get(f"{v1}/candidates")).status_code == 422
    assert (await client.get(f"{v1}/candidates",
                             params={"skills": ["a", "a"]})).status_code == 422
