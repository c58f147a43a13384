"""PUT .../agents/{id}/state with breaks (unavailable with a reason) and logged_out."""

from __future__ import annotations

import httpx

from acd import Center


async def test_a_break_and_a_log_out_through_the_api(
        client: httpx.AsyncClient, v1: str, center: Center) -> None:
    await client.post(f"{v1}/agents", json={"id": "a", "fname": "A", "lname": "B",
                                            "skills": ["en"], "available": True})
    r = await client.put(f"{v1}/agents/a/state", json={"state": "unavailable",
                                                        "reason": "lunch"})
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["reason"]) == ("unavailable", "lunch")
    stats = (await client.get(f"{v1}/stats")).json()
    assert stats["breaks"] == {"lunch": 1}
    assert stats["agents"] == {"unavailable": 1, "available": 0, "busy": 0, "wrap_up": 0,
                               "logged_out": 0, "offered": 0}
    r = await client.put(f"{v1}/agents/a/state", json={"state": "logged_out"})
    assert (r.json()["state"], r.json()["reason"]) == ("logged_out", None)
    r = await client.put(f"{v1}/agents/a/state", json={"state": "available"})
    assert r.json()["state"] == "available"
    assert (await client.get(f"{v1}/stats")).json()["breaks"] == {}


async def test_the_original_bodies_work_as_before(
        client: httpx.AsyncClient, v1: str, center: Center) -> None:
    await client.post(f"{v1}/agents", json={"id": "a", "fname": "A", "lname": "B",
                                            "skills": ["en"]})
    for state in ("available", "unavailable"):
        r = await client.put(f"{v1}/agents/a/state", json={"state": state})
        assert r.status_code == 200 and r.json()["state"] == state
        assert r.json()["reason"] is None


async def test_bad_reasons_are_422_naming_them(
        client: httpx.AsyncClient, v1: str, center: Center) -> None:
    await center.create_agent("a", "A", "B", ["en"], available=True)
    for body in ({"state": "unavailable", "reason": "Lunch Break"},
                 {"state": "unavailable", "reason": "x" * 33},
                 {"state": "unavailable", "reason": 3},
                 {"state": "break", "reason": "lunch"},
                 {"state": "unavailable", "reason": "lunch", "why": "x"}):
        r = await client.put(f"{v1}/agents/a/state", json=body)
        assert r.status_code == 422, (body, r.text)
    r = await client.put(f"{v1}/agents/a/state", json={"state": "available",
                                                        "reason": "lunch"})
    assert r.status_code == 422 and "only a break" in r.text
    r = await client.put(f"{v1}/agents/a/state", json={"state": "unavailable",
                                                        "reason": "Lunch"})
    assert "break reason" in r.text
    assert (await center.get_agent("a")).state == "available", "nothing was written"


async def test_a_break_asked_on_a_contact_is_pending(
        client: httpx.AsyncClient, v1: str, center: Center) -> None:
    await center.create_agent("a", "A", "B", ["en"], available=True)
    cid = (await center.create_contact(["en"])).id
    await center.dispatch()
    r = await client.put(f"{v1}/agents/a/state", json={"state": "unavailable",
                                                        "reason": "meeting"})
    assert r.status_code == 200
    assert (r.json()["state"], r.json()["next_state"], r.json()["next_reason"]) == (
        "busy", "unavailable", "meeting")
    await client.post(f"{v1}/contacts/{cid}/complete")
    agent = (await client.get(f"{v1}/agents/a")).json()
    assert (agent["state"], agent["reason"]) == ("unavailable", "meeting")
