"""/health tells whether the ACD serves: Redis answers AND a dispatcher beat recently
(acd.service.heartbeat); 503 naming what is missing otherwise. /health/live only asks
whether the worker and its Redis answer. Each test has a Redis of its own, so the
dispatchers of other tests do not count."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from acd_invariants import dispatcher_processes

from acd import connect
from acd.api.apikeys import headers
from acd.api.app import create_app
from acd.keys import DISPATCHERS
from acd.service import HEARTBEAT_S, HEARTBEAT_WINDOW_S, heartbeat
from acd.settings import Settings
from lab import apiserver
from lab.apikeys import new_key
from lab.embedded import EmbeddedRedis, free_port
from lab.processes import wait_until


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[str]:
    server = EmbeddedRedis(tmp_path / "redis", free_port(), password="health-pw")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
async def client(own_redis: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(redis_url=own_redis))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1",
                          timeout=10.0) as c,
    ):
        yield c


async def test_health_counts_the_dispatchers_that_beat(client: httpx.AsyncClient,
                                                       own_redis: str) -> None:
    r = await client.get("/health")
    assert (r.status_code, r.json()) == (
        503, {"status": "no dispatcher", "redis": "ok", "dispatchers": 0})
    live = await client.get("/health/live")
    assert (live.status_code, live.json()) == (200, {"status": "ok", "redis": "ok"})

    redis = connect(own_redis)
    try:
        # One that stopped beating just over the window ago (killed) does not count.
        seconds, micros = await redis.time()
        stale_ms = seconds * 1000 + micros // 1000 - int(HEARTBEAT_WINDOW_S * 1000) - 500
        await redis.zadd(DISPATCHERS, {"gone:1": stale_ms})
        assert (await client.get("/health")).status_code == 503

        beat = asyncio.create_task(heartbeat(redis))

        async def answer() -> tuple[int, object]:
            got = await client.get("/health")
            return got.status_code, got.json()

        deadline = time.monotonic() + 5
        while (got := await answer())[0] != 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert got == (200, {"status": "ok", "redis": "ok", "dispatchers": 1})

        # A dispatcher that stops cleanly leaves the set at once: 503 without waiting.
        beat.cancel()
        await asyncio.gather(beat, return_exceptions=True)
        assert await answer() == (503, {"status": "no dispatcher", "redis": "ok",
                                        "dispatchers": 0})
    finally:
        await redis.aclose()


async def test_health_and_live_say_redis_down(away_client: httpx.AsyncClient) -> None:
    r = await away_client.get("/health")
    assert (r.status_code, r.json()) == (
        503, {"status": "redis down", "redis": "down", "dispatchers": None})
    r = await away_client.get("/health/live")
    assert (r.status_code, r.json()) == (503, {"status": "redis down", "redis": "down"})


async def test_openapi_documents_both_answers(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path, model in (("/health", "Health"), ("/health/live", "Liveness")):
        responses = paths[path]["get"]["responses"]
        for status in ("200", "503"):
            schema = responses[status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": f"#/components/schemas/{model}"}, (path, status)


@pytest.mark.timeout(120)
def test_a_killed_dispatcher_turns_health_503_until_one_runs_again(
        own_redis: str, tmp_path: Path) -> None:
    """A real uvicorn and a real dispatcher process: kill -9 the dispatcher (it cannot say
    goodbye) and /health turns 503 once its last beat is older than the window; a contact
    accepted meanwhile waits, and is assigned as soon as a dispatcher runs again."""
    center = "healthcheck"
    api = apiserver.start({**os.environ, "REDIS_URL": own_redis}, tmp_path / "api.log",
                          workers=1)
    try:
        key = new_key(own_redis, label="tests: health")
        with httpx.Client(base_url=api.url, timeout=5, headers=headers(key)) as http, \
                dispatcher_processes(center, own_redis, 1, log_dir=tmp_path) as pool:

            def health() -> tuple[int, object]:
                r = http.get("/health")
                return r.status_code, r.json()

            wait_until(lambda: health()[0] == 200, 30, "/health 200 with a dispatcher")
            assert health() == (200, {"status": "ok", "redis": "ok", "dispatchers": 1})
            r = http.post(f"/v1/centers/{center}/agents", json={
                "id": "a1", "fname": "A", "lname": "B", "skills": ["en"], "available": True})
            assert r.status_code == 201, r.text

            pool.kill(pool.procs[0])
            killed = time.monotonic()
            # Its last beat is at most HEARTBEAT_S old when it dies; allow one more beat
            # of slack for a loaded machine.
            wait_until(lambda: health()[0] == 503, HEARTBEAT_WINDOW_S + 2 * HEARTBEAT_S,
                       "/health 503 after the only dispatcher was killed")
            took = time.monotonic() - killed
            assert health() == (503, {"status": "no dispatcher", "redis": "ok",
                                      "dispatchers": 0})
            print(f"/health turned 503 {took:.1f} s after kill -9 "
                  f"(window {HEARTBEAT_WINDOW_S:g} s, beat every {HEARTBEAT_S:g} s)")
            assert took >= HEARTBEAT_WINDOW_S - HEARTBEAT_S - 0.5, "counted out too early"

            r = http.post(f"/v1/centers/{center}/contacts", json={"skills": ["en"]})
            assert r.status_code == 201, r.text
            contact = r.json()["id"]
            assert http.get(f"/v1/centers/{center}/contacts/{contact}").json()[
                "state"] == "queued"

            pool.spawn()
            wait_until(lambda: health()[0] == 200, 30, "/health 200 with a new dispatcher")
            wait_until(lambda: http.get(f"/v1/centers/{center}/contacts/{contact}").json()[
                "state"] == "assigned", 30, "the contact posted meanwhile to be assigned")
            assert http.get(f"/v1/centers/{center}/contacts/{contact}").json()["agent"] == "a1"
    finally:
        apiserver.stop(api)
