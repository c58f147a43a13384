"""Test fixtures: one real redis-server with RedisJSON for the whole session.

The server is the embedded lab's own (lab/embedded.py) on a free port in a temporary
folder, so tests never touch a running lab. Each test gets its own center (its own hash
tag), so tests cannot see each other's keys.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from acd import Center, connect
from acd.api.apikeys import headers
from lab.apikeys import new_key
from lab.embedded import EmbeddedRedis, free_port
from lab.lessons import RunningLab
from lab.lessons import running_lab as start_lab

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), free_port(), password="test-pw")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: EmbeddedRedis) -> str:
    return redis_server.url


@pytest.fixture(scope="session")
def api_key(redis_url: str) -> str:
    """An admin key of the REST API in the session's Redis (lab.apikeys), as start.sh
    creates the lab's."""
    return new_key(redis_url, label="tests")


@pytest.fixture(scope="session")
def api_headers(api_key: str) -> dict[str, str]:
    """What every client of the API sends: ``Authorization: Bearer <api_key>``."""
    return headers(api_key)


@pytest.fixture
def subprocess_env(redis_url: str, api_key: str) -> dict[str, str]:
    """Environment for child processes (dispatchers, API, API clients) pointed at the test
    server, with the session's API key."""
    return {**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": str(REPO),
            "ACD_API_KEY": api_key}


@pytest.fixture
async def center(redis_url: str) -> AsyncIterator[Center]:
    redis = connect(redis_url)
    c = Center(redis, f"t-{uuid.uuid4().hex[:10]}")
    yield c
    await c.wipe()
    await redis.aclose()


@pytest.fixture(scope="session")
def running_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningLab]:
    """The embedded lab exactly as ./start.sh starts it (Redis, API, two dispatchers,
    JupyterLab), in a temporary home on free ports, for the tests that check the lessons
    where learners live them; ./stop.sh --purge at the end."""
    with start_lab(tmp_path_factory.mktemp("lab")) as lab:
        yield lab


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A plain run leaves the long tier out (it stays under 15 minutes); ``-m long``
    (or any -m naming it) runs it. CI runs both."""
    if "long" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="long tier: tests/run -m long")
    for item in items:
        if item.get_closest_marker("long") is not None:
            item.add_marker(skip)
