"""The simulator's API backend against the real REST API (uvicorn in a subprocess)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from acd import Center, connect
from acd.simulator import Scenario, run
from acd.simulator.backends import ApiBackend
from lab.embedded import free_port
from lab.processes import terminate

REPO = Path(__file__).resolve().parents[2]

if not (REPO / "acd" / "api" / "app.py").exists():  # pragma: no cover - before the API
    pytest.skip("acd/api/app.py does not exist yet", allow_module_level=True)


@pytest.fixture
def api_url(subprocess_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "api.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "acd.api.app:app", "--port", str(port),
         "--no-access-log"], env=subprocess_env, cwd=REPO, stdout=log,
        stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"API not healthy after 30 s; see {tmp_path / 'api.log'}")
            time.sleep(0.05)
        yield url
    finally:
        terminate(proc, timeout=10)


async def test_run_through_the_api(api_url: str, redis_url: str) -> None:
    center = f"api-{uuid.uuid4().hex[:8]}"
    scenario = Scenario(
        center=center, groups=[{"count": 4, "skills": ["en"]}, {"count": 2, "skills": ["es"]}],
        contact_types=[{"skills": ["en"], "weight": 2}, {"skills": ["es"]}],
        rate_per_hour=400, handle={"mean": 40.0}, patience=30.0, duration=1200,
        time_scale=300, drain_timeout=20)
    try:
        # The API only drives the ACD: an in-process dispatcher assigns (it needs Redis).
        report = await run(scenario, via="api", api_url=api_url, redis_url=redis_url,
                           dispatchers=1)
        async with httpx.AsyncClient(base_url=api_url, timeout=5) as http:
            stored = (await http.get(f"/v1/centers/{center}/kpis")).json()
            stats = (await http.get(f"/v1/centers/{center}/stats")).json()
    finally:
        redis = connect(redis_url)
        await Center(redis, center).delete()
        await redis.aclose()
    k = report.kpis
    assert report.via == "api"
    assert k.offered == len(scenario.draw().arrivals) > 20
    assert k.unfinished == 0 and k.answered + k.abandoned == k.offered
    assert stored["run_id"] == report.run_id and stored["kpis"]["offered"] == k.offered
    assert stats["waiting"] == 0 and stats["agents"]["busy"] == 0
    assert stats["offered"] == k.offered  # no contact was queued twice


async def test_api_backend_retry_never_queues_twice(api_url: str, redis_url: str) -> None:
    center = f"idem-{uuid.uuid4().hex[:8]}"
    backend = ApiBackend(center, api_url)
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
        await Center(redis, center).delete()
        await redis.aclose()
    assert stats.offered == 1
