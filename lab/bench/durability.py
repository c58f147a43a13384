"""Benchmark: what a crash of Redis loses under load, with each AOF fsync policy.

    python -m lab.bench.durability                       # everysec then always, ~1 minute
    python -m lab.bench.durability --fsync always --seconds 10 --kills 1
    python -m lab.bench.durability --crash machine       # model a power cut (lab.bench.aof)

For each policy: a throw-away redis-server with ``appendonly yes`` and that
``appendfsync``; ``--agents`` agents and ``--dispatchers`` real dispatcher processes
(``python -m acd.dispatcher``); callers create contacts at ``--rate`` per second (the acd
package, as the API does), agents complete each ``--handle-ms`` after its assignment.
``--kills`` times, evenly spread, Redis gets SIGKILL and is restarted on the same data dir
at once (the lab's supervisor does that); the dispatchers reconnect by themselves. After
the load, the callers stop, the rest is served, and the bench counts:
- ``acked_lost``: contacts a caller got an id for, gone after the restarts;
- ``completions_lost``: completions acknowledged, then undone by a crash (the agent is
  busy again on a contact its client ended); the agents' clients re-send them after each
  restart (completing is idempotent), as an agent's desktop would;
- ``completed_while_queued``: a completion that found its contact waiting again (its
  assignment was lost): the contact ends abandoned;
- ``contacts_stuck`` / ``agents_stuck``: acknowledged contacts still waiting or assigned,
  and agents still busy, once everything else was served (contacts: also before the
  reconciler ran, while the dispatchers still run);
- ``violations``: acd.invariants' broken promises, before and after acd.reconcile;
- per kill: seconds until Redis answered again and until the next assignment;
- ``torn_aof_loads`` / ``reverted_transactions``: restarts that cut a torn AOF tail, and
  that dropped a transaction cut short (Redis's log).
One JSON line per kill and one per policy.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from acd import AlreadyExists, Center, NotFound, connect
from acd.center import DEFAULT_BATCH
from acd.commands import xread
from acd.invariants import violations
from acd.reconcile import reconcile
from lab.bench.aof import FSYNC_POLICIES, DurableRedis
from lab.bench.dispatchers import dispatcher_processes
from lab.embedded import free_port

SKILLS = ["en", "fr", "de", "billing"]
RETRY_S = 30.0  # a completion is re-sent this long while Redis is away
EVERYSEC_WINDOW_S = 1.0  # what a machine crash loses under everysec (its fsync period)
TORN = "loaded anyway because aof-load-truncated"  # a restart cut a torn AOF tail


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


class Load:
    """Callers and agents of one center, and what each was told."""

    def __init__(self, center: Center, rate: float, handle_s: float) -> None:
        self.center, self.rate, self.handle_s = center, rate, handle_s
        self.acked: dict[str, float] = {}  # contact -> when its creation was acknowledged
        self.unacked: set[str] = set()  # creations that failed (Redis away)
        self.completed: dict[str, float] = {}  # contact -> when its completion was acked
        self.while_queued: set[str] = set()
        self.assigned_at: list[float] = []  # when the follower saw each assignment
        self.stop = asyncio.Event()
        self._due: asyncio.Queue[tuple[float, str]] = asyncio.Queue()

    async def callers(self, rng: random.Random) -> None:
        gate, sends, start, i = asyncio.Semaphore(64), [], time.monotonic(), 0
        while not self.stop.is_set():
            delay = start + i / self.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sends.append(asyncio.create_task(self._create(rng.choice(SKILLS), gate)))
            i += 1
        await asyncio.gather(*sends)

    async def _create(self, skill: str, gate: asyncio.Semaphore) -> None:
        cid = uuid.uuid4().hex
        async with gate:
            try:
                await self.center.create_contact([skill], cid)
            except AlreadyExists:
                pass  # a retry of a call whose reply the crash cut: it is stored
            except Exception:  # noqa: BLE001 - Redis away: the caller was told it failed
                self.unacked.add(cid)
                return
        self.acked[cid] = time.monotonic()

    async def follow(self) -> None:
        """Each assignment of a contact of ours: complete it after the handle time."""
        cursor = await self.center.last_event_id()
        while True:
            try:
                entries = await xread(self.center.redis, self.center.keys.events, cursor,
                                      200, count=500)
            except Exception:  # noqa: BLE001 - Redis away: read again when it is back
                await asyncio.sleep(0.05)
                continue
            for entry_id, fields in entries:
                cursor = entry_id
                if fields.get("type") == "contact_assigned":
                    self.assigned_at.append(time.monotonic())
                    self._due.put_nowait((time.monotonic() + self.handle_s, fields["contact"]))

    async def agents(self) -> None:
        while True:
            due, cid = await self._due.get()
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            await self.complete(cid)

    async def complete(self, cid: str) -> bool:
        """Complete ``cid``, re-sending while Redis is away; True if it was acknowledged."""
        deadline = time.monotonic() + RETRY_S
        while True:
            try:
                ended = await self.center.complete_contact(cid)
            except NotFound:
                return False
            except Exception:  # noqa: BLE001 - Redis away: an agent presses again
                if time.monotonic() > deadline:
                    return False
                await asyncio.sleep(0.1)
                continue
            if ended.state.value == "abandoned":
                self.while_queued.add(cid)
            else:
                self.completed[cid] = time.monotonic()
            return True

    async def resend_completions(self, since: float) -> tuple[int, int]:
        """After a restart: completions acknowledged since ``since`` whose contact is
        assigned again are sent again. Returns how many the crash had undone, and how
        many of their contacts wait again (the crash undid their assignment too: they
        will be served a second time)."""
        recent = [c for c, t in self.completed.items() if t >= since]
        found = [c for c in await self.center.get_contacts(recent) if c is not None]
        undone = [c.id for c in found if c.state.value == "assigned"]
        for cid in undone:
            await self.complete(cid)
        requeued = [c.id for c in found if c.state.value == "queued"]
        return len(undone) + len(requeued), len(requeued)


async def _states(center: Center, ids: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    ids = list(ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for cid, c in zip(chunk, await center.get_contacts(chunk), strict=True):
            out[cid] = c.state.value if c else "missing"
    return out


async def _wait(check: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.1)
    return False


async def crash(server: DurableRedis, load: Load, machine: bool,
                sizes: list[tuple[float, int]], rng: random.Random, rewrite: bool
                ) -> dict[str, Any]:
    """Kill -9 Redis (machine: cut its AOF back to what was fsynced), restart it, wait
    until it serves again; the agents' clients re-send what the crash undid."""
    with server.client() as r:
        # Writes postponed behind a slow fsync (everysec): replied to, not yet written.
        delayed = int(r.info("persistence").get("aof_delayed_fsync", 0))
    killed = time.monotonic()
    server.kill()
    dropped = 0
    if machine and server.fsync == "everysec":
        # What was fsynced about a second ago, and part of the next write: a power cut
        # may leave some pages of a write on disk and not others.
        synced = killed - EVERYSEC_WINDOW_S
        older = [size for at, size in sizes if at <= synced]
        newer = [size for at, size in sizes if at > synced] or older
        if older:
            dropped = server.truncate(rng.randint(older[-1], max(older[-1], newer[0])))
    torn = server.log_count(TORN)
    await _within(asyncio.to_thread(server.start), 60, f"{server.name} to restart")
    rewritten = rewrite and server.log_count(TORN) > torn
    if rewritten:
        await _within(asyncio.to_thread(server.rewrite), 60, "the AOF rewrite")
    answered = time.monotonic()
    seen = len(load.assigned_at)
    # First, as agents' desktops would: else every agent may stay busy on a contact its
    # client ended, and nothing is served again.
    undone, requeued = await _within(load.resend_completions(killed - 5.0), 60,
                                     "the completions the crash undid to be sent again")
    served = await _wait(lambda: _true(len(load.assigned_at) > seen), 30)
    return {"down_s": round(answered - killed, 3),
            "serving_again_s": round(load.assigned_at[seen] - killed, 3) if served else None,
            "aof_bytes_dropped": dropped, "completions_undone": undone,
            "served_then_requeued": requeued, "aof_rewritten": rewritten,
            "delayed_fsyncs": delayed}


