"""Failures on purpose: kill the primary, restart a node, stop and start a balancer."""

from __future__ import annotations

import signal
from pathlib import Path

from lab.errors import LabError
from lab.processes import pid_alive, stop_pids, wait_until

from .components import start_haproxy, start_keepalived, start_redis
from .layout import replication_info
from .procs import is_running, recorded_pid, stop_process
from .roles import primary
from .state import load_state, require_state


def kill_primary(run_dir: Path | str | None = None) -> str:
    """kill -9 the current primary's redis-server; returns the node's name."""
    rd, state, _ = require_state(run_dir)
    name = primary(rd)
    pid = recorded_pid(state, name, "redis")
    if pid is None or not pid_alive(pid):
        raise LabError(f"the primary {name} has no running redis-server")
    stop_pids([pid], 5, sig=signal.SIGKILL)
    return name


def stop_node(name: str, run_dir: Path | str | None = None, sig: int = signal.SIGKILL) -> None:
    """Stop a node's redis-server (kill -9 by default); its Sentinel keeps running."""
    _, state, _ = require_state(run_dir)
    pid = recorded_pid(state, name, "redis")
    if pid:
        stop_pids([pid], 10, sig=sig)


def restart_node(name: str, run_dir: Path | str | None = None, timeout: float = 40.0) -> str:
    """(Re)start a node's redis-server from its own config file (which Sentinel may have
    rewritten) and wait until it is a replica of the current primary with its link up.
    Returns the primary's name."""
    rd, state, _ = require_state(run_dir)
    stop_node(name, rd)
    state = load_state(rd) or state
    start_redis(rd, state, name)
    wait_until(lambda: rejoined(name, rd), timeout,
               f"{name} to rejoin as a replica of the primary", interval=0.25)
    return primary(rd)


def rejoined(name: str, run_dir: Path | str | None = None) -> bool:
    """Node ``name`` is a replica of the primary the Sentinels name, its link up."""
    rd, _, topo = require_state(run_dir)
    info = replication_info(topo, name)
    current = primary(rd)
    return (
        info.get("role") == "slave"
        and info.get("master_link_status") == "up"
        and info.get("master_host") == topo.nodes.get(current)
        and current != name
    )


def stop_lb(name: str, run_dir: Path | str | None = None) -> None:
    """Stop a balancer: keepalived (it hands the VIP over) and its HAProxy."""
    rd, state, topo = require_state(run_dir)
    if name not in topo.lbs:
        raise LabError(f"no balancer {name} (have {list(topo.lbs)})")
    stop_process(rd, state, name, "keepalived")
    stop_process(rd, state, name, "haproxy")


def kill_haproxy(name: str, run_dir: Path | str | None = None) -> None:
    """kill -9 one balancer's HAProxy only: its keepalived notices by pid file and drops the VIP."""
    _, state, _ = require_state(run_dir)
    pid = recorded_pid(state, name, "haproxy")
    if pid:
        stop_pids([pid], 5, sig=signal.SIGKILL)


def start_lb(name: str, run_dir: Path | str | None = None, timeout: float = 15.0) -> None:
    """Start a balancer's HAProxy and keepalived (whichever is not running).

    With ``nopreempt`` semantics (both BACKUP), a returning balancer does not take the VIP
    back: it stays the backup until the holder fails."""
    rd, state, topo = require_state(run_dir)
    if name not in topo.lbs:
        raise LabError(f"no balancer {name} (have {list(topo.lbs)})")
    if not is_running(state, name, "haproxy"):
        start_haproxy(rd, state, name)
    if not is_running(state, name, "keepalived"):
        start_keepalived(rd, state, name)
    wait_until(lambda: is_running(state, name, "keepalived"), timeout, f"keepalived on {name}")
