"""The contact failover drill: callers and agents through the REST API while the HA lab fails.

``python -m lab.drill [--json]`` (the HA lab must be up: ``./start.sh --ha``), or from a
notebook::

    from lab.drill import run
    report = run()                  # about a minute
    report.table()                  # a rich Table; report.to_dict() for the figures

While traffic runs through the VIP (API :8000, which reaches Redis through the VIP :12000):

1. ``stop lb1``: keepalived and HAProxy of the balancer holding the VIP stop; the VIP moves.
2. ``kill -9 primary``: Sentinel promotes a replica, HAProxy's checks follow it.
3. ``bring both back``: the balancer starts again (as backup: nopreempt), the old primary
   restarts from its own (Sentinel-rewritten) config and rejoins as a replica.

The traffic: agents (created through the API, available) and callers posting contacts at a
steady rate with client-generated ids. Every call is retried with backoff (tenacity) on
connection errors and 5xx; a retried POST with the same id returns the existing contact
(200), never a second one. A caller polls its contact until it is assigned, holds it
briefly, then completes it (its agent becomes available again). Every attempt is recorded,
so errors are counted as clients see them.

For each event: seconds until clients succeed again, contacts offered (a 2xx was received),
assigned and lost (acknowledged but not assigned or completed in Redis at the end), and
the client errors by kind. At the end the contacts are checked in Redis directly, and the
center's ``offered`` counter tells whether any contact was created twice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import redis
from rich.console import Console
from rich.table import Table

from lab.errors import LabError
from lab.ha import failover, roles
from lab.ha.hooks import app_pids
from lab.ha.layout import HATopology, redis_client
from lab.ha.state import load_state
from lab.ha.traffic import RETRY_FOR, Traffic

SETTLE_S = 2.0  # clients must succeed without an error this long after an event


# --------------------------------------------------------------------------- records


@dataclass
class EventResult:
    event: str
    outage_s: float  # action start -> first success after the last client error
    offered: int  # contacts acknowledged with a 2xx (first attempt in this phase)
    assigned: int  # of those, assigned or completed in Redis at the end
    lost: int  # offered - assigned: must be 0
    client_errors: int
    error_kinds: dict[str, int]
    max_post_s: float  # longest a caller waited for its 2xx, retries included
    detail: str = ""


@dataclass
class DrillReport:
    center: str
    rate: float
    agents: int
    events: list[EventResult]
    duplicates: int
    unacked_created: int  # contacts a caller gave up on that exist anyway (not offered)
    components_survived: bool
    components: dict[str, str]
    final_roles: dict[str, str]
    vip_holder: str | None
    notes: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)  # acd.invariants at the end

    @property
    def lost(self) -> int:
        return sum(e.lost for e in self.events)

    @property
    def ok(self) -> bool:
        return (self.lost == 0 and self.duplicates == 0 and self.components_survived
                and not self.violations)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["lost"] = self.lost
        data["ok"] = self.ok
        return data

    def table(self) -> Table:
        t = Table(
            title=f"Contact failover drill (center {self.center}, {self.rate:g} contacts/s, "
            f"{self.agents} agents)"
        )
        for col in (
            "event",
            "outage s",
            "offered",
            "assigned",
            "lost",
            "client errors",
            "max POST wait s",
        ):
            t.add_column(col, justify="left" if col in ("event", "client errors") else "right")
        for e in self.events:
            kinds = ", ".join(f"{k} x{n}" for k, n in sorted(e.error_kinds.items())) or "-"
            t.add_row(
                e.event,
                f"{e.outage_s:.2f}",
                str(e.offered),
                str(e.assigned),
                str(e.lost),
                f"{e.client_errors} ({kinds})" if e.client_errors else "0",
                f"{e.max_post_s:.2f}",
            )
        t.caption = (
            f"duplicates {self.duplicates}; one contact per agent: "
            f"{'kept' if not self.violations else f'BROKEN ({self.violations[0]} ...)'}; "
            f"components survived: "
            f"{'yes' if self.components_survived else 'NO'} "
            f"({', '.join(f'{k} {v}' for k, v in self.components.items())}); "
            f"roles now {self.final_roles}; VIP on {self.vip_holder}"
        )
        return t


# --------------------------------------------------------------------------- traffic


# --------------------------------------------------------------------------- the drill


async def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if await asyncio.to_thread(check):  # lab.ha's probes block: not on the loop
                return
        except (LabError, redis.RedisError, OSError):
            pass
        if time.monotonic() >= deadline:
            raise LabError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.1)


async def arun(
    *,
    rate: float = 10.0,
    agents: int = 20,
    handle_s: float = 0.3,
    warmup_s: float = 3.0,
    settle_s: float = SETTLE_S,
    event_timeout: float = 45.0,
    run_dir: Path | str | None = None,
    echo: Callable[[str], None] | None = None,
) -> DrillReport:
    """Run the drill against the running HA lab (see the module docstring)."""
    say = echo or (lambda _: None)
    rd = _run_dir(run_dir)
    topo = _topology(rd)
    pids_before = app_pids(rd)
    if not any(k.startswith("api") for k in pids_before):
        raise LabError("no API replicas run in the HA lab: start it with ./start.sh --ha")
    center = f"drill-{uuid.uuid4().hex[:8]}"
    traffic = Traffic(topo.api_url, center, rate, agents, handle_s)
    phases: list[tuple[str, float, str]] = []  # (event, action time, detail)
    try:
        await traffic.setup()
        feeder = asyncio.create_task(traffic.callers())
        t0 = time.monotonic()
        phases.append(("baseline (no failure)", t0, ""))
        await asyncio.sleep(warmup_s)

        async def event(
            name: str,
            action: Callable[[], Awaitable[object]],
            ready: Callable[[], bool],
            what: str,
            describe: Callable[[], str],
        ) -> None:
            at = time.monotonic()
            say(f"  {name} ...")
            phases.append((name, at, ""))
            await action()
            await _wait(ready, event_timeout, what)
            await _wait(
                lambda: traffic.recovered_since(at, settle_s),
                event_timeout,
                f"clients to succeed again after {name}",
            )
            detail = await asyncio.to_thread(describe)
            phases[-1] = (name, at, detail)
            say(f"  {name}: {detail}")

        holder = roles.vip_holder(rd) or "lb1"
        other = next(n for n in topo.lbs if n != holder)

        await event(
            f"stop {holder} (VIP moves)",
            lambda: asyncio.to_thread(failover.stop_lb, holder, rd),
            lambda: roles.vip_holders(rd) == [other],
            f"the VIP on {other}",
            lambda: f"VIP {topo.vip} moved from {holder} to {roles.vip_holder(rd)}",
        )

        old = roles.primary(rd)

        def promoted() -> bool:
            if roles.primary(rd) == old:
                return False
            with topo.client() as r:
                return str(r.execute_command("ROLE")[0]) == "master"

        await event(
            f"kill -9 primary {old}",
            lambda: asyncio.to_thread(failover.kill_primary, rd),
            promoted,
            "a new primary through the VIP",
            lambda: f"Sentinel promoted {roles.primary(rd)} (was {old})",
        )

        async def bring_back() -> None:
            await asyncio.to_thread(failover.start_lb, holder, rd)
            await asyncio.to_thread(failover.restart_node, old, rd, event_timeout)

        def rejoined() -> bool:
            info = roles.status(rd)
            return info["roles"].get(old) == "slave" and all(info["processes"].values())

        await event(
            f"bring back {holder} + {old}",
            bring_back,
            rejoined,
            f"{old} as a replica and {holder} running",
            lambda: (
                f"{holder} back as backup (VIP stays on {roles.vip_holder(rd)}); "
                f"{old} rejoined as a replica of {roles.primary(rd)}"
            ),
        )
        t_end = time.monotonic()
        await traffic.drain(RETRY_FOR)
        feeder.cancel()
        say("  checking every contact in Redis ...")
        found = await asyncio.to_thread(_redis_states, topo, center, list(traffic.contacts))
        say("  checking one contact per agent, from the agents' and the contacts' side ...")
        broken = await _violations(topo, center)
    finally:
        await traffic.close()

    pids_after = app_pids(rd)
    from lab.processes import pid_alive

    components = {
        name: (
            "survived" if pids_after.get(name) == pid and pid_alive(pid) else "RESTARTED OR DEAD"
        )
        for name, pid in sorted(pids_before.items())
    }
    results = _results(traffic, phases, t_end, found["states"])
    created = sum(1 for s in found["states"].values() if s is not None)
    notes = sorted({r.gave_up for r in traffic.contacts.values() if r.gave_up})[:10]
    unacked_created = sum(
        1
        for cid, r in traffic.contacts.items()
        if r.acked_at is None and found["states"].get(cid) is not None
    )
    info = roles.status(rd)
    return DrillReport(
        center=center,
        rate=rate,
        agents=agents,
        events=results,
        duplicates=max(0, found["offered_counter"] - created) + found["foreign"],
        unacked_created=unacked_created,
        components_survived=all(v == "survived" for v in components.values()),
        components=components,
        final_roles=dict(info["roles"]),
        vip_holder=", ".join(info["vip_holder"]) or None,
        notes=notes,
        violations=broken,
    )


def _results(
    traffic: Traffic,
    phases: list[tuple[str, float, str]],
    t_end: float,
    states: dict[str, str | None],
) -> list[EventResult]:
    out: list[EventResult] = []
    for i, (name, at, detail) in enumerate(phases):
        until = phases[i + 1][1] if i + 1 < len(phases) else t_end + RETRY_FOR
        attempts = [a for a in traffic.attempts if at <= a.start < until]
        errors = [a for a in attempts if not a.ok]
        outage = 0.0
        if errors:
            last = max(a.start for a in errors)
            after = [a.end for a in attempts if a.ok and a.start >= last]
            outage = (min(after) if after else until) - at
        recs = [r for r in traffic.contacts.values() if at <= r.first_try < until]
        offered = [r for r in recs if r.acked_at is not None]
        assigned = [r for r in offered if states.get(r.id) in ("assigned", "completed")]
        waits = [r.acked_at - r.first_try for r in offered if r.acked_at is not None]
        out.append(
            EventResult(
                event=name,
                outage_s=round(outage, 2),
                offered=len(offered),
                assigned=len(assigned),
                lost=len(offered) - len(assigned),
                client_errors=len(errors),
                error_kinds=dict(Counter(a.kind for a in errors)),
                max_post_s=round(max(waits, default=0.0), 2),
                detail=detail,
            )
        )
    return out


def _redis_states(topo: HATopology, center: str, ids: list[str]) -> dict[str, Any]:
    """Each contact's state read from Redis through the VIP, the center's offered counter,
    and how many contact documents of the center no caller ever asked for."""
    from acd.keys import Keys

    keys = Keys(center)
    deadline = time.monotonic() + 30
    while True:
        try:
            with redis_client(topo.vip, topo.redis_port, topo.password, socket_timeout=5) as r:
                pipe = r.pipeline(transaction=False)
                for cid in ids:
                    pipe.execute_command("JSON.GET", keys.contact(cid), "$.state")
                raw = pipe.execute()
                states = {
                    cid: (json.loads(v)[0] if v else None) for cid, v in zip(ids, raw, strict=True)
                }
                offered = int(r.hget(keys.stats, "offered") or 0)
                prefix = keys.contact("")
                known = set(ids)
                foreign = sum(
                    1
                    for k in r.scan_iter(match=keys.pattern(), count=1000)
                    if str(k).startswith(prefix) and str(k)[len(prefix) :] not in known
                )
            return {"states": states, "offered_counter": offered, "foreign": foreign}
        except (redis.RedisError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


async def _violations(topo: HATopology, center: str) -> list[str]:
    """acd.invariants through the VIP. Read twice a second apart: a completion still in
    flight when the traffic stopped can make one read see half of it."""
    from acd import Center, connect
    from acd.invariants import violations

    client = connect(topo.redis_url)
    try:
        found = await violations(Center(client, center))
        if found:
            await asyncio.sleep(1.0)
            found = await violations(Center(client, center))
        return found
    finally:
        await client.aclose()


def _run_dir(run_dir: Path | str | None) -> Path:
    if run_dir is not None:
        return Path(run_dir).resolve()
    from lab.stack import LabConfig

    return (LabConfig.from_environment().home / "ha").resolve()


def _topology(rd: Path) -> HATopology:
    state = load_state(rd)
    if state is None:
        raise LabError(f"the HA lab is not running (no {rd / 'state.json'}): ./start.sh --ha")
    return HATopology.from_dict(state["topology"])


def run(**kwargs: Any) -> DrillReport:
    """:func:`arun` from synchronous code, or from a notebook (whose event loop runs): then
    in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(arun(**kwargs))
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["report"] = asyncio.run(arun(**kwargs))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="lab-drill")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    report: DrillReport = box["report"]
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.drill", description=__doc__.split("\n")[0])
    p.add_argument("--rate", type=float, default=10.0, help="contacts per second (default 10)")
    p.add_argument("--agents", type=int, default=20, help="agents (default 20)")
    p.add_argument("--handle", type=float, default=0.3, help="seconds an agent holds a contact")
    p.add_argument("--run-dir", help="the HA run dir (default: $LAB_HOME/ha)")
    p.add_argument("--json", action="store_true", help="print the report as JSON only")
    args = p.parse_args(argv)
    err = Console(stderr=True)
    try:
        report = run(
            rate=args.rate,
            agents=args.agents,
            handle_s=args.handle,
            run_dir=args.run_dir,
            echo=None if args.json else err.print,
        )
    except LabError as exc:
        print(f"lab.drill: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        Console(width=None if sys.stdout.isatty() else 150).print(report.table())
        for note in report.notes:
            err.print(f"  note: {note}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
