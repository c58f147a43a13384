"""Hooks for the application: run API replicas and dispatchers inside the lab."""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from lab.errors import LabError
from lab.processes import StartError, pid_alive, wait_until

from . import net
from .layout import DISPATCHER_BASE, REPO
from .procs import MACHINE, start_process, stop_process
from .state import load_state, require_state, resolve_run_dir, save_state

APP_ROLE = "app"  # the role of API replicas and dispatchers in the state file

CommandFactory = Callable[..., Sequence[str]]


def dispatcher_address(i: int) -> str:
    """Dispatcher host disp<i>'s address (disp1: 192.168.20.31, disp2: .32, ...)."""
    return f"192.168.20.{DISPATCHER_BASE + i - 1}"


def run_in_namespace(
    host: str,
    role: str,
    cmd: Sequence[str],
    *,
    address: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    run_dir: Path | str | None = None,
) -> int:
    """Run ``cmd`` in namespace ``acd-<host>`` (created with ``address`` when missing) with
    the lab's environment (REDIS_URL, API_URL) plus ``env``. Its pid file
    and log are ``<run dir>/<host>/<role>.pid|.log``; stop() ends it. Returns the pid."""
    rd, state, topo = require_state(run_dir)
    if host != MACHINE and host not in state["hosts"]:
        if address is None:
            raise LabError(f"host {host} does not exist: give its address")
        state["hosts"].append(host)
        save_state(rd, state)
        net.create_host(host, address)
    full_env = {**topo.env(), "LAB_HA_HOST": host, **(env or {})}
    return start_process(rd, state, host, role, cmd, env=full_env, cwd=Path(cwd) if cwd else REPO)


def stop_in_namespace(host: str, role: str, run_dir: Path | str | None = None) -> None:
    rd, state, _ = require_state(run_dir)
    stop_process(rd, state, host, role)


def app_pids(run_dir: Path | str | None = None) -> dict[str, int]:
    """Host -> pid of every application process the state file records (alive or not)."""
    state = load_state(resolve_run_dir(run_dir)) or {"processes": {}}
    suffix = f"/{APP_ROLE}"
    return {
        key.removesuffix(suffix): int(entry["pid"])
        for key, entry in state["processes"].items()
        if key.endswith(suffix)
    }


def start_api_replicas(
    cmd_factory: CommandFactory,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    run_dir: Path | str | None = None,
) -> list[int]:
    """Start one API process per backend of HAProxy's :8000 frontend.

    ``cmd_factory(name, address, port)`` returns the command, e.g.
    ``[venv_python, "-m", "uvicorn", "acd.api.app:app", "--host", address, "--port", str(port)]``.
    Waits until each one accepts TCP connections on its port."""
    rd, _, topo = require_state(run_dir)
    pids = []
    for name, addr, port in topo.api_servers:
        host = MACHINE if addr == topo.host_ip else name
        pids.append(
            run_in_namespace(host, APP_ROLE, cmd_factory(name, addr, port), env=env, run_dir=rd)
        )
    for (name, addr, port), pid in zip(topo.api_servers, pids, strict=True):
        wait_until(
            lambda a=addr, p=port, i=pid: _tcp_open(a, p, i),  # type: ignore[misc]
            timeout,
            f"API replica {name} to listen on {addr}:{port}",
        )
    return pids


def start_dispatchers(
    cmd_factory: CommandFactory,
    count: int = 2,
    *,
    env: Mapping[str, str] | None = None,
    run_dir: Path | str | None = None,
) -> list[int]:
    """Start ``count`` dispatchers, each in its namespace dispN (192.168.20.31, .32, ...).

    ``cmd_factory(name, address)`` returns the command, e.g.
    ``[venv_python, "-m", "acd.dispatcher"]``; REDIS_URL points at the VIP."""
    rd, _, _ = require_state(run_dir)
    pids = []
    for i in range(1, count + 1):
        name, addr = f"disp{i}", dispatcher_address(i)
        pids.append(
            run_in_namespace(
                name,
                APP_ROLE,
                cmd_factory(name, addr),
                address=addr,
                env={"DISPATCHER_NAME": name, **(env or {})},
                run_dir=rd,
            )
        )
    for pid in pids:
        wait_until(lambda p=pid: pid_alive(p), 2, f"dispatcher pid {pid} to start")  # type: ignore[misc]
    return pids


def _tcp_open(addr: str, port: int, pid: int) -> bool:
    if not pid_alive(pid):
        raise StartError(f"pid {pid} exited: see its log in the run dir")
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((addr, port)) == 0
