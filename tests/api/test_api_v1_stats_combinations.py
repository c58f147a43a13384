"""GET /v1/centers/{center}/stats/combinations: why contacts wait, per skill combination.

The real app on the test Redis; no dispatcher runs, so the test's own dispatch rounds
decide who is served."""

from __future__ import annotations

from typing import Any

import httpx

from acd import Center


async def agent(client: httpx.AsyncClient, v1: str, aid: str, skills: list[str],
                available: bool) -> None:
    r = await client.post(f"{v1}/agents", json={"id": aid, "fname": "F", "lname": "L",
                                                "skills": skills, "available": available})
    assert r.status_code == 201, r.text


async def contact(client: httpx.AsyncClient, v1: str, cid: str, skills: list[str]) -> None:
    r = await client.post(f"{v1}/contacts", json={"id": cid, "skills": skills})
    assert r.status_code == 201, r.text


def rows(body: dict[str, Any]) -> list[tuple[list[str], int, str, int, int]]:
    return [(c["skills"], c["waiting"], c["state"], c["eligible"], c["available"])
            for c in body["combinations"]]


async def test_unservable_busy_and_served_combinations(client: httpx.AsyncClient, v1: str,
                                                       center: Center) -> None:
    await agent(client, v1, "ann", ["Billing", "English"], available=True)
    await agent(client, v1, "bob", ["Support"], available=True)
    await contact(client, v1, "first", ["English", "Billing"])
    await center.dispatch()  # ann takes it: she is busy now
    await contact(client, v1, "fr", ["French"])  # nobody has French
    await contact(client, v1, "second", ["Billing", "English"])  # ann's, who is busy
    await contact(client, v1, "served", ["Support"])  # bob is available
    [done] = await center.dispatch()
    assert (done.contact, done.agent) == ("served", "bob")
    r = await client.get(f"{v1}/stats/combinations")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["center"], body["waiting"], body["total"], body["complete"]) == (
        center.name, 2, 2, True)
    assert rows(body) == [(["French"], 1, "parked", 0, 0),
                          (["Billing", "English"], 1, "parked", 1, 0)]
    assert body["combinations"][0]["oldest_wait_ms"] >= body["combinations"][1][
        "oldest_wait_ms"] >= 0
    # ann ends her contact: her combination is ready, with one agent available.
    assert (await client.post(f"{v1}/contacts/first/complete")).status_code == 200
    body = (await client.get(f"{v1}/stats/combinations", params={"limit": 1})).json()
    assert body["total"] == 2 and rows(body) == [(["French"], 1, "parked", 0, 0)]
    body = (await client.get(f"{v1}/stats/combinations")).json()
    assert rows(body)[1] == (["Billing", "English"], 1, "ready", 1, 1)


async def test_an_empty_center(client: httpx.AsyncClient, v1: str) -> None:
    body = (await client.get(f"{v1}/stats/combinations")).json()
    assert (body["waiting"], body["total"], body["complete"], body["combinations"]) == (
        0, 0, True, [])


async def test_a_bad_limit_is_422(client: httpx.AsyncClient, v1: str) -> None:
    for limit in ("0", "501", "-1", "x", "1.5", "true", ""):
        r = await client.get(f"{v1}/stats/combinations", params={"limit": limit})
        assert r.status_code == 422, (limit, r.text)
        assert r.json()["detail"][0]["loc"] == ["query", "limit"], r.json()
    r = await client.get(f"{v1}/stats/combinations?limit=5&limit=500")
    assert r.status_code == 422 and "takes one value" in r.text


async def test_documented_in_openapi(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    op = spec["paths"]["/v1/centers/{center}/stats/combinations"]["get"]
    [limit] = [p for p in op["parameters"] if p["name"] == "limit"]
    assert limit["in"] == "query" and limit["schema"]["default"] == 50
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 500)
    row = spec["components"]["schemas"]["CombinationStats"]["properties"]
    assert {"skills", "waiting", "oldest_wait_ms", "state", "eligible", "available"} <= set(row)
    assert "eligible" in op["description"] and "parked" in op["description"]
