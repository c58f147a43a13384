"""DELETE /v1/centers/{center}, and what the API answers when Redis is full."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from acd import Center, connect
from acd.api import apikeys
from acd.api.app import create_app
from acd.keys import Keys
from acd.settings import Settings
from lab.embedded import EmbeddedRedis, free_port


async def test_delete_center_refuses_while_assigned_then_deletes(
        client: httpx.AsyncClient, v1: str, center: Center) -> None:
    assert (await client.delete("/v1/centers/never-was")).status_code == 404
    for i in range(2):
        r = await client.post(f"{v1}/agents", json={"id": f"a{i}", "fname": "A", "lname": "B",
                                                    "skills": ["en"], "available": True})
        assert r.status_code == 201
    assigned = (await client.post(f"{v1}/contacts", json={"skills": ["en"]})).json()["id"]
    await center.dispatch()
    waiting = (await client.post(f"{v1}/contacts", json={"skills": ["de"]})).json()["id"]
    refused = await client.delete(v1)
    assert refused.status_code == 409
    assert assigned in refused.json()["detail"] and "complete them" in refused.json()["detail"]
    assert (await client.get(f"{v1}/stats")).json()["agents"]["busy"] == 1, "untouched"
    assert (await client.post(f"{v1}/contacts/{assigned}/complete")).status_code == 200
    r = await client.delete(v1)
    assert r.status_code == 200, r.text
    assert r.json() == {"center": center.name, "agents": 2, "abandoned": 1}
    assert (await client.get(f"{v1}/contacts/{waiting}")).json()["state"] == "abandoned"
    assert (await client.get(f"{v1}/agents")).json() == []
    assert (await client.delete(v1)).status_code == 404
    # The same name again: a new, empty center.
    r = await client.post(f"{v1}/agents", json={"id": "a0", "fname": "A", "lname": "B",
                                                "skills": ["fr"]})
    assert r.status_code == 201
    stats = (await client.get(f"{v1}/stats")).json()
    assert (stats["offered"], stats["waiting"], stats["agents"]["unavailable"]) == (0, 0, 1)


@pytest.fixture
async def full_redis(tmp_path: Path) -> AsyncIterator[EmbeddedRedis]:
    """A throw-away server of its own: the test makes it full."""
    server = EmbeddedRedis(tmp_path, free_port(), password="pw", name="full")
    server.start()
    yield server
    server.stop()


async def test_a_full_redis_answers_507_and_writes_nothing(full_redis: EmbeddedRedis) -> None:
    app = create_app(Settings(redis_url=full_redis.url, acd_center="full"))
    redis = connect(full_redis.url)
    key = await apikeys.create(redis, None, "tests: an admin key of the full Redis")
    center, keys = Center(redis, "full"), Keys("full")
    async with (app.router.lifespan_context(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                  headers=apikeys.headers(key),
                                  base_url="http://127.0.0.1", timeout=10.0) as client):
        v1 = "/v1/centers/full"
        r = await client.post(f"{v1}/agents", json={"id": "a0", "fname": "A", "lname": "B",
                                                    "skills": ["en"], "available": True})
        assert r.status_code == 201
        served = (await client.post(f"{v1}/contacts", json={"skills": ["en"]})).json()["id"]
        await center.dispatch()
        before = sorted([k async for k in redis.scan_iter(match="*")])
        queue_before = await redis.zcard(keys.queue)
        assert await redis.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        await redis.config_set("maxmemory", 1)  # any byte is too many now
        try:
            full = await client.post(f"{v1}/contacts", json={"skills": ["en"]})
            assert full.status_code == 507, full.text
            assert "Redis is full" in full.json()["detail"]
            assert "nothing was written" in full.json()["detail"]
            assert int(full.headers["Retry-After"]) > 0
            for path, body in ((f"{v1}/agents", {"id": "a1", "fname": "A", "lname": "B",
                                                 "skills": ["en"]}),
                               ("/v1/centers/other/contacts", {"skills": ["en"]})):
                assert (await client.post(path, json=body)).status_code == 507, path
            assert sorted([k async for k in redis.scan_iter(match="*")]) == before
            assert await redis.zcard(keys.queue) == queue_before
            # Reads work, and so does ending work (it frees memory: the contact expires).
            assert (await client.get(f"{v1}/stats")).status_code == 200
            assert (await client.get(f"{v1}/contacts/{served}")).json()["state"] == "assigned"
            r = await client.post(f"{v1}/contacts/{served}/complete")
            assert r.status_code == 200 and r.json()["state"] == "completed"
        finally:
            await redis.config_set("maxmemory", "1gb")
        assert (await client.post(f"{v1}/contacts", json={"skills": ["en"]})
                ).status_code == 201
    await redis.aclose()
