"""/v1/centers/{center}/wrap-up and .../agents/{id}/wrap-up/end (acd.wrap_up)."""

from __future__ import annotations

import httpx

from acd import Center


async def test_the_wrap_up_option(client: httpx.AsyncClient, v1: str, center: Center) -> None:
    assert (await client.get(f"{v1}/wrap-up")).json() == {"wrap_up_seconds": 0.0,
                                                          "previous": None}
    r = await client.put(f"{v1}/wrap-up", json={"wrap_up_seconds": 30})
    assert r.status_code == 200 and r.json() == {"wrap_up_seconds": 30.0, "previous": 0.0}
    r = await client.put(f"{v1}/wrap-up", json={"wrap_up_seconds": 0.0333})
    assert r.json() == {"wrap_up_seconds": 0.033, "previous": 30.0}, "kept to the ms"
    assert await center.wrap_up_seconds() == 0.033


async def test_bad_values_are_422_naming_them(client: httpx.AsyncClient, v1: str,
                                              center: Center) -> None:
    await center.set_wrap_up(5)
    for body in ({"wrap_up_seconds": -1}, {"wrap_up_seconds": 3601},
                 {"wrap_up_seconds": "30"}, {"wrap_up_seconds": True},
                 {"wrap_up_seconds": None}, {}, {"wrap_up_seconds": 1, "x": 1}):
        r = await client.put(f"{v1}/wrap-up", json=body)
        assert r.status_code == 422, (body, r.text)
        locs = [e["loc"] for e in r.json()["detail"]]
        assert ["body", "wrap_up_seconds"] in locs or ["body", "x"] in locs, (body, locs)
    r = await client.put(f"{v1}/wrap-up", content=b'{"wrap_up_seconds": NaN}',
                         headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert await center.wrap_up_seconds() == 5, "a refused change writes nothing"


async def test_an_agent_in_wrap_up_is_seen_and_can_end_it(
        client: httpx.AsyncClient, v1: str, center: Center) -> None:
    await client.put(f"{v1}/wrap-up", json={"wrap_up_seconds": 60})
    await client.post(f"{v1}/agents", json={"id": "a", "fname": "A", "lname": "B",
                                            "skills": ["en"], "available": True})
    cid = (await client.post(f"{v1}/contacts", json={"skills": ["en"]})).json()["id"]
    await center.dispatch()
    r = await client.post(f"{v1}/contacts/{cid}/complete")
    assert r.status_code == 200, r.text
    agent = (await client.get(f"{v1}/agents/a")).json()
    assert agent["state"] == "wrap_up" and agent["wrap_up_until"] > 0
    assert agent["contact"] is None
    assert (await client.get(f"{v1}/stats")).json()["agents"] == {
        "unavailable": 0, "available": 0, "busy": 0, "wrap_up": 1, "logged_out": 0, "offered": 0}
    r = await client.put(f"{v1}/agents/a/state", json={"state": "available"})
    assert r.status_code == 409 and "wrap-up" in r.json()["detail"]
    r = await client.put(f"{v1}/agents/a/state", json={"state": "wrap_up"})
    assert r.status_code == 422
    r = await client.post(f"{v1}/agents/a/wrap-up/end")
    assert r.status_code == 200 and r.json()["state"] == "available"
    r = await client.post(f"{v1}/agents/a/wrap-up/end")
    assert r.status_code == 409 and "not in wrap-up" in r.json()["detail"]
    assert (await client.post(f"{v1}/agents/nobody/wrap-up/end")).status_code == 404
    assert (await client.post(f"{v1}/agents/no%20way/wrap-up/end")).status_code == 422
