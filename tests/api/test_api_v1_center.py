"""/v1/centers/{center}: open/close, queue, stats, events, KPIs."""

from __future__ import annotations

import asyncio
import time

import httpx

from acd import Center


async def add_agents(client: httpx.AsyncClient, v1: str, n: int, skills: list[str]) -> None:
    for i in range(n):
        r = await client.post(f"{v1}/agents", json={"id": f"a{i}", "fname": "A", "lname": "B",
                                                    "skills": skills})
        assert r.status_code == 201


async def test_open_close(client: httpx.AsyncClient, v1: str) -> None:
    await add_agents(client, v1, 3, ["English"])
    r = await client.put(f"{v1}/state", json={"open": True})
    assert r.status_code == 200 and r.json() == {"open": True, "changed": 3}
    assert (await client.put(f"{v1}/state", json={"open": True})).json()["changed"] == 0
    stats = (await client.get(f"{v1}/stats")).json()
    assert stats["open"] is True and stats["agents"]["available"] == 3
    r = await client.put(f"{v1}/state", json={"open": False})
    assert r.json() == {"open": False, "changed": 3}
    assert (await client.put(f"{v1}/state", json={"open": "maybe"})).status_code == 422


async def test_dispatch_mode(client: httpx.AsyncClient, v1: str, center: Center) -> None:
    assert (await client.get(f"{v1}/stats")).json()["dispatch_mode"] == "automatic"
    r = await client.put(f"{v1}/dispatch-mode", json={"mode": "manual"})
    assert r.status_code == 200 and r.json() == {"mode": "manual", "previous": "automatic"}
    assert await center.dispatch_mode() == "manual"
    assert (await client.get(f"{v1}/stats")).json()["dispatch_mode"] == "manual"
    r = await client.put(f"{v1}/dispatch-mode", json={"mode": "sometimes"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "mode"]
    assert await center.dispatch_mode() == "manual", "a refused change writes nothing"


async def test_queue_and_stats(client: httpx.AsyncClient, v1: str) -> None:
    ids = [(await client.post(f"{v1}/contacts", json={"skills": ["x"]})).json()["id"]
           for _ in range(3)]
    rows = (await client.get(f"{v1}/queue")).json()
    assert [r["contact"] for r in rows] == ids
    assert all(r["wait_ms"] >= 0 and r["queued_at"] > 0 for r in rows)
    assert len((await client.get(f"{v1}/queue", params={"limit": 2})).json()) == 2
    for bad in (0, 1001, "x"):
        assert (await client.get(f"{v1}/queue", params={"limit": bad})).status_code == 422
    stats = (await client.get(f"{v1}/stats")).json()
    assert stats["waiting"] == 3 and stats["offered"] == 3 and stats["assigned"] == 0
    assert stats["center"] == v1.rsplit("/", 1)[1] and stats["mean_wait_ms"] is None


async def test_events_from_start_and_paging(client: httpx.AsyncClient, v1: str) -> None:
    await add_agents(client, v1, 1, ["English"])
    await client.post(f"{v1}/contacts", json={"skills": ["English"], "id": "c1"})
    page = (await client.get(f"{v1}/events", params={"after": "0"})).json()
    types = [e["type"] for e in page["events"]]
    assert types == ["agent_created", "contact_queued"]
    assert page["events"][1]["contact"] == "c1" and page["last_id"] == page["events"][1]["id"]
    first = (await client.get(f"{v1}/events", params={"after": "0-0", "count": 1})).json()
    assert len(first["events"]) == 1
    rest = (await client.get(f"{v1}/events", params={"after": first["last_id"]})).json()
    assert [e["type"] for e in rest["events"]] == ["contact_queued"]
    empty = (await client.get(f"{v1}/events", params={"after": page["last_id"]})).json()
    assert empty == {"last_id": page["last_id"], "events": []}


async def test_events_default_is_only_new_and_does_not_block(
        client: httpx.AsyncClient, v1: str) -> None:
    await client.post(f"{v1}/contacts", json={"skills": ["x"]})
    t0 = time.monotonic()
    page = (await client.get(f"{v1}/events")).json()
    assert time.monotonic() - t0 < 1.0
    assert page["events"] == [] and page["last_id"] != "0-0"
    await client.post(f"{v1}/contacts", json={"skills": ["x"], "id": "new"})
    nxt = (await client.get(f"{v1}/events", params={"after": page["last_id"]})).json()
    assert [e.get("contact") for e in nxt["events"]] == ["new"]


async def test_events_on_an_empty_center(client: httpx.AsyncClient, v1: str) -> None:
    assert (await client.get(f"{v1}/events")).json() == {"last_id": "0-0", "events": []}


async def test_events_block_until_an_assignment(client: httpx.AsyncClient, v1: str,
                                                center: Center) -> None:
    await add_agents(client, v1, 1, ["English"])
    await client.put(f"{v1}/state", json={"open": True})
    await client.post(f"{v1}/contacts", json={"skills": ["English"], "id": "c1"})
    mark = (await client.get(f"{v1}/events")).json()["last_id"]

    async def dispatch_later() -> None:
        await asyncio.sleep(0.3)
        await center.dispatch()

    task = asyncio.create_task(dispatch_later())
    t0 = time.monotonic()
    page = (await client.get(f"{v1}/events",
                             params={"after": mark, "block_ms": 4000})).json()
    waited = time.monotonic() - t0
    await asyncio.wait_for(task, 5)
    assert 0.2 < waited < 3.5, waited
    assigned = page["events"][0]
    assert assigned["type"] == "contact_assigned"
    assert (assigned["contact"], assigned["agent"]) == ("c1", "a0")
    assert int(assigned["wait_ms"]) >= 0


async def test_events_block_times_out_empty(client: httpx.AsyncClient, v1: str) -> None:
    t0 = time.monotonic()
    page = (await client.get(f"{v1}/events", params={"block_ms": 200})).json()
    assert 0.15 < time.monotonic() - t0 < 5.0
    assert page == {"last_id": "0-0", "events": []}


async def test_events_invalid_params_are_422(client: httpx.AsyncClient, v1: str) -> None:
    for params in ({"after": "abc"}, {"after": "1-2-3"}, {"after": "99999999999999999999"},
                   {"after": "1-99999999999999999999"}, {"block_ms": -1},
                   {"block_ms": 5001}, {"count": 0}, {"count": 1001}):
        r = await client.get(f"{v1}/events", params=params)
        assert r.status_code == 422, (params, r.text)
        assert "after" in r.json()["detail"][0]["loc"] or r.json()["detail"][0]["loc"][1] in (
            "block_ms", "count"), r.json()


async def test_kpis(client: httpx.AsyncClient, v1: str) -> None:
    assert (await client.get(f"{v1}/kpis")).status_code == 404
    doc = {"asa_ms": 812.5, "service_level": {"20s": 0.87}, "runs": [1, 2], "ok": True}
    r = await client.put(f"{v1}/kpis", json=doc)
    assert r.status_code == 200 and r.json() == doc
    assert (await client.get(f"{v1}/kpis")).json() == doc
    assert (await client.put(f"{v1}/kpis", json=[1, 2])).status_code == 422
    assert (await client.put(f"{v1}/kpis", content=b'{"x": NaN}',
                             headers={"content-type": "application/json"})).status_code == 422
    deep: dict[str, object] = {}
    node = deep
    for _ in range(200):
        node["n"] = {}
        node = node["n"]  # type: ignore[assignment]
    r = await client.put(f"{v1}/kpis", json=deep)
    assert r.status_code == 422, r.text
    assert (await client.get(f"{v1}/kpis")).json() == doc
