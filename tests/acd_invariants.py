"""Checks of a center's whole state, shared by the dispatcher tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from acd import Center
from acd.invariants import violations

REPO = Path(__file__).resolve().parents[1]


async def check_invariants(center: Center) -> None:
    """Fail naming every broken promise of the center's state (acd.invariants: one
    contact per agent from the agents' and the contacts' side, sets, queue)."""
    found = await violations(center)
    assert not found, f"{len(found)} violations: " + "; ".join(found[:10])


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Await ``check`` until true; fail naming ``what`` at the deadline."""
    import asyncio

    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


def dispatcher_cmd(center: str, redis_url: str, idle_ms: int = 1000) -> list[str]:
    return [sys.executable, "-m", "acd.dispatcher", "--center", center,
            "--redis-url", redis_url, "--idle-ms", str(idle_ms), "--summary-every", "1"]


class DispatcherPool:
    """Real dispatcher processes for one center; kill -9 and respawn them at will."""

    def __init__(self, center: str, redis_url: str, idle_ms: int, log_dir: Path | None):
        self.cmd = dispatcher_cmd(center, redis_url, idle_ms)
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self) -> subprocess.Popen[bytes]:
        n = len(self.procs)
        out: Any = subprocess.DEVNULL
        if self.log_dir:
            out = open(self.log_dir / f"dispatcher-{n}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(self.cmd, env={**os.environ, "PYTHONPATH": str(REPO)},
                                stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if p.poll() is None]

    def close(self) -> None:
        for p in self.alive():
            self.kill(p)


@contextmanager
def dispatcher_processes(center: str, redis_url: str, n: int, idle_ms: int = 1000,
                         log_dir: Path | None = None) -> Iterator[DispatcherPool]:
    """Run ``n`` real dispatcher processes; always kill them at the end."""
    pool = DispatcherPool(center, redis_url, idle_ms, log_dir)
    try:
        for _ in range(n):
            pool.spawn()
        yield pool
    finally:
        pool.close()


async def events_since(center: Center, after: str = "0-0") -> list[tuple[str, dict[str, Any]]]:
    rows = await center.redis.xrange(center.keys.events, min=f"({after}" if after != "0-0"
                                     else "-", max="+")
    return [(i, dict(f)) for i, f in rows]


def dumps(obj: Any) -> str:
    return json.dumps(obj, default=str)
