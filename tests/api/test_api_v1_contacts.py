"""/v1/centers/{center}/contacts: queueing, idempotent retries, completion, abandonment."""

from __future__ import annotations

import asyncio

import httpx

from acd import Center


async def agent(client: httpx.AsyncClient, v1: str, agent_id: str, skills: list[str]) -> None:
    r = await client.post(f"{v1}/agents", json={"id": agent_id, "fname": "A", "lname": "B",
                                                "skills": skills, "available": True})
    assert r.status_code == 201, r.text


async def test_create_and_get(client: httpx.AsyncClient, v1: str) -> None:
    r = await client.post(f"{v1}/contacts", json={"skills": ["Spanish", "Billing"]})
    assert r.status_code == 201, r.text
    contact = r.json()
    assert contact["state"] == "queued" and contact["agent"] is None
    assert contact["skills"] == ["Billing", "Spanish"]  # stored sorted
    assert len(contact["id"]) == 32
    assert (await client.get(f"{v1}/contacts/{contact['id']}")).json() == contact
    assert (await client.get(f"{v1}/contacts/nope")).status_code == 404


async def test_idempotent_retry_returns_existing(client: httpx.AsyncClient, v1: str,
                                                 center: Center) -> None:
    body = {"id": "c-1", "skills": ["English", "Support"]}
    first = await client.post(f"{v1}/contacts", json=body)
    assert first.status_code == 201
    again = await client.post(f"{v1}/contacts",
                              json={"id": "c-1", "skills": ["Support", "English"]})
    assert again.status_code == 200 and again.json() == first.json()
    other = await client.post(f"{v1}/contacts", json={"id": "c-1", "skills": ["English"]})
    assert other.status_code == 409 and "c-1" in other.json()["detail"]
    assert [c for c, _ in await center.queue()] == ["c-1"]
    assert (await center.stats()).offered == 1


async def test_concurrent_retries_create_one_contact(client: httpx.AsyncClient, v1: str,
                                                     center: Center) -> None:
    body = {"id": "dup", "skills": ["English"]}
    replies = await asyncio.gather(*(client.post(f"{v1}/contacts", json=body)
                                     for _ in range(20)))
    assert sorted(r.status_code for r in replies) == [200] * 19 + [201]
    assert len({r.json()["queued_at"] for r in replies}) == 1
    assert (await center.stats()).offered == 1


async def test_invalid_contacts_are_422(client: httpx.AsyncClient, v1: str) -> None:
    for body, field in [({"skills": []}, "skills"), ({"skills": ["a b"]}, "skills"),
                        ({"skills": ["a"], "id": "x:y"}, "id"), ({}, "skills"),
                        ({"skills": ["a"] * 2}, "skills"),
                        ({"skills": [f"s{i}" for i in range(33)]}, "skills")]:
        r = await client.post(f"{v1}/contacts", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["detail"][0]["loc"][:2] == ["body", field], r.json()
    r = await client.post(f"{v1}/contacts", content=b"{not json",
                          headers={"content-type": "application/json"})
    assert r.status_code == 422


async def test_assign_complete(client: httpx.AsyncClient, v1: str, center: Center) -> None:
    await agent(client, v1, "a1", ["English", "Billing"])
    cid = (await client.post(f"{v1}/contacts", json={"skills": ["Billing"]})).json()["id"]
    assert len(await center.dispatch()) == 1
    contact = (await client.get(f"{v1}/contacts/{cid}")).json()
    assert contact["state"] == "assigned" and contact["agent"] == "a1"
    assert (await client.get(f"{v1}/agents/a1")).json()["state"] == "busy"
    r = await client.post(f"{v1}/contacts/{cid}/abandon")
    assert r.status_code == 409 and "assigned" in r.json()["detail"]
    r = await client.post(f"{v1}/contacts/{cid}/complete")
    assert r.status_code == 200 and r.json()["state"] == "completed"
    assert r.json()["ended_at"] >= r.json()["assigned_at"]
    assert (await client.get(f"{v1}/agents/a1")).json()["state"] == "available"
    # Ending it again changes nothing
    again = await client.post(f"{v1}/contacts/{cid}/complete")
    assert again.json() == r.json()


async def test_abandon_and_complete_queued(client: httpx.AsyncClient, v1: str,
                                           center: Center) -> None:
    c1 = (await client.post(f"{v1}/contacts", json={"skills": ["x"]})).json()["id"]
    c2 = (await client.post(f"{v1}/contacts", json={"skills": ["x"]})).json()["id"]
    r = await client.post(f"{v1}/contacts/{c1}/abandon")
    assert r.status_code == 200 and r.json()["state"] == "abandoned"
    r = await client.post(f"{v1}/contacts/{c2}/complete")
    assert r.json()["state"] == "abandoned"  # never answered
    assert await center.queue() == []
    assert (await client.post(f"{v1}/contacts/none/abandon")).status_code == 404
    assert (await client.post(f"{v1}/contacts/none/complete")).status_code == 404


async def test_priority_is_taken_returned_and_orders_service(
        client: httpx.AsyncClient, v1: str, center: Center) -> None:
    r = await client.put(f"{v1}/priority", json={"seconds_per_point": 3600})
    assert r.status_code == 200 and r.json() == {"seconds_per_point": 3600, "previous": 0}
    low = (await client.post(f"{v1}/contacts", json={"skills": ["en"]})).json()
    r = await client.post(f"{v1}/contacts", json={"skills": ["en"], "priority": 7, "id": "p7"})
    assert r.status_code == 201, r.text
    high = r.json()
    assert (low["priority"], high["priority"], high["head_start_ms"]) == (0, 7, 7 * 3_600_000)
    assert (await client.get(f"{v1}/contacts/p7")).json() == high
    again = await client.post(f"{v1}/contacts", json={"skills": ["en"], "priority": 7,
                                                      "id": "p7"})
    assert again.status_code == 200 and again.json() == high
    other = await client.post(f"{v1}/contacts", json={"skills": ["en"], "priority": 1,
                                                      "id": "p7"})
    assert other.status_code == 409 and "priority 7" in other.json()["detail"]
    await agent(client, v1, "a1", ["en"])
    [first] = await center.dispatch(most=1)
    assert first.contact == "p7"


async def test_invalid_priorities_are_422(client: httpx.AsyncClient, v1: str) -> None:
    for bad in (-1, 101, "5", 5.0, True, None):
        r = await client.post(f"{v1}/contacts", json={"skills": ["en"], "priority": bad})
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["detail"][0]["loc"][:2] == ["body", "priority"], r.json()
    for bad_seconds in (-1, 86_401, "60", True, None):
        r = await client.put(f"{v1}/priority", json={"seconds_per_point": bad_seconds})
        assert r.status_code == 422, (bad_seconds, r.text)
        assert r.json()["detail"][0]["loc"][:2] == ["body", "seconds_per_point"], r.json()


async def test_openapi_documents_priority(client: httpx.AsyncClient) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    field = schemas["ContactCreate"]["properties"]["priority"]
    assert (field["minimum"], field["maximum"], field["default"]) == (0, 100, 0)
    assert "seconds per point" in field["description"]
    assert {"priority", "head_start_ms"} <= set(schemas["Contact"]["properties"])
    assert "priority" not in schemas["CompatContactIn"]["properties"]
