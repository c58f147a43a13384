"""The simulator's API backends (/v1 and the demo's routes) against the real REST API
(uvicorn in a subprocess)."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from acd import Center, connect
from acd.api.apikeys import headers
from acd.invariants import violations
from acd.simulator import Scenario, run
from acd.simulator.backends import ApiBackend, ApiError, DemoApiBackend
from lab import apiserver


async def test_run_through_the_api(api_url: str, redis_url: str, api_key: str) -> None:
    center = f"api-{uuid.uuid4().hex[:8]}"
    scenario = Scenario(
        center=center, groups=[{"count": 4, "skills": ["en"]}, {"count": 2, "skills": ["es"]}],
        contact_types=[{"skills": ["en"], "weight": 2}, {"skills": ["es"]}],
        rate_per_hour=400, handle={"mean": 40.0}, patience=30.0, duration=1200,
        time_scale=300, drain_timeout=20)
    try:
        # The API only drives the ACD: an in-process dispatcher assigns (it needs Redis).
        report = await run(scenario, via="api", api_url=api_url, redis_url=redis_url,
                           dispatchers=1, api_key=api_key)
        async with httpx.AsyncClient(base_url=api_url, timeout=5,
                                     headers=headers(api_key)) as http:
            stored = (await http.get(f"/v1/centers/{center}/kpis")).json()
            stats = (await http.get(f"/v1/centers/{center}/stats")).json()
    finally:
        redis = connect(redis_url)
        await Center(redis, center).wipe()
        await redis.aclose()
    k = report.kpis
    assert report.via == "api"
    assert k.offered == len(scenario.draw().arrivals) > 20
    assert k.unfinished == 0 and k.answered + k.abandoned == k.offered
    assert stored["run_id"] == report.run_id and stored["kpis"]["offered"] == k.offered
    assert stats["waiting"] == 0 and stats["agents"]["busy"] == 0
    assert stats["offered"] == k.offered  # no contact was queued twice


async def test_api_backend_retry_never_queues_twice(api_url: str, redis_url: str,
                                                   api_key: str) -> None:
    center = f"idem-{uuid.uuid4().hex[:8]}"
    backend = ApiBackend(center, api_url, api_key=api_key)
    try:
        await backend.start()
        first = await backend.create_contact("c-1", ["x"])
        again = await backend.create_contact("c-1", ["x"])  # what a retry sends
        assert again.id == first.id and again.queued_at == first.queued_at
        assert await backend.abandon("c-1") is not None
        tail = await backend.events_tail()
        last, events = await backend.read_events(tail, 50, 10)
        assert events == [] and last == tail
    finally:
        await backend.close()
        redis = connect(redis_url)
        stats = await Center(redis, center).stats()
        await Center(redis, center).wipe()
        await redis.aclose()
    assert stats.offered == 1


async def test_run_through_the_demo_routes(subprocess_env: dict[str, str], redis_url: str,
                                          tmp_path: Path, api_key: str) -> None:
    # The demo's clients: POST /contact (the API picks the id), then complete in two calls.
    center = f"demo-{uuid.uuid4().hex[:8]}"
    server = apiserver.start({**subprocess_env, "ACD_CENTER": center}, tmp_path / "api.log",
                           workers=1)
    scenario = Scenario(center=center, agents=4, rate_per_hour=600, handle={"mean": 30.0},
                        patience=60.0, duration=900, time_scale=300, drain_timeout=20)
    redis = connect(redis_url)
    try:
        report = await run(scenario, via="demo", api_url=server.url, redis_url=redis_url,
                           dispatchers=1, api_key=api_key)
        found = await violations(Center(redis, center))
        stats = await Center(redis, center).stats()
    finally:
        apiserver.stop(server)
        await Center(redis, center).wipe()
        await redis.aclose()
    k = report.kpis
    assert report.via == "demo" and k.offered == len(scenario.draw().arrivals) > 20
    assert k.unfinished == 0 and k.answered + k.abandoned == k.offered and k.answered > 0
    assert report.overlaps == [] and found == []
    assert stats.offered == k.offered and stats.waiting == 0 and stats.agents["busy"] == 0


async def test_demo_backend_names_a_center_the_demo_routes_do_not_serve(
        api_url: str, api_key: str) -> None:
    backend = DemoApiBackend(f"other-{uuid.uuid4().hex[:8]}", api_url, api_key=api_key)
    try:
        with pytest.raises(ApiError, match="ACD_CENTER=other-"):
            await backend.create_agent("a1", ["en"])
    finally:
        await backend.close()


async def test_api_backend_reset_deletes_the_center_or_names_what_is_assigned(
        api_url: str, redis_url: str, api_key: str) -> None:
    center = f"reset-{uuid.uuid4().hex[:8]}"
    redis = connect(redis_url)
    acd = Center(redis, center)
    backend = ApiBackend(center, api_url, retry_for=5, api_key=api_key)
    try:
        await backend.reset()  # nothing there yet: fine
        await acd.create_agent("a1", "Left", "Over", ["en"], available=True)
        queued = await acd.create_contact(["en"])
        assert [c for c, _ in (await acd.dispatch_round()).pairs] == [queued.id]
        with pytest.raises(ApiError, match=queued.id):
            await backend.reset()  # an agent holds it: the API never drops it
        assert (await acd.get_agent("a1")).contact == queued.id
        await acd.complete_contact(queued.id)
        await backend.reset()
        assert await redis.exists(acd.keys.agent("a1")) == 0
        assert await violations(acd) == []
    finally:
        await backend.close()
        await acd.wipe()
        await redis.aclose()
