"""Processes of the HA lab: each runs inside a host's network namespace (or on the machine
itself), in the foreground in a session of its own, and is recorded in the state file
(host, role, pid, command, log), so that stop() ends exactly what the lab started.
Starting, liveness and stopping are lab.processes'."""

from __future__ import annotations

import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.processes import cmdline, pid_alive, spawn, stop_pids

from . import net
from .state import State, save_state

MACHINE = "host"  # the host name of this machine itself (no namespace)


def process_key(host: str, role: str) -> str:
    return f"{host}/{role}"


def recorded_pid(state: State, host: str, role: str) -> int | None:
    """The pid the state file records for ``role`` on ``host`` (alive or not)."""
    entry = state["processes"].get(process_key(host, role))
    return int(entry["pid"]) if entry else None


def is_running(state: State, host: str, role: str) -> bool:
    return pid_alive(recorded_pid(state, host, role))


def start_process(
    run_dir: Path,
    state: State,
    host: str,
    role: str,
    cmd: Sequence[str],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start ``cmd`` as ``role`` on ``host`` (inside namespace acd-<host>, or on the
    machine when host is MACHINE), logging to ``<run dir>/<host>/<role>.log``; record it
    in the state file. Returns its pid."""
    key = process_key(host, role)
    old = recorded_pid(state, host, role)
    if pid_alive(old):
        raise LabError(f"{key} already runs (pid {old})")
    log = run_dir / host / f"{role}.log"
    pid_file = run_dir / host / f"{role}.pid"
    argv = list(cmd) if host == MACHINE else net.in_namespace(host, cmd)
    pid = spawn(argv, log=log, pid_file=pid_file, env=env, cwd=cwd).pid
    state["processes"][key] = {
        "host": host,
        "role": role,
        "pid": pid,
        "cmd": list(cmd),
        "log": str(log),
        "pidfile": str(pid_file),
    }
    save_state(run_dir, state)
    return pid


def stop_process(
    run_dir: Path, state: State, host: str, role: str, sig: int = signal.SIGTERM
) -> None:
    """Stop ``role`` on ``host`` (``sig``, SIGKILL after 5 s) and forget it."""
    pid = recorded_pid(state, host, role)
    if pid:
        stop_pids([pid], 5.0, sig=sig)
    state["processes"].pop(process_key(host, role), None)
    save_state(run_dir, state)


def is_ours(entry: Mapping[str, Any]) -> bool:
    """The recorded process still runs the command we started (its pid was not recycled)."""
    line = cmdline(int(entry["pid"]))
    return bool(line) and Path(entry["cmd"][0]).name in line
