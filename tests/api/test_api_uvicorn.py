"""The API under a real uvicorn with 2 workers: health, limits, long polls, latency."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from acd import Center
from lab import apiserver
from lab.apiserver import ApiServer


@pytest.fixture
def http(uvicorn_server: ApiServer, api_headers: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=uvicorn_server.url, timeout=10.0, headers=api_headers) as c:
        yield c


def test_health_and_docs(http: httpx.Client) -> None:
    r = http.get("/health/live")
    assert r.status_code == 200 and r.json() == {"status": "ok", "redis": "ok"}
    assert http.get("/docs").status_code == 200


def test_keep_alive_requests_are_not_delayed_by_nagle(http: httpx.Client) -> None:
    """uvicorn --workers leaves Nagle on (~40 ms per keep-alive request); the app turns it
    off. A median far below 40 ms shows it is off."""
    http.get("/health/live")
    times = []
    for _ in range(30):
        t0 = time.perf_counter()
        assert http.get("/openapi.json").status_code == 200
        times.append(time.perf_counter() - t0)
    assert statistics.median(times) < 0.025, f"median {statistics.median(times) * 1000:.1f} ms"


def test_body_limits(http: httpx.Client, center: Center) -> None:
    v1 = f"/v1/centers/{center.name}"
    r = http.put(f"{v1}/kpis", content=b"{" + b" " * (65 * 1024) + b"}",
                 headers={"content-type": "application/json"})
    assert r.status_code == 413

    def chunks() -> Iterator[bytes]:
        yield b'{"x": "'
        for _ in range(20):
            yield b"a" * 8192
        yield b'"}'

    r = http.put(f"{v1}/kpis", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413, r.text
    assert http.put(f"{v1}/kpis", json={"ok": 1}).status_code == 200


async def test_long_poll_sees_a_contact_queued_through_the_other_worker(
        uvicorn_server: ApiServer, center: Center, api_headers: dict[str, str]) -> None:
    v1 = f"/v1/centers/{center.name}"
    async with httpx.AsyncClient(base_url=uvicorn_server.url, timeout=10.0,
                                 headers=api_headers) as http:
        mark = (await http.get(f"{v1}/events")).json()["last_id"]
        poll = asyncio.create_task(
            http.get(f"{v1}/events", params={"after": mark, "block_ms": 5000}))
        await asyncio.sleep(0.2)
        async with httpx.AsyncClient(base_url=uvicorn_server.url, timeout=10.0,
                                     headers=api_headers) as other:
            r = await other.post(f"{v1}/contacts", json={"skills": ["x"], "id": "c1"})
            assert r.status_code == 201
        page = (await asyncio.wait_for(poll, timeout=8)).json()
        assert [(e["type"], e["contact"]) for e in page["events"]] == [("contact_queued", "c1")]


def test_sigterm_stops_uvicorn_and_its_workers(subprocess_env: dict[str, str],
                                               tmp_path: Path) -> None:
    server = apiserver.start(subprocess_env, tmp_path / "uvicorn.log")
    apiserver.stop(server)
    assert server.process.returncode == 0, server.log.read_text()[-2000:]
    deadline = time.monotonic() + 10
    while True:
        try:
            os.killpg(server.process.pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "uvicorn workers still running"
        time.sleep(0.05)
