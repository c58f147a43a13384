"""GET /v1/centers/{center}/contacts/{id}/explanation (acd.explanation)."""

from __future__ import annotations

import httpx

from acd import Center


async def test_an_assignment_is_explained(client: httpx.AsyncClient, v1: str,
                                          center: Center) -> None:
    assert (await client.get(f"{v1}/explanations")).json() == {"record": False,
                                                               "previous": None}
    r = await client.put(f"{v1}/explanations", json={"record": True})
    assert r.status_code == 200 and r.json() == {"record": True, "previous": False}
    for agent_id, skills in (("gen", ["billing", "en", "es"]), ("spec", ["billing"])):
        await client.post(f"{v1}/agents", json={"id": agent_id, "fname": "A", "lname": "B",
                                                "skills": skills, "available": True})
    await client.put(f"{v1}/agent-choice", json={"choice": "fewest_skills"})
    await client.post(f"{v1}/contacts", json={"id": "c1", "skills": ["billing"]})
    await center.dispatch()
    r = await client.get(f"{v1}/contacts/c1/explanation")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["agent"] == "spec" and body["rule"] == "fewest_skills"
    assert body["decided_by"] == "fewest_skills" and body["order"] == "arrival"
    assert [(c["agent"], c["rank"], c["skills"]) for c in body["candidates"]] == [
        ("spec", 1, 1), ("gen", 2, 3)]
    assert body["summary"].startswith("Contact c1 went to spec:")
    # Completed, it still says why it went where it went.
    await client.post(f"{v1}/contacts/c1/complete")
    assert (await client.get(f"{v1}/contacts/c1/explanation")).json()["agent"] == "spec"


async def test_no_explanation_is_a_clear_404_and_bad_input_422(
        client: httpx.AsyncClient, v1: str, center: Center) -> None:
    await client.post(f"{v1}/agents", json={"id": "a", "fname": "A", "lname": "B",
                                            "skills": ["en"], "available": True})
    await client.post(f"{v1}/contacts", json={"id": "off", "skills": ["en"]})
    await center.dispatch()
    r = await client.get(f"{v1}/contacts/off/explanation")
    assert r.status_code == 404 and "turn explanations on" in r.json()["detail"], r.text
    await client.put(f"{v1}/explanations", json={"record": True})
    await client.post(f"{v1}/contacts", json={"id": "waits", "skills": ["klingon"]})
    r = await client.get(f"{v1}/contacts/waits/explanation")
    assert r.status_code == 404
    assert r.json()["detail"].endswith(
        "explanation of contact waits: it is queued, with no assignment recorded")
    r = await client.get(f"{v1}/contacts/nobody/explanation")
    assert r.status_code == 404 and "contact nobody" in r.json()["detail"]
    r = await client.get(f"{v1}/contacts/no%20way/explanation")
    assert r.status_code == 422
    for body in ({"record": "yes"}, {"record": 1}, {}, {"record": True, "x": 1}):
        r = await client.put(f"{v1}/explanations", json=body)
        assert r.status_code == 422, (body, r.text)
    assert await center.explanations() is True, "a refused change writes nothing"
