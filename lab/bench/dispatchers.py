"""Dispatcher processes for the benchmark: ``python -m acd.dispatcher`` started for one
center, waited for until each blocks on the wake stream, always stopped; the pairs each
assigned are read back from its DEBUG log."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from redis.asyncio import Redis

from acd.center import Center

REPO = Path(__file__).resolve().parents[2]
_ASSIGNED = re.compile(r"assigned contact (\S+) to agent (\S+)")


@dataclass
class DispatcherProcess:
    proc: subprocess.Popen[bytes]
    log: Path

    def pairs(self) -> list[tuple[str, str]]:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return [(m[1], m[2]) for m in _ASSIGNED.finditer(text)]


async def xread_clients(redis: Redis) -> int:
    """Clients blocked in XREAD now: a dispatcher waiting for a wake-up is one."""
    clients = await cast(Any, redis.client_list())
    return sum(1 for c in clients if c.get("cmd") == "xread")


@asynccontextmanager
async def dispatcher_processes(redis: Redis, url: str, center: Center, count: int,
                               log_dir: Path, batch: int, debug: bool
                               ) -> AsyncIterator[list[DispatcherProcess]]:
    """``count`` processes of ``python -m acd.dispatcher``, started and waiting on the wake
    stream when the block runs; stopped (SIGTERM, then SIGKILL) after it."""
    before = await xread_clients(redis)
    env = {**os.environ, "PYTHONPATH": str(REPO), "REDIS_URL": url}
    started: list[DispatcherProcess] = []
    try:
        for i in range(count):
            log = log_dir / f"dispatcher-{center.name}-{i}.log"
            with open(log, "wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "acd.dispatcher", "--center", center.name,
                     "--redis-url", url, "--batch", str(batch),
                     "--log-level", "DEBUG" if debug else "WARNING"],
                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    cwd=REPO, env=env, start_new_session=True)
            started.append(DispatcherProcess(proc, log))
        deadline = time.monotonic() + 30
        while await xread_clients(redis) - before < count:
            dead = [p for p in started if p.proc.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"dispatcher did not start; see {started[0].log}")
            await asyncio.sleep(0.05)
        yield started
    finally:
        for p in started:
            if p.proc.poll() is None:
                p.proc.send_signal(signal.SIGTERM)
        for p in started:
            try:
                await asyncio.to_thread(p.proc.wait, 10)
            except subprocess.TimeoutExpired:
                p.proc.kill()
                await asyncio.to_thread(p.proc.wait, 5)
