"""The benchmarks' one API poster against a real uvicorn on the test Redis: every contact
created once, refusals counted with the first one's answer; and the API path of
``python -m lab.bench`` (poster, then a dispatcher process) assigns what it posted."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from acd import Center, connect
from lab import apiserver
from lab.bench.api import burst, random_skills, run_clients
from lab.bench.posting import post_contacts
from lab.bench.runs import api_path
from lab.bench.workload import Workload

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
async def api_url(subprocess_env: dict[str, str], tmp_path: Path) -> AsyncIterator[str]:
    server = await asyncio.to_thread(apiserver.start, subprocess_env, tmp_path / "api.log", 1)
    try:
        yield server.url
    finally:
        await asyncio.to_thread(apiserver.stop, server)


async def test_every_contact_posted_is_created_once(api_url: str, center: Center,
                                                   api_key: str) -> None:
    skills = random_skills(40, seed=3)
    posted = await post_contacts(api_url, center.name, skills, clients=4, timeout_s=60,
                                 api_key=api_key)
    assert (posted.sent, posted.created, posted.errors) == (40, 40, {})
    assert len(posted.latencies) == 40 and posted.latencies == sorted(posted.latencies)
    assert 0 < posted.percentile_ms(0.5) <= posted.percentile_ms(0.99)
    assert (await center.counters())["offered"] == 40
    queued = [await center.get_contact(cid) for cid, _ in await center.queue(100)]
    assert Counter(tuple(c.skills) for c in queued) == Counter(
        tuple(sorted(s)) for s in skills), "each skill list sent once, none lost or doubled"


async def test_refusals_are_counted_with_the_first_answer(api_url: str, center: Center,
                                                          api_key: str) -> None:
    posted = await post_contacts(api_url, center.name, [["en"], ["bad skill"], ["en", "en"]],
                                 clients=2, timeout_s=60, api_key=api_key)
    assert posted.created == 1 and posted.errors == {"422": 2}
    assert posted.first_error is not None and posted.first_error.startswith("422 ")
    figures = await run_clients(api_url, center.name, 10, 3, 60, api_key)
    assert figures["errors"] == {} and figures["contacts_per_s"] > 0
    assert (await center.counters())["offered"] == 11


async def test_api_path_assigns_what_it_posted(redis_url: str, tmp_path: Path) -> None:
    redis = connect(redis_url)
    try:
        workload = Workload.generate(500, 40, seed=5)
        result = await api_path(redis, redis_url, workload, 40, 4, tmp_path)
    finally:
        await redis.aclose()
    assert (result.posted, result.assigned) == (40, 40)
    assert result.post_rate > 0 and result.total_seconds >= result.post_seconds


async def test_a_burst_counts_statuses_and_5xx(api_url: str, center: Center,
                                               api_key: str) -> None:
    figures = await burst(api_url, center.name, 60, api_key)
    assert figures == {"requests": 60, "statuses": {"201": 60}, "server_errors_5xx": 0,
                       "no_answer": 0}
    assert (await center.counters())["offered"] == 60
