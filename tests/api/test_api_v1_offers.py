"""/v1/centers/{center}/offers and the answers to an offer (acd.offers)."""

from __future__ import annotations

import httpx

from acd import Center


async def test_the_offers_setting(client: httpx.AsyncClient, v1: str, center: Center) -> None:
    off = {"timeout_s": 0.0, "max_misses": 0, "backoff_s": 0.0}
    assert (await client.get(f"{v1}/offers")).json() == off
    r = await client.put(f"{v1}/offers", json={"timeout_s": 20, "max_misses": 3,
                                               "backoff_s": 30})
    assert r.status_code == 200, r.text
    assert r.json() == {"timeout_s": 20.0, "max_misses": 3, "backoff_s": 30.0}
    r = await client.put(f"{v1}/offers", json={"timeout_s": 0})
    assert r.json() == off, "omitted fields are 0"


async def test_bad_settings_are_422_naming_them(client: httpx.AsyncClient, v1: str,
                                               center: Center) -> None:
    await center.set_offers(10)
    for body, field in (({"timeout_s": -1}, "timeout_s"), ({"timeout_s": 601}, "timeout_s"),
                        ({"timeout_s": "5"}, "timeout_s"), ({}, "timeout_s"),
                        ({"timeout_s": 5, "max_misses": 1.5}, "max_misses"),
                        ({"timeout_s": 5, "backoff_s": 3601}, "backoff_s"),
                        ({"timeout_s": 5, "x": 1}, "x")):
        r = await client.put(f"{v1}/offers", json=body)
        assert r.status_code == 422, (body, r.text)
        assert ["body", field] in [e["loc"] for e in r.json()["detail"]], (body, r.text)
    assert (await center.offer_settings()).timeout_s == 10, "a refused change writes nothing"


async def test_an_offer_answered_by_the_agent_and_on_the_contact(
        client: httpx.AsyncClient, v1: str, center: Center) -> None:
    await client.put(f"{v1}/offers", json={"timeout_s": 60, "backoff_s": 60})
    await client.post(f"{v1}/agents", json={"id": "a", "fname": "A", "lname": "B",
                                            "skills": ["en"], "available": True})
    cid = (await client.post(f"{v1}/contacts", json={"skills": ["en"]})).json()["id"]
    await center.dispatch()
    contact = (await client.get(f"{v1}/contacts/{cid}")).json()
    assert (contact["state"], contact["agent"]) == ("offered", "a")
    assert (await client.get(f"{v1}/stats")).json()["agents"]["offered"] == 1
    r = await client.post(f"{v1}/agents/a/offer/reject")
    assert r.status_code == 200 and r.json()["state"] == "available"
    assert r.json()["missed_offers"] == 1
    r = await client.post(f"{v1}/agents/a/offer/reject")
    assert r.status_code == 409 and "no offer" in r.json()["detail"]
    await client.post(f"{v1}/agents", json={"id": "b", "fname": "A", "lname": "B",
                                            "skills": ["en"], "available": True})
    await center.dispatch()  # a may not be offered it again yet: b is
    r = await client.post(f"{v1}/contacts/{cid}/offer/accept")
    assert r.status_code == 200, r.text
    assert (r.json()["id"], r.json()["state"], r.json()["contact"]) == ("b", "busy", cid)
    r = await client.post(f"{v1}/contacts/{cid}/offer/accept")
    assert r.status_code == 409 and "not offered" in r.json()["detail"]
    assert (await client.post(f"{v1}/agents/a/offer/maybe")).status_code == 422
    assert (await client.post(f"{v1}/agents/nobody/offer/accept")).status_code == 404
    assert (await client.post(f"{v1}/contacts/nobody/offer/accept")).status_code == 404
