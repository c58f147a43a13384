"""Steps by waiting time over HTTP (acd.steps): on a contact, as a center's default per
combination (.../relaxation), and what they and abandonment did (.../stats/outcomes)."""

from __future__ import annotations

import httpx

from acd import Center

RELAX = [{"after_s": 3600, "skills": ["billing"]}, {"after_s": 7200, "close": "max_wait"}]


async def due_now(center: Center, cid: str) -> None:
    """Its next step is due now, as the clock would make it an hour later."""
    await center.redis.zadd(center.keys.steps_due, {cid: 0})
    await center.redis.hset(center.keys.meta, "step_due", 0)


async def test_a_contact_with_steps_shows_what_it_needs_now_and_what_it_took(
        client: httpx.AsyncClient, v1: str, center: Center) -> None:
    r = await client.post(f"{v1}/contacts", json={"id": "c1", "skills": ["spanish", "billing"],
                                                  "steps": RELAX})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["steps"] == [{"after_ms": 3_600_000, "skills": ["billing"], "close": None},
                             {"after_ms": 7_200_000, "skills": None, "close": "max_wait"}]
    assert body["steps_taken"] == []
    await due_now(center, "c1")
    await center.dispatch()
    contact = (await client.get(f"{v1}/contacts/c1")).json()
    assert contact["skills"] == ["billing"] and contact["state"] == "queued"
    [taken] = contact["steps_taken"]
    assert taken["before"] == ["billing", "spanish"] and taken["skills"] == ["billing"]
    again = await client.post(f"{v1}/contacts", json={"id": "c1", "skills": ["billing",
                                                                              "spanish"],
                                                      "steps": RELAX})
    assert again.status_code == 200, "a retry names what it was queued with"
    await due_now(center, "c1")
    await center.dispatch()
    closed = (await client.get(f"{v1}/contacts/c1")).json()
    assert (closed["state"], closed["close_reason"]) == ("closed", "max_wait")
    outcomes = (await client.get(f"{v1}/stats/outcomes")).json()["combinations"]
    assert outcomes["billing,spanish"]["relaxed"] == 1
    assert outcomes["billing"]["closed"] == 1


async def test_bad_steps_are_422_naming_the_step(client: httpx.AsyncClient, v1: str,
                                                 center: Center) -> None:
    for steps, words in (
            ([{"after_s": 10, "close": "x"}, {"after_s": 20, "close": "y"}], "last step"),
            ([{"after_s": 20, "skills": ["a"]}, {"after_s": 10, "skills": ["b"]}],
             "must be more than the step before"),
            ([{"after_s": 10}], "either skills or close"),
            ([{"after_s": "10", "skills": ["a"]}], "valid number")):
        r = await client.post(f"{v1}/contacts", json={"skills": ["en"], "steps": steps})
        assert r.status_code == 422, r.text
        assert words in r.text, r.text
        r = await client.put(f"{v1}/relaxation/en", json={"steps": steps})
        assert r.status_code == 422 and words in r.text, r.text
    r = await client.put(f"{v1}/relaxation/en,en", json={"steps": []})
    assert r.status_code == 422 and "repeated" in r.text
    r = await client.put(f"{v1}/relaxation/en,b%20c", json={"steps": []})
    assert r.status_code == 422 and "is not valid" in r.text
    assert await center.queue() == [] and await center.default_steps() == {}


async def test_a_centers_default_per_combination(client: httpx.AsyncClient, v1: str,
                                                 center: Center) -> None:
    assert (await client.get(f"{v1}/relaxation")).json() == {"combinations": {}}
    r = await client.put(f"{v1}/relaxation/spanish,billing", json={"steps": RELAX})
    assert r.status_code == 200, r.text
    assert r.json()["skills"] == ["billing", "spanish"] and r.json()["previous"] == []
    listed = (await client.get(f"{v1}/relaxation")).json()["combinations"]
    assert [s["after_ms"] for s in listed["billing,spanish"]] == [3_600_000, 7_200_000]
    contact = (await client.post(f"{v1}/contacts", json={"skills": ["billing", "spanish"]}))
    assert len(contact.json()["steps"]) == 2
    none = await client.post(f"{v1}/contacts", json={"skills": ["billing", "spanish"],
                                                     "steps": []})
    assert none.json()["steps"] is None
    r = await client.put(f"{v1}/relaxation/billing,spanish", json={"steps": []})
    assert len(r.json()["previous"]) == 2 and r.json()["steps"] == []


async def test_abandonment_shows_its_wait_per_combination(
        client: httpx.AsyncClient, v1: str, center: Center) -> None:
    cid = (await client.post(f"{v1}/contacts", json={"skills": ["en"]})).json()["id"]
    ended = (await client.post(f"{v1}/contacts/{cid}/abandon")).json()
    wait = ended["ended_at"] - ended["queued_at"]
    outcome = (await client.get(f"{v1}/stats/outcomes")).json()["combinations"]["en"]
    assert (outcome["abandoned"], outcome["abandon_wait_ms"],
            outcome["mean_abandon_wait_ms"]) == (1, wait, wait)
