"""A real uvicorn running the API, for tests: start it, wait for /health, always stop it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from lab.embedded import free_port

REPO = Path(__file__).resolve().parents[1]


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
