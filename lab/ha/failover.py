"""Failures on purpose: kill the primary, restart a node, stop and start a balancer."""

from __future__ import annotations

import signal
from pathlib import Path

from . import procs
from .layout import (
    _info_replication,
    _load_state,
    _require_state,
)
from .net import LabError
from .roles import (
    primary,
)
from .services import (
    _pid,
    _start_haproxy,
    _start_keepalived,
    _start_redis,
    _stop_process,
)


def kill_primary(run_dir: Path | str | None = None) -> str:
    """kill -9 the current primary's redis-server; returns the node's name."""
    rd, state, _ = _require_state(run_dir)
    name = primary(rd)
    pid = _pid(state, name, "redis")
    if not pid or not procs.alive(pid):
        raise LabError(f"the primary {name} has no running redis-server")
    procs.signal_pid(pid, signal.SIGKILL)
    procs.wait_until(lambda: not procs.alive(pid), 5, what=f"redis on {name} to die")
    return name


def stop_node(name: str, run_dir: Path | str | None = None, sig: int = signal.SIGKILL) -> None:
    """Stop a node's redis-server (kill -9 by default); its Sentinel keeps running."""
    _, state, _ = _require_state(run_dir)
    pid = _pid(state, name, "redis")
    if pid and procs.alive(pid):
        procs.signal_pid(pid, sig)
        procs.wait_until(lambda: not procs.alive(pid), 10, what=f"redis on {name} to stop")


def restart_node(name: str, run_dir: Path | str | None = None, timeout: float = 40.0) -> str:
    """(Re)start a node's redis-server from its own config file (which Sentinel may have
    rewritten) and wait until it is a replica of the current primary with its link up.
    Returns the primary's name."""
    rd, state, topo = _require_state(run_dir)
    stop_node(name, rd)
    state = _load_state(rd) or state
    _start_redis(rd, state, topo, name)

    def is_synced_replica() -> bool:
        info = _info_replication(topo, name)
        current = primary(rd)
        return (
            info.get("role") == "slave"
            and info.get("master_link_status") == "up"
            and info.get("master_host") == topo.nodes.get(current)
            and current != name
        )

    procs.wait_until(
        is_synced_replica,
        timeout,
        interval=0.25,
        what=f"{name} to rejoin as a replica of the primary",
    )
    return primary(rd)


def stop_lb(name: str, run_dir: Path | str | None = None) -> None:
    """Stop a balancer: keepalived (it hands the VIP over) and its HAProxy."""
    rd, state, topo = _require_state(run_dir)
    if name not in topo.lbs:
        raise LabError(f"no balancer {name} (have {list(topo.lbs)})")
    _stop_process(rd, state, name, "keepalived")
    _stop_process(rd, state, name, "haproxy")


def kill_haproxy(name: str, run_dir: Path | str | None = None) -> None:
    """kill -9 one balancer's HAProxy only: its keepalived notices by pid file and drops the VIP."""
    _, state, _ = _require_state(run_dir)
    pid = _pid(state, name, "haproxy")
    if pid and procs.alive(pid):
        procs.signal_pid(pid, signal.SIGKILL)
        procs.wait_until(lambda: not procs.alive(pid), 5, what=f"HAProxy on {name} to die")


def start_lb(name: str, run_dir: Path | str | None = None, timeout: float = 15.0) -> None:
    """Start a balancer's HAProxy and keepalived (whichever is not running).

    With ``nopreempt`` semantics (both BACKUP), a returning balancer does not take the VIP
    back: it stays the backup until the holder fails."""
    rd, state, topo = _require_state(run_dir)
    if name not in topo.lbs:
        raise LabError(f"no balancer {name} (have {list(topo.lbs)})")
    if not procs.alive(_pid(state, name, "haproxy")):
        _start_haproxy(rd, state, name)
    if not procs.alive(_pid(state, name, "keepalived")):
        _start_keepalived(rd, state, name)
    pid = _pid(state, name, "keepalived")
    procs.wait_until(lambda: procs.alive(pid), timeout, what=f"keepalived on {name}")
