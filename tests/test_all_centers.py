"""One dispatcher loop serves every registered center: a busy center never starves quiet
ones, the loop uses a bounded number of connections however many centers there are, a
center deleted and re-created is served again, and errors are logged once per kind."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from acd import Center, connect
from acd.all_centers import AllCenters
from acd.commands import xread
from acd.service import ErrorLog

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    name = f"fair-{uuid.uuid4().hex[:6]}"
    yield name
    redis = connect(redis_url)
    for center in await cast(Any, redis).smembers("acd:centers"):
        if str(center).startswith(name):
            await Center(redis, str(center)).wipe()
    await redis.aclose()


@pytest.fixture
async def serving(redis_url: str) -> AsyncIterator[AllCenters]:
    redis = connect(redis_url, client_name="all-centers-test", block_ms=200)
    loop = AllCenters(redis, batch=20, idle_ms=200, parallel=4)
    task = asyncio.create_task(loop.run())
    yield loop
    loop.stop()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await redis.aclose()


async def assigned_within(center: Center, contact_id: str, seconds: float) -> int:
    """The contact's wait (ms, from its contact_assigned event) once it is assigned."""
    cursor = "0-0"
    async with asyncio.timeout(seconds):
        while True:
            for entry_id, fields in await xread(center.redis, center.keys.events, cursor, 100):
                cursor = entry_id
                if fields.get("type") == "contact_assigned" and fields["contact"] == contact_id:
                    return int(fields["wait_ms"])


async def test_a_busy_center_does_not_starve_300_quiet_ones(
        redis_url: str, prefix: str, serving: AllCenters) -> None:
    redis = connect(redis_url)
    hog = Center(redis, f"{prefix}-hog")
    for i in range(40):
        await hog.create_agent(f"a{i}", "H", "O", ["en"], available=True)
    quiet = [Center(redis, f"{prefix}-q{i:03d}") for i in range(300)]
    for center in quiet:
        await center.create_agent("a", "Q", "T", ["en"], available=True)

    flooding_on = True

    async def flood() -> None:  # the hog always has work: its agents are freed at once
        while flooding_on:
            batch = [await hog.create_contact(["en"]) for _ in range(40)]
            await asyncio.sleep(0.01)
            for contact in batch:
                if (await hog.get_contact(contact.id)).state.value == "assigned":
                    await hog.complete_contact(contact.id)

    flooding = asyncio.create_task(flood())
    try:
        await asyncio.sleep(0.5)
        contacts = [await c.create_contact(["en"]) for c in quiet]
        waits = await asyncio.gather(*(assigned_within(c, x.id, 30)
                                       for c, x in zip(quiet, contacts, strict=True)))
        assert serving.served[hog.name] > 0, "the hog was served too"
    finally:
        flooding_on = False  # not cancel(): see acd.connection.WaitingConnectionPool
        await asyncio.wait_for(flooding, 30)
    print(f"\n300 quiet centers beside a busy one: wait max {max(waits)} ms, "
          f"hog served {serving.served[hog.name]}")
    assert max(waits) < 5_000, sorted(waits)[-5:]
    clients = await cast(Any, redis).client_list()
    mine = [c for c in clients if c.get("name") == "all-centers-test"]
    assert len(mine) <= serving.parallel + 1, len(mine)
    await redis.aclose()


async def test_a_center_deleted_and_created_again_is_served(
        redis_url: str, prefix: str, serving: AllCenters) -> None:
    redis = connect(redis_url)
    center = Center(redis, f"{prefix}-again")
    await center.create_agent("a", "A", "B", ["en"], available=True)
    first = await center.create_contact(["en"])
    await assigned_within(center, first.id, 10)
    elsewhere = connect(redis_url)  # another process deletes it
    await Center(elsewhere, center.name).wipe()
    await elsewhere.aclose()
    await center.create_agent("a", "A", "B", ["en"], available=True)  # this one again
    assert await cast(Any, redis).sismember("acd:centers", center.name)
    second = await center.create_contact(["en"])
    await assigned_within(center, second.id, 10)
    await redis.aclose()


def test_errors_are_logged_once_per_kind_per_interval(caplog: pytest.LogCaptureFixture
                                                      ) -> None:
    errors = ErrorLog(logging.getLogger("test.errors"), every=60)
    with caplog.at_level(logging.WARNING, logger="test.errors"):
        for _ in range(500):
            errors.report("center x", ConnectionError("Too many connections"))
        errors.report("center y", TimeoutError("Timeout reading from socket"))
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["center x: ConnectionError: Too many connections",
                     "center y: TimeoutError: Timeout reading from socket"]
    errors.every = 0  # the interval has passed: the next one says how many were skipped
    with caplog.at_level(logging.WARNING, logger="test.errors"):
        errors.report("center x", ConnectionError("Too many connections"))
    assert "(499 more like it" in caplog.records[-1].getMessage()
