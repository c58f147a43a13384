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

REPO = Path(__file__).resolve().parents[1]


async def check_invariants(center: Center) -> None:
    """Every agent's state agrees with the sets, documents and contacts; fail otherwise."""
    r, k = center.redis, center.keys
    agents = await center.list_agents()
    busy_contacts: dict[str, str] = {}
    for agent in agents:
        for skill in agent.skills:
            score = await r.zscore(k.avail(skill), agent.id)
            if agent.state == "available":
                assert score == agent.available_since, f"{agent.id} score {score} in {skill}"
            else:
                assert score is None, f"{agent.id} is {agent.state} but in avail:{skill}"
        if agent.state == "busy":
            assert agent.contact, f"busy agent {agent.id} has no contact"
            assert agent.contact not in busy_contacts, f"two agents on {agent.contact}"
            busy_contacts[agent.contact] = agent.id
            contact = await center.get_contact(agent.contact)
            assert contact.state == "assigned" and contact.agent == agent.id, contact
            assert set(contact.skills) <= set(agent.skills), (contact, agent)
    queued = await r.zrange(k.queue, 0, -1)
    sigs: dict[str, int] = {}
    for cid in queued:
        contact = await center.get_contact(cid)
        assert contact.state == "queued", contact
        sig = ",".join(contact.skills)
        sigs[sig] = sigs.get(sig, 0) + 1
    stored = {s: int(n) for s, n in (await r.hgetall(k.waiting_sigs)).items()}
    assert stored == sigs, f"waiting signatures {stored} != queue {sigs}"


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
