"""API keys and the Host allow-list (acd/api/auth.py, acd/api/apikeys.py): every route but
the documented public ones requires a key; a center's key opens that center only; keys
are stored hashed and revoked at once; a request for another Host is refused."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import Mount

import lab
from acd import Center
from acd.api import apikeys
from acd.api.app import create_app
from acd.api.auth import PUBLIC_PATHS
from acd.keys import API_KEYS
from acd.settings import Settings
from lab.__main__ import main as lab_main
from lab.embedded import free_port
from lab.envfile import write_env
from lab.processes import wait_until


def _filled(path: str, center: str) -> str:
    """The route's path with valid names in its parameters."""
    values = {"center": center, "agent_key": "agent:a1", "contact_key": "contact:c1"}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "x1"), path)


async def test_every_route_but_the_public_ones_requires_a_key(
        api_app: FastAPI, bare: httpx.AsyncClient, center: Center) -> None:
    spec = api_app.openapi()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearer"]["scheme"] == "bearer"
    assert schemes["apiKey"] == {**schemes["apiKey"], "in": "header", "name": "X-API-Key"}
    checked = 0
    # FastAPI keeps included routers whole in app.routes; this walks the routes in them.
    for route in iter_route_contexts(api_app.routes):
        path = str(route.path)
        if path in PUBLIC_PATHS:
            if not isinstance(route.original_route, Mount):  # the docs' assets
                r = await bare.get(path)
                assert r.status_code in (200, 503), (path, r.text)  # 503: no dispatcher
            continue
        assert isinstance(route.original_route, APIRoute), path
        for method in route.methods or ():
            operation = spec["paths"][path][method.lower()]
            assert operation["security"] == [{"bearer": []}, {"apiKey": []}], path
            assert {"401", "403"} <= set(operation["responses"]), path
            r = await bare.request(method, _filled(path, center.name))
            assert r.status_code == 401, (method, path, r.text)
            assert r.headers["WWW-Authenticate"].startswith("Bearer")
            assert "missing API key" in r.json()["detail"]
            checked += 1
    assert checked == sum(len(ops) for path, ops in spec["paths"].items()
                          if path not in PUBLIC_PATHS) >= 30  # /v1 and demo routes


async def test_unknown_malformed_and_revoked_keys_get_401(
        bare: httpx.AsyncClient, center: Center) -> None:
    url = f"/v1/centers/{center.name}/stats"
    key = await apikeys.create(center.redis, center.name, "test")
    key_id, secret = apikeys.parse(key)
    assert (await bare.get(url, headers=apikeys.headers(key))).status_code == 200
    assert (await bare.get(url, headers={"X-API-Key": key})).status_code == 200

    wrong_secret = f"acd_{key_id}_{'A' * 43}"
    unknown = f"acd_{'0' * 12}_{secret}"
    for presented in (wrong_secret, unknown):
        r = await bare.get(url, headers=apikeys.headers(presented))
        assert r.status_code == 401 and "unknown or revoked API key" in r.json()["detail"]
        assert secret not in r.text and "A" * 43 not in r.text
    r = await bare.get(url, headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 401 and "malformed" in r.json()["detail"]
    assert secret not in r.text

    assert await apikeys.revoke(center.redis, key_id)
    r = await bare.get(url, headers=apikeys.headers(key))
    assert r.status_code == 401, r.text
    assert r.json()["detail"] == f"unknown or revoked API key (id {key_id})"
    assert not await apikeys.revoke(center.redis, key_id)


async def test_a_center_key_opens_its_center_only(
        bare: httpx.AsyncClient, center: Center, api_key: str) -> None:
    other = f"{center.name}-other"
    key = await apikeys.create(center.redis, center.name, "learner")
    mine = apikeys.headers(key)
    try:
        r = await bare.post(f"/v1/centers/{center.name}/agents", headers=mine, json={
            "id": "a1", "fname": "A", "lname": "B", "skills": ["en"]})
        assert r.status_code == 201, r.text
        # The demo routes serve the API's default center, the test's: open to this key.
        assert (await bare.get("/contact/contact:nobody", headers=mine)).status_code == 404
        # Another center: every route refused, its lists too, before anything is read.
        for method, path in (("GET", "agents"), ("GET", "skills"), ("GET", "queue"),
                             ("GET", "events"), ("GET", "stats"), ("GET", "kpis"),
                             ("POST", "contacts"), ("DELETE", "")):
            r = await bare.request(method, f"/v1/centers/{other}/{path}".rstrip("/"),
                                   headers=mine)
            assert r.status_code == 403, (method, path, r.text)
            assert r.json()["detail"] == (f"API key {apikeys.parse(key)[0]} is scoped to "
                                          f"center {center.name}: it may not use center "
                                          f"{other}")
        # A name that is not a center name at all: refused the same way, not a 500.
        assert (await bare.get("/v1/centers/caf%C3%A9/stats", headers=mine)
                ).status_code == 403
        # The admin key opens both.
        admin = apikeys.headers(api_key)
        assert (await bare.get(f"/v1/centers/{other}/agents", headers=admin)).json() == []
        assert len((await bare.get(f"/v1/centers/{center.name}/agents",
                                   headers=admin)).json()) == 1
    finally:
        await apikeys.revoke(center.redis, key)


async def test_a_center_key_is_refused_on_the_demo_routes_of_another_default_center(
        bare: httpx.AsyncClient, center: Center) -> None:
    key = await apikeys.create(center.redis, f"{center.name}-x", "learner of another")
    try:
        r = await bare.post("/acd", headers=apikeys.headers(key), json={"state": 1})
        assert r.status_code == 403 and f"may not use center {center.name}" in r.text
    finally:
        await apikeys.revoke(center.redis, key)


async def test_only_the_hash_is_stored(center: Center) -> None:
    key = await apikeys.create(center.redis, None, "admin")
    key_id, secret = apikeys.parse(key)
    try:
        stored = await center.redis.hget(API_KEYS, key_id)
        assert stored is not None and key not in stored and secret not in stored
        record = json.loads(stored)
        assert record["sha256"] == hashlib.sha256(key.encode()).hexdigest()
        assert record["center"] is None
        assert [k.scope for k in await apikeys.list_keys(center.redis)
                if k.id == key_id] == ["admin"]
    finally:
        await apikeys.revoke(center.redis, key)


def test_the_address_a_request_came_in_on_is_allowed(redis_url: str) -> None:
    # A launcher asks an HA replica by its own IP (192.168.20.21:8000): under uvicorn,
    # scope["server"] is the socket's address. Here a real uvicorn on 127.0.0.2, an
    # address the allow-list does not name.
    app = create_app(Settings(redis_url=redis_url))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.2", port=free_port(),
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 20, "uvicorn on 127.0.0.2 to start")
        url = f"http://127.0.0.2:{server.config.port}/health/live"
        assert httpx.get(url, timeout=10).status_code == 200
        r = httpx.get(url, headers={"Host": "127.0.0.3"}, timeout=10)
        assert r.status_code == 400, r.text
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert not thread.is_alive()


