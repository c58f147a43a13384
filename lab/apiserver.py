"""The REST API under a real uvicorn, for benchmarks and tests: start it on a free port,
wait for /health/live (no dispatcher need run), always stop it (its whole process group:
uvicorn and its workers).

The lab's own API service is started by lab.stack (a managed Service with a pid file);
this is the throw-away kind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from lab.embedded import free_port
from lab.processes import StartError, WaitTimeout, wait_until

REPO = Path(__file__).resolve().parents[1]


@dataclass
class ApiServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path | None


def start(env: dict[str, str], log: Path | None = None, workers: int = 2,
          deadline_s: float = 30.0) -> ApiServer:
    """``python -m uvicorn acd.api.app:app`` on a free port with ``env`` (REDIS_URL,
    ACD_CENTER...); returns once /health/live answers 200, raises StartError naming the
    log otherwise."""
    port = free_port()
    with (log or Path(os.devnull)).open("wb") as out:  # the child keeps its own copy
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "acd.api.app:app", "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(workers), "--log-level", "warning",
             "--no-access-log"],
            env={**env, "PYTHONPATH": str(REPO)}, cwd=REPO, stdout=out,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    server = ApiServer(f"http://127.0.0.1:{port}", process, log)

    def healthy() -> bool:
        if process.poll() is not None:
            raise StartError(f"uvicorn exited with {process.returncode}{_tail(log)}")
        return httpx.get(f"{server.url}/health/live", timeout=1.0).status_code == 200

    try:
        wait_until(healthy, deadline_s, f"uvicorn on {server.url} to answer /health/live")
    except WaitTimeout:
        stop(server)
        raise StartError(f"uvicorn not healthy after {deadline_s} s{_tail(log)}") from None
    except BaseException:
        stop(server)
        raise
    return server


def stop(server: ApiServer, timeout: float = 10.0) -> None:
    """SIGTERM the server's process group; SIGKILL if it lingers, and for workers left
    behind by a parent that died first."""
    process = server.process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def running(env: dict[str, str], log: Path | None = None, workers: int = 2
            ) -> Iterator[ApiServer]:
    server = start(env, log, workers)
    try:
        yield server
    finally:
        stop(server)


def _tail(log: Path | None) -> str:
    return f"; see {log}:\n{log.read_text()[-2000:]}" if log and log.exists() else ""
