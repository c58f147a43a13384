"""The drill itself: the probes run while the HA lab fails on purpose, event by event."""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lab
from lab.errors import LabError
from lab.ha import (
    HATopology,
    app_pids,
    kill_primary,
    primary,
    restart_node,
    start_lb,
    status,
    stop_lb,
    vip_holder,
    vip_holders,
)
from lab.ha.state import require_state
from lab.processes import pid_alive, wait_until
from lab.supervisor import holding

from .contacts import (
    RETRY_FOR,
    ContactCheck,
    ContactTraffic,
    check_contacts,
    invariant_violations,
)
from .figures import Attempt, Figures, Sent, figures, recovered_since
from .report import DrillReport, EventResult
from .writes import RedisWriter

SETTLE_S = 2.0  # clients must succeed without an error this long after an event
LIMIT_S = 900.0  # the whole drill, when run() runs it in a thread (every wait has its own)
BASELINE = "baseline (no failure)"


@dataclass(frozen=True)
class Step:
    """One failure on purpose. The callables block (lab.ha's): they run in threads."""

    name: str
    action: Callable[[], object]
    done: Callable[[], bool]  # the lab reached its new state
    awaited: str  # what ``done`` waits for, to name it at the deadline
    describe: Callable[[], str]  # what happened, once done


@dataclass(frozen=True)
class Phase:
    name: str
    at: float  # time.monotonic() of its event
    detail: str = ""


def standard_steps(rd: Path, topo: HATopology, timeout: float) -> list[Step]:
    """Stop the balancer holding the VIP; kill -9 the primary; bring both back."""
    holder = vip_holder(rd)
    if holder is None:
        raise LabError("no balancer holds the VIP: the HA lab is not healthy")
    other = next(n for n in topo.lbs if n != holder)
    old = primary(rd)

    def promoted() -> bool:
        if primary(rd) == old:
            return False
        with topo.client() as r:
            return str(r.execute_command("ROLE")[0]) == "master"

    def bring_back() -> None:
        start_lb(holder, rd)
        restart_node(old, rd, timeout)

    def rejoined() -> bool:
        info = status(rd)
        return info["roles"].get(old) == "slave" and all(info["processes"].values())

    return [
        Step(f"stop {holder} (VIP moves)", lambda: stop_lb(holder, rd),
             lambda: vip_holders(rd) == [other], f"the VIP on {other}",
             lambda: f"VIP {topo.vip} moved from {holder} to {vip_holder(rd)}"),
        Step(f"kill -9 primary {old}", lambda: kill_primary(rd), promoted,
             "a new primary through the VIP",
             lambda: f"Sentinel promoted {primary(rd)} (was {old})"),
        Step(f"bring back {holder} + {old}", bring_back, rejoined,
             f"{old} as a replica and {holder} running",
             lambda: (f"{holder} back as backup (VIP stays on {vip_holder(rd)}); "
                      f"{old} rejoined as a replica of {primary(rd)}")),
    ]