async def test_a_foreign_host_gets_400(bare: httpx.AsyncClient, api_headers: dict[str, str],
                                       center: Center) -> None:
    url = f"/v1/centers/{center.name}/stats"
    for host in ("127.0.0.1:8000", "localhost", "[::1]:8000", "LOCALHOST"):
        r = await bare.get(url, headers={**api_headers, "Host": host})
        assert r.status_code == 200, (host, r.text)
    for path in (url, "/health/live", "/docs"):
        r = await bare.get(path, headers={**api_headers, "Host": "evil.example"})
        assert r.status_code == 400, (path, r.text)
        assert "'evil.example' is not one this API answers to" in r.json()["detail"]
        assert "TRUSTED_HOSTS" in r.json()["detail"]


async def test_trusted_hosts_add_names(redis_url: str) -> None:
    app = create_app(Settings(redis_url=redis_url, api_url="http://192.168.20.100:8000",
                              trusted_hosts=["acd.example.org", "*.lab.example.org"]))
    transport = httpx.ASGITransport(app=app)
    async with (app.router.lifespan_context(app),
                httpx.AsyncClient(transport=transport, timeout=10.0) as c):
        for host, status in (("192.168.20.100:8000", 200), ("acd.example.org", 200),
                             ("a.lab.example.org", 200), ("lab.example.org", 400),
                             ("acd.example.org.evil.example", 400)):
            r = await c.get("http://127.0.0.1/health/live", headers={"Host": host})
            assert r.status_code == status, (host, r.text)


def test_the_cli_adds_lists_and_revokes(subprocess_env: dict[str, str], redis_url: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    added = subprocess.run(  # once as a learner's operator runs it; then in this process
        [sys.executable, "-m", "lab", "apikey", "add", "--center", "team3", "--label",
         "learner 3"], env=subprocess_env, capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    key = added.stdout.strip()
    key_id, _ = apikeys.parse(key)
    assert "cannot be shown again" in added.stderr

    def cli(*args: str) -> tuple[int, str, str]:
        code = lab_main(["apikey", "--redis-url", redis_url, *args])
        out, err = capsys.readouterr()
        return code, out, err

    code, listed, _ = cli("list")
    assert re.search(rf"^{key_id}  center team3 .* learner 3$", listed, re.M), listed
    assert key not in listed
    assert cli("revoke", key_id)[0] == 0
    assert key_id not in cli("list")[1]
    code, _, err = cli("revoke", key_id)
    assert code == 1 and f"no API key with id {key_id}" in err
    code, _, err = cli("add", "--center", "no spaces")
    assert code == 2 and "center 'no spaces' is not valid" in err


def test_lab_clients_take_the_key_from_the_environment_then_the_lab_env_file(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    write_env(env_file, {"ACD_API_KEY": "acd_from_the_lab_env_file"})
    monkeypatch.setenv("LAB_ENV_FILE", str(env_file))
    monkeypatch.delenv("ACD_API_KEY", raising=False)
    assert lab.api_key() == "acd_from_the_lab_env_file"
    monkeypatch.setenv("ACD_API_KEY", "acd_from_the_environment")
    assert lab.api_key() == "acd_from_the_environment"
