"""Processes of the HA lab: each runs inside a host's network namespace (or on the machine
itself), in the foreground in a session of its own, and is recorded in the state file
(host, role, pid, command, environment, log), so that stop() ends exactly what the lab
started and the supervisor (lab.ha.supervised) starts a dead one again as it was.
Starting, liveness and stopping are lab.processes'."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.processes import cmdline, pid_alive, spawn, stop_pids

from . import net
from .state import State, load_state, save_state

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
    return _launch(run_dir, state, host, role, cmd, env, cwd).pid


def _launch(
    run_dir: Path,
    state: State,
    host: str,
    role: str,
    cmd: Sequence[str],
    env: Mapping[str, str] | None,
    cwd: Path | None,
) -> subprocess.Popen[bytes]:
    log = run_dir / host / f"{role}.log"
    pid_file = run_dir / host / f"{role}.pid"
    argv = list(cmd) if host == MACHINE else net.in_namespace(host, cmd)
    process = spawn(argv, log=log, pid_file=pid_file, env=env, cwd=cwd)
    state["processes"][process_key(host, role)] = {
        "host": host,
        "role": role,
        "pid": process.pid,
        "cmd": list(cmd),
        # what it was started with, to start it again the same way (the state file is
        # the password's home already: mode 0600)
        "env": dict(env) if env else None,
        "cwd": str(cwd) if cwd else None,
        "log": str(log),
        "pidfile": str(pid_file),
    }
    save_state(run_dir, state)
    return process


def relaunch(run_dir: Path, host: str, role: str) -> subprocess.Popen[bytes]:
    """Start the dead ``role`` on ``host`` again exactly as the state file records it
    (command, environment, working directory, log), without waiting for it to be ready:
    the supervisor's restart. LabError when it is not recorded or still runs."""
    state = load_state(run_dir)
    entry = state["processes"].get(process_key(host, role)) if state else None
    if state is None or entry is None:
        raise LabError(f"{process_key(host, role)} is not recorded in {run_dir}")
    if pid_alive(int(entry["pid"])):
        raise LabError(f"{process_key(host, role)} still runs (pid {entry['pid']})")
    cwd = entry.get("cwd")
    return _launch(run_dir, state, host, role, entry["cmd"], entry.get("env"),
                   Path(cwd) if cwd else None)


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