async def arun(
    *,
    rate: float = 10.0,
    agents: int = 20,
    handle_s: float = 0.3,
    contacts: bool = True,
    writes: bool = True,
    write_rate: float = 200.0,
    warmup_s: float = 3.0,
    settle_s: float = SETTLE_S,
    event_timeout: float = 45.0,
    run_dir: Path | str | None = None,
    echo: Callable[[str], None] | None = None,
) -> DrillReport:
    """Run the drill against the running HA lab (see the package docstring): ``contacts``
    through the API (it must run: ./start.sh --ha), ``writes`` straight to Redis."""
    say = echo or (lambda _: None)
    rd, _, topo = require_state(run_dir)
    pids_before = app_pids(rd)
    if contacts and not any(k.startswith("api") for k in pids_before):
        raise LabError("no API replicas run in the HA lab: start it with ./start.sh --ha "
                       "(or drill the bare topology without contacts)")
    center = f"drill-{uuid.uuid4().hex[:8]}"
    traffic = (ContactTraffic(topo.api_url, center, rate, agents, handle_s, lab.api_key())
               if contacts else None)
    writer = (RedisWriter(topo, f"lab:drill:{center}", write_rate, wait_replicas=True)
              if writes else None)
    probes: list[list[Attempt]] = [p.attempts for p in (traffic, writer) if p is not None]
    phases: list[Phase] = []
    kept_writes: set[str] = set()
    check, broken = ContactCheck({}, 0, 0), []
    hold = contextlib.ExitStack()
    try:
        # The drill kills on purpose, measures the outage and brings back itself: the
        # supervisor of ./start.sh --ha restarts nothing meanwhile (a restart of its own
        # would shorten the outage measured, or race the bring-back).
        if await asyncio.to_thread(hold.enter_context,
                                   holding(rd, f"lab.drill {center}", LIMIT_S)):
            say("  the lab's supervisor holds off until the drill ends")
        if traffic is not None:
            await traffic.setup()
            traffic.start()
        if writer is not None:
            writer.start()
        phases.append(Phase(BASELINE, time.monotonic()))
        await asyncio.sleep(warmup_s)
        for step in standard_steps(rd, topo, event_timeout):
            phases.append(await _take(step, probes, settle_s, event_timeout, say))
        if writer is not None:
            writer.stop()
            kept_writes = await asyncio.to_thread(writer.kept)
        if traffic is not None:
            await traffic.stop(RETRY_FOR)
            say("  checking every contact in Redis ...")
            check = await asyncio.to_thread(check_contacts, topo, center, list(traffic.sent))
            say("  checking one contact per agent, from the agents' and the contacts' side ...")
            broken = await invariant_violations(topo, center)
    finally:
        if writer is not None:
            writer.stop()
        if traffic is not None:
            await traffic.close()
        hold.close()

    def phase_figures(attempts: list[Attempt], sent: Iterable[Sent], kept: set[str]
                      ) -> list[Figures]:
        ends = [p.at for p in phases[1:]] + [math.inf]
        return [figures(attempts, sent, kept, phase.at, end)
                for phase, end in zip(phases, ends, strict=True)]

    contact_figures = (phase_figures(traffic.attempts, traffic.sent.values(), check.kept())
                       if traffic is not None else [None] * len(phases))
    write_figures = (phase_figures(writer.attempts, writer.sent, kept_writes)
                     if writer is not None else [None] * len(phases))
    pids_after = app_pids(rd)
    components = {
        name: "survived" if pids_after.get(name) == pid and pid_alive(pid) else "RESTARTED OR DEAD"
        for name, pid in sorted(pids_before.items())
    }
    info = status(rd)
    sent = traffic.sent if traffic is not None else {}
    return DrillReport(
        center=center, rate=rate, agents=agents, write_rate=write_rate,
        events=[EventResult(p.name, p.detail, c, w)
                for p, c, w in zip(phases, contact_figures, write_figures, strict=True)],
        duplicates=check.duplicates,
        unacked_created=sum(1 for cid, s in sent.items()
                            if s.acked_at is None and check.states.get(cid) is not None),
        components_survived=all(v == "survived" for v in components.values()),
        components=components,
        final_roles=dict(info["roles"]),
        vip_holder=", ".join(info["vip_holder"]) or None,
        notes=sorted(set(traffic.gave_up.values()))[:10] if traffic is not None else [],
        violations=broken,
        write_errors=list(writer.errors) if writer is not None else [],
    )


async def _take(step: Step, probes: list[list[Attempt]], settle_s: float, timeout: float,
                say: Callable[[str], None]) -> Phase:
    """The step's action, then wait until the lab reached its new state and every probe's
    clients succeed again (for ``settle_s``)."""
    at = time.monotonic()
    say(f"  {step.name} ...")
    await asyncio.to_thread(step.action)
    await asyncio.to_thread(wait_until, step.done, timeout, step.awaited, interval=0.1)

    def recovered() -> bool:
        now = time.monotonic()
        return all(recovered_since(attempts, at, settle_s, now) for attempts in probes)

    await asyncio.to_thread(wait_until, recovered, timeout,
                            f"clients to succeed again after {step.name}", interval=0.1)
    detail = await asyncio.to_thread(step.describe)
    say(f"  {step.name}: {detail}")
    return Phase(step.name, at, detail)


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

    thread = threading.Thread(target=target, name="lab-drill", daemon=True)
    thread.start()
    thread.join(timeout=LIMIT_S)
    if thread.is_alive():
        raise LabError(f"the drill did not finish in {LIMIT_S:.0f} s")
    if "error" in box:
        raise box["error"]
    report: DrillReport = box["report"]
    return report
