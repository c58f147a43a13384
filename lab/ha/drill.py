"""Measure a failure: client outage through the VIP and acknowledged writes lost.

A writer pushes sequence numbers to a list through the VIP, one RPUSH at a time, on a
fresh connection after every error. A write counts as acknowledged when Redis replied
(``wait_replicas=True``: only when WAIT also confirmed one replica). After the failure
and recovery it reads the list back: every acknowledged number must be there.
The loop is bounded in count and time, and talks only to the lab's VIP.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from lab.errors import LabError

from . import failover, roles
from . import state as lab_state


@dataclass
class DrillResult:
    event: str
    outage_s: float  # longest time between a failed call and the next successful one
    attempts: int
    acknowledged: int
    lost: int  # acknowledged writes missing afterwards: must be 0
    failed_calls: int
    recovered: bool
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.event}: outage {self.outage_s:.2f} s, {self.acknowledged} acknowledged writes, "
            f"{self.lost} lost, {self.failed_calls} failed calls, recovered={self.recovered}"
        )


def run_drill(
    action: Callable[[], object],
    *,
    event: str = "failure",
    warmup_s: float = 1.0,
    settle_s: float = 2.0,
    deadline_s: float = 30.0,
    max_writes: int = 200_000,
    wait_replicas: bool = False,
    run_dir: Path | str | None = None,
) -> DrillResult:
    """Write through the VIP, call ``action`` after ``warmup_s``, keep writing until writes
    have succeeded again for ``settle_s`` (or ``deadline_s`` passed), then verify."""
    topo = lab_state.topology(run_dir)
    key = f"lab:ha:drill:{uuid.uuid4().hex[:8]}"
    acked: list[int] = []
    errors: list[str] = []
    stop = threading.Event()
    state: dict[str, Any] = {
        "attempts": 0,
        "failed": 0,
        "outage": 0.0,
        "first_fail": None,
        "last_ok": None,
        "action_at": None,
        "recovered_at": None,
    }

    def client() -> redis.Redis:
        # No retries inside redis-py: every error must be seen (and counted) here.
        return topo.client(
            socket_timeout=0.5, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
        )

    def writer() -> None:
        r = client()
        seq = 0
        start = time.monotonic()
        while (
            not stop.is_set()
            and seq < max_writes
            and time.monotonic() - start < deadline_s + warmup_s
        ):
            seq += 1
            state["attempts"] += 1
            try:
                r.rpush(key, seq)
                confirmed = r.execute_command("WAIT", 1, 500) if wait_replicas else 1  # type: ignore[no-untyped-call]
                if confirmed < 1:
                    raise redis.RedisError("WAIT: no replica confirmed")
            except (redis.RedisError, OSError) as exc:
                state["failed"] += 1
                if len(errors) < 20:
                    errors.append(f"{time.monotonic() - start:.2f}s {type(exc).__name__}: {exc}")
                if state["first_fail"] is None:
                    state["first_fail"] = time.monotonic()
                r.close()
                r = client()
                time.sleep(0.02)
                continue
            acked.append(seq)
            now = time.monotonic()
            if state["first_fail"] is not None:
                state["outage"] = max(state["outage"], now - state["first_fail"])
                state["first_fail"] = None
                state["recovered_at"] = now
            state["last_ok"] = now
        r.close()

    thread = threading.Thread(target=writer, name="lab-ha-drill-writer", daemon=True)
    thread.start()
    time.sleep(warmup_s)
    state["action_at"] = time.monotonic()
    action()
    deadline = time.monotonic() + deadline_s
    # Done when writes have succeeded without a break for settle_s after the action (and
    # after the last failure, if any).
    while time.monotonic() < deadline:
        now = time.monotonic()
        if state["first_fail"] is None and state["last_ok"] is not None:
            since = state["recovered_at"] or state["action_at"]
            if now - since >= settle_s and now - state["action_at"] >= settle_s:
                break
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=5)
    recovered = state["first_fail"] is None and state["last_ok"] is not None
    outage = state["outage"]
    if state["first_fail"] is not None:  # never recovered: outage until now
        outage = time.monotonic() - state["first_fail"]

    present: set[int] = set()
    lost = len(acked)
    verify_deadline = time.monotonic() + 15
    while time.monotonic() < verify_deadline:
        try:
            with client() as r:
                present = {int(x) for x in r.lrange(key, 0, -1)}
                r.delete(key)
            lost = len(set(acked) - present)
            break
        except (redis.RedisError, OSError) as exc:
            errors.append(f"verify: {exc}")
            time.sleep(0.25)
    return DrillResult(
        event=event,
        outage_s=round(outage, 3),
        attempts=state["attempts"],
        acknowledged=len(acked),
        lost=lost,
        failed_calls=state["failed"],
        recovered=recovered,
        errors=errors,
    )


def drill_kill_primary(**kwargs: Any) -> DrillResult:
    """kill -9 the primary while writing through the VIP."""
    return run_drill(
        lambda: failover.kill_primary(kwargs.get("run_dir")), event="kill -9 primary", **kwargs
    )


def drill_stop_lb(name: str | None = None, **kwargs: Any) -> DrillResult:
    """Stop the balancer holding the VIP (or ``name``) while writing through the VIP."""
    rd = kwargs.get("run_dir")
    target = name or roles.vip_holder(rd)
    if target is None:
        raise LabError("no balancer holds the VIP")
    return run_drill(lambda: failover.stop_lb(target, rd), event=f"stop {target}", **kwargs)
