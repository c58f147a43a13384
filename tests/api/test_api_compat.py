"""The original demo's routes and payloads, and its simulator's client flow replayed
against a real uvicorn (2 workers) with a real dispatcher running."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import httpx
from acd_invariants import check_invariants

from acd import Center
from acd.dispatcher import Dispatcher
from lab.apiserver import ApiServer

LANGUAGES = ["English", "Spanish"]
EXPERTISE = ["Support", "Disputes", "Billing"]
COMBOS = [[lang, exp] for lang in LANGUAGES for exp in EXPERTISE]


async def test_acd_open_close(client: httpx.AsyncClient, center: Center) -> None:
    await center.create_agent("1", "A", "B", ["English"])
    r = await client.post("/acd", json={"state": 1})
    assert r.status_code == 201 and r.json() == {"acd_state": 1, "changed": 1}
    assert (await center.get_agent("1")).state == "available"
    r = await client.post("/acd", json={"state": 0})
    assert r.json()["acd_state"] == 0
    assert (await center.get_agent("1")).state == "unavailable"
    for bad in ({"state": 2}, {"state": "open"}, {}):
        assert (await client.post("/acd", json=bad)).status_code == 422


async def test_contact_lifecycle(client: httpx.AsyncClient, center: Center) -> None:
    r = await client.post("/agent/agent:7", json={"fname": "Ada", "lname": "L",
                                                  "skills": ["English", "Billing"]})
    assert r.status_code == 201 and r.json() == {"agent_key": "agent:7"}
    r = await client.post("/contact", json={"skills": ["English", "Billing"]})
    assert r.status_code == 201
    key = r.json()["contact_key"]
    assert key.startswith("contact:")
    r = await client.get(f"/contact/{key}")
    assert r.status_code == 200
    assert r.json() == {"skills": ["Billing", "English"], "state": 1, "agent": None}
    assert (await client.patch("/agent/agent:7/state", json={"state": 1})).status_code == 200
    assert len(await center.dispatch()) == 1
    assert (await client.get(f"/contact/{key}")).json()["state"] == 2
    assert (await client.get(f"/contact/{key}")).json()["agent"] == "agent:7"
    # The demo's simulator frees the agent first, then completes the contact.
    assert (await client.patch("/agent/agent:7/state", json={"state": 1})).status_code == 200
    r = await client.patch(f"/contact/{key}")
    assert r.status_code == 200 and r.json() == {"contact_key": key}
    assert (await client.get(f"/contact/{key}")).json()["state"] == 3
    assert (await center.get_agent("7")).state == "available"


async def test_a_late_available_changes_nothing(client: httpx.AsyncClient,
                                                center: Center) -> None:
    # Complete, the dispatcher gives the agent its next contact, then the demo's
    # "available": the agent stays on its new contact and the demo's answer is unchanged.
    await client.post("/agent/agent:7", json={"fname": "A", "lname": "L", "skills": ["en"]})
    await client.patch("/agent/agent:7/state", json={"state": 1})
    first = (await client.post("/contact", json={"skills": ["en"]})).json()["contact_key"]
    await center.dispatch()
    assert (await client.patch(f"/contact/{first}")).status_code == 200
    second = (await client.post("/contact", json={"skills": ["en"]})).json()["contact_key"]
    assert len(await center.dispatch()) == 1
    r = await client.patch("/agent/agent:7/state", json={"state": 1})
    assert r.status_code == 200 and r.json() == {"agent_key": "agent:7"}
    third = (await client.post("/contact", json={"skills": ["en"]})).json()["contact_key"]
    assert await center.dispatch() == []
    assert (await client.get(f"/contact/{second}")).json()["state"] == 2
    assert (await client.get(f"/contact/{third}")).json()["state"] == 1
    agent = await center.get_agent("7")
    assert (agent.state, agent.contact) == ("busy", second.partition(":")[2])
    await check_invariants(center)


async def test_abandoned_reads_as_complete(client: httpx.AsyncClient) -> None:
    key = (await client.post("/contact", json={"skills": ["x"]})).json()["contact_key"]
    assert (await client.patch(f"/contact/{key}")).status_code == 200
    assert (await client.get(f"/contact/{key}")).json() == {
        "skills": ["x"], "state": 3, "agent": None}


async def test_agent_routes(client: httpx.AsyncClient, center: Center) -> None:
    body = {"fname": "Ada", "lname": "L", "skills": ["English"]}
    assert (await client.post("/agent/agent:a", json=body)).status_code == 201
    assert (await client.post("/agent/agent:a", json=body)).status_code == 409
    r = await client.patch("/agent/agent:a", json={"fname": "Grace", "lname": "H"})
    assert r.status_code == 200 and r.json() == {"agent_key": "agent:a"}
    assert (await center.get_agent("a")).fname == "Grace"
    r = await client.patch("/agent/agent:a/skill", json={"skill": "Billing"})
    assert r.status_code == 200
    assert (await client.patch("/agent/agent:a/skill", json={"skill": "Billing"})
            ).status_code == 409
    r = await client.patch("/agent/agent:a/skill", json={"skill": "bad skill"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "skill"]
    r = await client.delete("/agent/agent:a/skill/English")
    assert r.status_code == 200 and r.json() == {"skill": "English"}
    assert (await center.get_agent("a")).skills == ["Billing"]
    r = await client.delete("/skill/Billing")  # a's only skill: an agent keeps one
    assert r.status_code == 409 and "a" in r.json()["detail"]
    assert (await client.patch("/agent/agent:a/skill", json={"skill": "French"})
            ).status_code == 200
    r = await client.delete("/skill/Billing")
    assert r.status_code == 200 and r.json() == {"skill": "Billing"}
    assert (await center.get_agent("a")).skills == ["French"]
    r = await client.patch("/agent/agent:a/state", json={"state": 0})
    assert r.status_code == 200
    assert (await client.patch("/agent/agent:a/state", json={"state": 3})).status_code == 422
    r = await client.delete("/agent/agent:a")
    assert r.status_code == 200 and r.json() == {"agent_key": "agent:a"}
    assert (await client.delete("/agent/agent:a")).status_code == 404


async def test_keys_are_validated(client: httpx.AsyncClient) -> None:
    body = {"fname": "Ada", "lname": "L", "skills": ["English"]}
    for url in ["/agent/7", "/agent/agent:", "/agent/agent:a%20b", "/agent/contact:1",
                "/agent/agent:%7Bx%7D"]:
        r = await client.post(url, json=body)
        assert r.status_code == 422, url
        assert r.json()["detail"][0]["loc"] == ["path", "agent_key"]
    for url in ["/contact/agent:1", "/contact/contact:a:b", "/contact/x"]:
        assert (await client.get(url)).status_code == 422, url
    assert (await client.get("/contact/contact:missing")).status_code == 404
    r = await client.post("/contact", json={"skills": ["a b"]})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "skills", 0]
    assert (await client.post("/contact", json={"skills": []})).status_code == 422


# -- the demo's simulator, replayed -----------------------------------------------------
async def contact_flow(http: httpx.AsyncClient, rng: random.Random,
                       seen: dict[str, int]) -> None:
    """One simulated caller, as in the demo: queue, wait, read, free the agent, complete."""
    r = await http.post("/contact", json={"skills": rng.choice(COMBOS)})
    assert r.status_code == 201, r.text
    key = r.json()["contact_key"]
    await asyncio.sleep(rng.uniform(0.05, 0.3))
    state = (await http.get(f"/contact/{key}")).json()
    seen[key] = state["state"]
    # The demo's clients complete, then set the agent available; some do it the other way.
    # state["agent"] is the demo's agent key, "agent:<id>".
    steps = [f"/contact/{key}"]
    if state["state"] == 2:
        steps.insert(rng.randrange(2), f"/agent/{state['agent']}/state")
    for url in steps:
        r = await http.patch(url, json={"state": 1} if url.startswith("/agent") else None)
        assert r.status_code == 200, r.text


async def all_events(http: httpx.AsyncClient, center: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    after = "0"
    while True:
        page = (await http.get(f"/v1/centers/{center}/events",
                               params={"after": after, "count": 1000})).json()
        if not page["events"]:
            return events
        events += page["events"]
        after = page["last_id"]


def assert_never_double_booked(events: list[dict[str, Any]]) -> int:
    """Replay the event stream: an agent is assigned only when the contact it was last
    assigned has been completed (only a completion ends an agent's contact)."""
    on_contact: dict[str, str] = {}  # agent -> contact
    agent_of: dict[str, str] = {}  # contact -> agent
    assignments = 0
    for e in events:
        if e["type"] == "contact_assigned":
            assert e["agent"] not in on_contact, (
                f"agent {e['agent']} assigned {e['contact']} while on {on_contact[e['agent']]}")
            on_contact[e["agent"]] = e["contact"]
            agent_of[e["contact"]] = e["agent"]
            assignments += 1
        elif e["type"] == "contact_completed" and e["contact"] in agent_of:
            on_contact.pop(agent_of.pop(e["contact"]))
    assert not on_contact, f"agents still on contacts: {on_contact}"
    return assignments


async def test_demo_simulator_flow(uvicorn_server: ApiServer, center: Center,
                                   api_headers: dict[str, str]) -> None:
    rng = random.Random(0)
    n_agents, n_contacts = 36, 100
    dispatcher = Dispatcher(Center(center.redis, center.name), idle_ms=200)
    task = asyncio.create_task(dispatcher.run())
    try:
        async with httpx.AsyncClient(base_url=uvicorn_server.url, timeout=10.0,
                                     headers=api_headers) as http:
            for i in range(n_agents):
                r = await http.post(f"/agent/agent:{i}", json={
                    "fname": f"F{i}", "lname": f"L{i}", "skills": COMBOS[i % len(COMBOS)]})
                assert r.status_code == 201, r.text
            assert (await http.post("/acd", json={"state": 1})).json()["changed"] == n_agents
            seen: dict[str, int] = {}
            t0 = time.monotonic()
            flows = []
            for _ in range(n_contacts):
                flows.append(asyncio.create_task(contact_flow(http, rng, seen)))
                await asyncio.sleep(0.03)
            await asyncio.wait_for(asyncio.gather(*flows), timeout=60)
            elapsed = time.monotonic() - t0

            # Every contact ended; an assigned one completed, an unanswered one abandoned.
            assert len(seen) == n_contacts
            outcomes = {"completed": 0, "abandoned": 0}
            for key, observed in seen.items():
                assert (await http.get(f"/contact/{key}")).json()["state"] == 3
                cid = key.partition(":")[2]
                c = (await http.get(f"/v1/centers/{center.name}/contacts/{cid}")).json()
                outcomes[c["state"]] += 1
                if c["state"] == "completed":
                    assert c["agent"] and c["assigned_at"] >= c["queued_at"], c
                    agent = await center.get_agent(c["agent"])
                    assert set(c["skills"]) <= set(agent.skills), (c, agent)
                else:
                    assert c["state"] == "abandoned" and c["agent"] is None, c
                    assert observed == 1, (key, observed)
            assert outcomes["completed"] >= 0.8 * n_contacts, outcomes

            events = await all_events(http, center.name)
            assert assert_never_double_booked(events) == outcomes["completed"]

            stats = (await http.get(f"/v1/centers/{center.name}/stats")).json()
            assert stats["offered"] == n_contacts and stats["waiting"] == 0
            assert stats["completed"] == outcomes["completed"]
            assert stats["abandoned"] == outcomes["abandoned"]
            assert stats["agents"] == {"available": n_agents, "busy": 0, "unavailable": 0,
                                       "wrap_up": 0, "logged_out": 0, "offered": 0}
            await check_invariants(center)

            assert (await http.post("/acd", json={"state": 0})).json()["changed"] == n_agents
            agents = (await http.get(f"/v1/centers/{center.name}/agents")).json()
            assert {a["state"] for a in agents} == {"unavailable"}
            print(f"simulated {n_contacts} contacts in {elapsed:.1f} s: {outcomes}, "
                  f"mean wait {stats['mean_wait_ms']:.1f} ms")
    finally:
        dispatcher.stop()
        await asyncio.wait_for(task, timeout=10)
