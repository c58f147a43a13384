"""Fixtures of the API tests: the app on the test Redis, an in-process client, a real
uvicorn server with two workers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from acd import Center
from acd.api.app import create_app
from acd.settings import Settings
from lab import apiserver
from lab.apiserver import ApiServer
from lab.embedded import free_port


@pytest.fixture
def api_app(redis_url: str, center: Center) -> FastAPI:
    """The app on the test server; the original demo's routes use the test's center."""
    return create_app(Settings(redis_url=redis_url, acd_center=center.name))


@pytest.fixture
async def client(api_app: FastAPI, api_headers: dict[str, str]
                 ) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client sending the session's admin key; the app's lifespan runs
    around it, as under uvicorn. Its Host, 127.0.0.1, is one the API allows."""
    async with (
        api_app.router.lifespan_context(api_app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=api_app), headers=api_headers,
                          base_url="http://127.0.0.1", timeout=10.0) as c,
    ):
        yield c


@pytest.fixture
async def bare(api_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client that sends no key (each test adds its own)."""
    async with (
        api_app.router.lifespan_context(api_app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=api_app),
                          base_url="http://127.0.0.1", timeout=10.0) as c,
    ):
        yield c


@pytest.fixture
def v1(center: Center) -> str:
    """URL prefix of the test's center in the versioned API."""
    return f"/v1/centers/{center.name}"


@pytest.fixture
def uvicorn_server(subprocess_env: dict[str, str], center: Center,
                   tmp_path: Path) -> Iterator[ApiServer]:
    """A real uvicorn with 2 workers on the test Redis, default center = the test's."""
    env = {**subprocess_env, "ACD_CENTER": center.name}
    server = apiserver.start(env, tmp_path / "uvicorn.log")
    try:
        yield server
    finally:
        apiserver.stop(server)


@pytest.fixture
async def away_client(api_headers: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client of an app whose Redis is away (a closed port), with short
    connect and socket timeouts so its answers come quickly (a key's check needs Redis
    too: 503)."""
    app = create_app(Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0",
                              redis_connect_timeout=0.2, redis_socket_timeout=0.5))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), headers=api_headers,
                          base_url="http://127.0.0.1", timeout=15.0) as c,
    ):
        yield c
