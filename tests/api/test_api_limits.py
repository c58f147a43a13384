"""Stated limits answer 429 with Retry-After, never 503: a center's cap of queued
contacts, and a burst larger than a worker's connection pool (which waits in line first,
so a burst on a healthy Redis gets no error at all)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from acd import Center, Overloaded
from acd.api.app import create_app
from acd.settings import Settings, get_settings
from lab.apiserver import ApiServer


@pytest.fixture
def cap_of_3(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("ACD_MAX_QUEUED", "3")
    get_settings.cache_clear()
    yield
    monkeypatch.delenv("ACD_MAX_QUEUED")
    get_settings.cache_clear()


async def test_a_center_at_its_cap_refuses_a_contact_and_writes_nothing(
        center: Center, cap_of_3: None) -> None:
    for _ in range(3):
        await center.create_contact(["en"])
    with pytest.raises(Overloaded, match="3 contacts wait in this center already"):
        await center.create_contact(["en"], contact_id="fourth")
    assert await center.redis.zcard(center.keys.queue) == 3
    assert not await center.redis.exists(center.keys.contact("fourth"))


async def test_the_api_answers_429_at_the_cap(client: httpx.AsyncClient, v1: str,
                                             cap_of_3: None) -> None:
    for _ in range(3):
        assert (await client.post(f"{v1}/contacts", json={"skills": ["en"]})).status_code == 201
    refused = await client.post(f"{v1}/contacts", json={"skills": ["en"]})
    assert refused.status_code == 429, refused.text
    assert refused.headers["Retry-After"] == "1"
    assert "cap" in refused.json()["detail"]


async def test_a_pool_busy_for_its_whole_wait_answers_429(redis_url: str, center: Center,
                                                          api_headers: dict[str, str]
                                                          ) -> None:
    app = create_app(Settings(redis_url=redis_url, acd_center=center.name,
                              redis_max_connections=1, redis_pool_timeout=0.001))
    async with (app.router.lifespan_context(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), headers=api_headers,
                                  base_url="http://127.0.0.1", timeout=10.0) as client):
        answers = await asyncio.gather(*(
            client.post(f"/v1/centers/{center.name}/contacts", json={"skills": ["en"]})
            for _ in range(50)))
    statuses = Counter(a.status_code for a in answers)
    assert set(statuses) <= {201, 429}, statuses
    assert statuses[429] > 0, statuses
    assert all(a.headers["Retry-After"] == "1" for a in answers if a.status_code == 429)


@pytest.mark.timeout(180)
async def test_1000_concurrent_requests_on_a_healthy_redis_get_no_5xx(
        uvicorn_server: ApiServer, center: Center, api_headers: dict[str, str]) -> None:
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    async with httpx.AsyncClient(base_url=uvicorn_server.url, limits=limits,
                                 timeout=60.0, headers=api_headers) as http:
        answers = await asyncio.gather(*(
            http.post(f"/v1/centers/{center.name}/contacts", json={"skills": ["en"]})
            for _ in range(1000)))
    statuses = Counter(a.status_code for a in answers)
    print(f"\n1,000 concurrent POSTs: {dict(statuses)}")
    # On a quiet machine all 1,000 are 201 (CI's runs); on one loaded by other work a
    # request can wait longer than the pool's stated wait (5 s) and get the documented
    # 429. Never a 5xx, and a refused request wrote nothing.
    assert set(statuses) <= {201, 429}, statuses
    assert statuses[201] > 0, statuses
    assert all(a.headers["Retry-After"] == "1" for a in answers if a.status_code == 429)
    assert await center.redis.zcard(center.keys.queue) == statuses[201]


async def test_deleting_a_needed_skill_answers_409_unless_forced(
        client: httpx.AsyncClient, v1: str) -> None:
    await client.post(f"{v1}/agents", json={"id": "a", "fname": "A", "lname": "B",
                                             "skills": ["en", "fr"]})
    created = await client.post(f"{v1}/contacts", json={"skills": ["fr"]})
    refused = await client.delete(f"{v1}/skills/fr")
    assert refused.status_code == 409, refused.text
    assert created.json()["id"] in refused.json()["detail"]
    forced = await client.delete(f"{v1}/skills/fr", params={"force": "true"})
    assert forced.status_code == 200, forced.text
    assert forced.json() == {"skill": "fr", "agents": 1, "abandoned": 1}
