"""Fixtures of the API tests: the app on the test Redis, an in-process client, a real
uvicorn server with two workers."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from acd import Center
from acd.api.app import create_app
from acd.settings import Settings
from lab.embedded import free_port

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def api_app(redis_url: str, center: Center) -> FastAPI:
    """The app on the test server; the original demo's routes use the test's center."""
    return create_app(Settings(redis_url=redis_url, acd_center=center.name))


@pytest.fixture
async def client(api_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client; the app's lifespan runs around it, as under uvicorn."""
    async with (
        api_app.router.lifespan_context(api_app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=api_app),
                          base_url="http://api.test", timeout=10.0) as c,
    ):
        yield c


@pytest.fixture
def v1(center: Center) -> str:
    """URL prefix of the test's center in the versioned API."""
    return f"/v1/centers/{center.name}"


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def start_uvicorn(env: dict[str, str], log: Path, workers: int = 2,
                  deadline_s: float = 30.0) -> Server:
    """``python -m uvicorn acd.api.app:app`` on a free port; returns once /health is 200."""
    port = free_port()
    out = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "acd.api.app:app", "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers), "--log-level", "warning"],
        env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    out.close()
    server = Server(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + deadline_s
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {process.returncode}: "
                                   f"{log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{server.url}/health", timeout=1.0).status_code == 200:
                    return server
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn not healthy after {deadline_s} s: "
                                   f"{log.read_text()[-2000:]}")
            time.sleep(0.1)
    except BaseException:
        stop_uvicorn(server)
        raise


def stop_uvicorn(server: Server, timeout: float = 10.0) -> None:
    """SIGTERM the server's process group (uvicorn and its workers); SIGKILL if it lingers."""
    process = server.process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout)
    # Workers left behind by a parent that died first
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def uvicorn_server(subprocess_env: dict[str, str], center: Center,
                   tmp_path: Path) -> Iterator[Server]:
    """A real uvicorn with 2 workers on the test Redis, default center = the test's."""
    env = {**subprocess_env, "ACD_CENTER": center.name}
    server = start_uvicorn(env, tmp_path / "uvicorn.log")
    try:
        yield server
    finally:
        stop_uvicorn(server)