async def _within(step: Any, timeout: float, what: str) -> Any:
    try:
        return await asyncio.wait_for(step, timeout)
    except TimeoutError:
        raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}") from None


async def _true(value: bool) -> bool:
    return value


async def sample_aof(server: DurableRedis, sizes: list[tuple[float, int]]) -> None:
    while True:
        with contextlib.suppress(OSError):  # between a kill and the restart's new file
            sizes.append((time.monotonic(), server.aof_size()))
        await asyncio.sleep(0.05)


async def measure(server: DurableRedis, args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    redis = connect(server.url)
    center = Center(redis, "durability")
    rng = random.Random(args.seed)
    for i in range(args.agents):
        await center.create_agent(f"a{i}", "Dur", str(i), rng.sample(SKILLS, 2), available=True)
    load = Load(center, args.rate, args.handle_ms / 1000)
    kills: list[dict[str, Any]] = []
    sizes: list[tuple[float, int]] = []
    async with dispatcher_processes(redis, server.url, center, args.dispatchers, logs,
                                    DEFAULT_BATCH, debug=False):
        workers = [asyncio.create_task(t) for t in
                   (load.follow(), sample_aof(server, sizes),
                    *(load.agents() for _ in range(16)))]
        callers = asyncio.create_task(load.callers(rng))
        start = time.monotonic()
        for k in range(args.kills):
            await asyncio.sleep(max(0.0, start + args.seconds * (k + 1) / (args.kills + 1)
                                    - time.monotonic()))
            kills.append(await crash(server, load, args.crash == "machine", sizes, rng,
                                     args.rewrite))
            emit({"measure": "kill", "fsync": server.fsync, "crash": args.crash,
                  "kill": k + 1, **kills[-1]})
        await asyncio.sleep(max(0.0, start + args.seconds - time.monotonic()))
        load.stop.set()
        await _within(callers, 60, "the callers to stop")

        async def drained() -> bool:
            states = await _states(center, list(load.acked))
            return all(s not in ("queued", "assigned") for s in states.values())
        await _wait(drained, 30)
        before = await _states(center, list(load.acked))
        found = await violations(center)
        # While the dispatchers and agents still run: what it repairs is then served.
        report = await reconcile(center)
        await _wait(drained, 15)
        for task in workers:
            task.cancel()
        await _within(asyncio.gather(*workers, return_exceptions=True), 30,
                      "the agents and the follower to stop")
    states = await _states(center, [*load.acked, *load.unacked])
    agents = await center.list_agents()
    after = await violations(center)
    lost = [c for c in load.acked if states[c] == "missing"]
    await redis.aclose()
    return {
        "acked": len(load.acked), "acked_lost": len(lost),
        "unacked": len(load.unacked),
        "unacked_but_stored": sum(states[c] != "missing" for c in load.unacked),
        "completed": sum(s == "completed" for s in states.values()),
        "completions_lost": sum(k["completions_undone"] for k in kills),
        "completed_while_queued": len(load.while_queued),
        "contacts_stuck_before_reconcile": sum(s in ("queued", "assigned")
                                               for s in before.values()),
        "contacts_stuck": sum(states[c] in ("queued", "assigned") for c in load.acked),
        "agents_stuck": sum(a.state.value == "busy" for a in agents),
        "violations": len(found), "first_violations": found[:3],
        "reconcile_repairs": report.repairs, "violations_after_reconcile": len(after),
        "served_then_requeued": sum(k["served_then_requeued"] for k in kills),
        "delayed_fsyncs": sum(k["delayed_fsyncs"] for k in kills),
        "torn_aof_loads": server.log_count(TORN),
        "reverted_transactions": server.log_count("Revert incomplete MULTI"),
        "down_s_max": max((k["down_s"] for k in kills), default=None),
        # None when some restart was not serving again within 30 s
        "serving_again_s_max": None if any(k["serving_again_s"] is None for k in kills)
        else max((k["serving_again_s"] for k in kills), default=None),
    }


async def run_policy(fsync: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"acd-durability-{fsync}-") as tmp:
        server = DurableRedis(Path(tmp), free_port(), fsync)
        server.start()
        try:
            figures = await measure(server, args, Path(tmp))
        finally:
            server.stop()
    record = {"measure": "durability", "fsync": fsync, "crash": args.crash,
              "rewrite": args.rewrite,
              "seconds": args.seconds, "kills": args.kills, "rate": args.rate,
              "agents": args.agents, "dispatchers": args.dispatchers, **figures}
    emit(record)
    return record


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m lab.bench.durability", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fsync", nargs="+", choices=FSYNC_POLICIES, default=list(FSYNC_POLICIES),
                   help="appendfsync policies to measure (default: both)")
    p.add_argument("--seconds", type=float, default=20.0, help="length of the load")
    p.add_argument("--kills", type=int, default=3, help="kill -9 of Redis during the load")
    p.add_argument("--crash", choices=["process", "machine"], default="process",
                   help="process: kill -9 only; machine: also drop the AOF's last "
                        f"{EVERYSEC_WINDOW_S:g} s under everysec (what was not fsynced)")
    p.add_argument("--rewrite", action="store_true",
                   help="BGREWRITEAOF after a restart that cut a torn AOF tail (the fix for "
                        "a half transaction left in the file: README, Reliability)")
    p.add_argument("--rate", type=float, default=100.0, help="contacts created per second")
    p.add_argument("--agents", type=int, default=40)
    p.add_argument("--handle-ms", type=float, default=200.0)
    p.add_argument("--dispatchers", type=int, default=2)
    p.add_argument("--seed", type=int, default=3)
    args = p.parse_args(argv)
    for name in ("seconds", "rate"):
        if getattr(args, name) <= 0:
            p.error(f"--{name} must be positive")
    if args.kills < 0 or args.agents < 1 or args.dispatchers < 1:
        p.error("--kills must be 0 or more, --agents and --dispatchers at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    records = [asyncio.run(run_policy(fsync, args)) for fsync in args.fsync]
    bad = [r for r in records if r["violations_after_reconcile"] or r["contacts_stuck"]
           or r["agents_stuck"] or (r["fsync"] == "always" and r["acked_lost"])]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
