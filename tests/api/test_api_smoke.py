"""Health, docs and the request size limit."""

from __future__ import annotations

import httpx


async def test_live_ok(client: httpx.AsyncClient) -> None:
    # /health also needs a dispatcher; tests/api/test_health.py checks it on a Redis of
    # its own (here other tests' dispatchers may beat on the shared one)
    r = await client.get("/health/live")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "redis": "ok"}


async def test_docs_and_openapi(client: httpx.AsyncClient) -> None:
    assert (await client.get("/docs")).status_code == 200
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/v1/centers/{center}/contacts" in paths
    assert "/contact/{contact_key}" in paths


async def test_body_over_limit_is_413(client: httpx.AsyncClient, v1: str) -> None:
    big = {"x": "a" * (70 * 1024)}
    r = await client.put(f"{v1}/kpis", json=big)
    assert r.status_code == 413, r.text
    assert "larger than" in r.json()["detail"]


async def test_streamed_body_over_limit_is_413(client: httpx.AsyncClient, v1: str) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b"[" * 8192

    r = await client.put(f"{v1}/kpis", content=chunks(),
                         headers={"content-type": "application/json"})
    assert r.status_code == 413, r.text


async def test_routes_503_when_redis_is_down(away_client: httpx.AsyncClient) -> None:
    # /health's answers then: tests/api/test_health.py
    r = await away_client.get("/v1/centers/x/agents")
    assert r.status_code == 503, r.text


async def test_transient_redis_replies_are_503_others_500() -> None:
    from fastapi import FastAPI
    from redis.exceptions import ReadOnlyError, ResponseError

    from acd.api import errors

    app = FastAPI()
    errors.install(app)

    @app.get("/noreplicas")
    async def noreplicas() -> None:
        raise ResponseError("NOREPLICAS Not enough good replicas to write.")

    @app.get("/readonly")
    async def readonly() -> None:
        raise ReadOnlyError("You can't write against a read only replica.")

    @app.get("/bug")
    async def bug() -> None:
        raise ResponseError("ERR wrong number of arguments")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=5) as c:
        for path in ("/noreplicas", "/readonly"):
            r = await c.get(path)
            assert r.status_code == 503 and r.headers["retry-after"] == "1", path
        assert (await c.get("/bug")).status_code == 500
