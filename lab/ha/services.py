"""Start and stop the HA lab: namespaces, Redis + Sentinel, HAProxy + keepalived."""

from __future__ import annotations

import secrets
import shutil
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from . import net, procs
from .configs import (
    write_configs,
)
from .layout import (
    DEFAULT_API_SERVERS,
    NODE_PORT,
    PASSWORD_CHARS,
    REDIS_PORT,
    HATopology,
    _client,
    _info_replication,
    _load_state,
    _resolve_run_dir,
    _save_state,
    _sentinel,
    _state_path,
    _which,
    check_platform,
    clear_active,
    ensure_packages,
    set_active,
)
from .net import LabError
from .roles import (
    format_status,
    status,
)

# --------------------------------------------------------------------------- processes


def _proc_key(host: str, role: str) -> str:
    return f"{host}/{role}"


def _start_process(
    rd: Path,
    state: dict[str, Any],
    host: str,
    role: str,
    cmd: Sequence[str],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    key = _proc_key(host, role)
    old = state["processes"].get(key)
    if old and procs.alive(old["pid"]):
        raise LabError(f"{key} already runs (pid {old['pid']})")
    log = rd / host / f"{role}.log"
    pidfile = rd / host / f"{role}.pid"
    pid = procs.spawn(
        host if host != "host" else None, cmd, log=log, pidfile=pidfile, env=env, cwd=cwd
    )
    state["processes"][key] = {
        "host": host,
        "role": role,
        "pid": pid,
        "cmd": list(cmd),
        "log": str(log),
        "pidfile": str(pidfile),
    }
    _save_state(rd, state)
    return pid


def _pid(state: dict[str, Any], host: str, role: str) -> int | None:
    entry = state["processes"].get(_proc_key(host, role))
    return entry["pid"] if entry else None


def _stop_process(
    rd: Path, state: dict[str, Any], host: str, role: str, sig: int = signal.SIGTERM
) -> None:
    pid = _pid(state, host, role)
    if pid and procs.alive(pid):
        procs.terminate(pid, sig=sig)
    state["processes"].pop(_proc_key(host, role), None)
    _save_state(rd, state)


def _start_redis(rd: Path, state: dict[str, Any], topo: HATopology, name: str) -> None:
    from lab.binaries import redis_server

    _start_process(rd, state, name, "redis", [str(redis_server()), str(rd / name / "redis.conf")])


def _start_sentinel(rd: Path, state: dict[str, Any], topo: HATopology, name: str) -> None:
    from lab.binaries import redis_server

    _start_process(
        rd,
        state,
        name,
        "sentinel",
        [str(redis_server()), str(rd / name / "sentinel.conf"), "--sentinel"],
    )


def _start_haproxy(rd: Path, state: dict[str, Any], name: str) -> None:
    cfg = rd / name / "haproxy.cfg"
    net.run([_which("haproxy") or "haproxy", "-c", "-q", "-f", str(cfg)])
    _start_process(
        rd, state, name, "haproxy", [_which("haproxy") or "haproxy", "-db", "-f", str(cfg)]
    )
    pid = _pid(state, name, "haproxy")
    procs.wait_until(
        lambda: procs.alive(pid) and _listening(name, REDIS_PORT),
        10,
        what=f"HAProxy on {name} to listen",
    )


def _listening(host: str, port: int) -> bool:
    out = net.run(
        ["ip", "netns", "exec", net.ns_name(host), "ss", "-Hltn", f"sport = :{port}"], check=False
    )
    return bool(out.strip())


def _start_keepalived(rd: Path, state: dict[str, Any], name: str) -> None:
    d = rd / name
    _start_process(
        rd,
        state,
        name,
        "keepalived",
        [
            _which("keepalived") or "keepalived",
            "-n",
            "-l",
            "-D",
            "-G",
            "-P",
            "-f",
            str(d / "keepalived.conf"),
            "-p",
            str(d / "keepalived-main.pid"),
            "-r",
            str(d / "keepalived-vrrp.pid"),
        ],
    )


# --------------------------------------------------------------------------- start / stop


def start(
    password: str | None = None,
    *,
    run_dir: Path | str | None = None,
    api_servers: Sequence[tuple[str, str, int]] | None = None,
    down_after_ms: int = 1000,
    failover_timeout_ms: int = 3000,
    timeout: float = 60.0,
) -> HATopology:
    """Start the HA environment (or return the one already running) and wait until it serves.

    ``api_servers``: the REST API backends of HAProxy's :8000 frontend as
    ``(name, address, port)``; each name gets a namespace ``acd-<name>`` unless its address
    is the machine's own (192.168.20.1). Start the processes with ``start_api_replicas``.
    """
    why = check_platform()
    if why:
        raise LabError(why)
    rd = _resolve_run_dir(run_dir).resolve()
    existing = _load_state(rd)
    if existing is not None:
        topo = HATopology.from_dict(existing["topology"])
        if net.link_exists(topo.bridge):
            set_active(rd)
            print(
                f"lab.ha: already running (run dir {rd}):\n{format_status(status(rd))}",
                file=sys.stderr,
            )
            return topo
        # a stale state file (the machine restarted): clean up what is left, then start
        stop(rd)
    if password is None:
        password = secrets.token_hex(16)
    if not password or not set(password) <= PASSWORD_CHARS:
        raise LabError(
            "password: use letters, digits, '_' and '-' only (it goes into config files)"
        )
    users = net.subnet_users()
    if users or net.link_exists(net.BRIDGE):
        what = "; ".join(users) or f"interface {net.BRIDGE} exists"
        raise LabError(
            f"refusing to start: {net.SUBNET} is already in use on this machine ({what}). "
            "Free it, or stop the other lab (python -m lab.ha stop --run-dir ...)"
        )
    ensure_packages()
    from lab.binaries import redis_server, rejson_module

    redis_server()  # fail early with a clear message when missing
    module = rejson_module()

    topo = HATopology(
        run_dir=rd,
        password=password,
        api_servers=list(api_servers) if api_servers is not None else list(DEFAULT_API_SERVERS),
        down_after_ms=down_after_ms,
        failover_timeout_ms=failover_timeout_ms,
    )
    # Fresh per-host directories (data of an earlier run would confuse Sentinel).
    rd.mkdir(parents=True, exist_ok=True)
    for host in [*topo.nodes, *topo.lbs, *(s[0] for s in topo.api_servers)]:
        shutil.rmtree(rd / host, ignore_errors=True)
    state: dict[str, Any] = {
        "topology": topo.to_dict(),
        "bridge": None,
        "hosts": [],
        "processes": {},
        "started_at": time.time(),
    }
    _save_state(rd, state)
    set_active(rd)
    try:
        net.create_bridge()
        state["bridge"] = net.BRIDGE
        _save_state(rd, state)
        hosts = {**topo.nodes, **topo.lbs}
        hosts.update({n: a for n, a, _ in topo.api_servers if a != topo.host_ip})
        for host, addr in hosts.items():
            state["hosts"].append(host)
            _save_state(rd, state)
            net.create_host(host, addr)
        write_configs(topo, module)
        _bring_up(rd, state, topo, timeout)
    except BaseException:
        stop(rd)
        raise
    return topo


def _bring_up(rd: Path, state: dict[str, Any], topo: HATopology, timeout: float) -> None:
    deadline = time.monotonic() + timeout

    def left() -> float:
        return max(1.0, deadline - time.monotonic())

    for name in topo.nodes:
        _start_redis(rd, state, topo, name)
    for name in topo.nodes:
        procs.wait_until(
            lambda n=name: _client(topo.nodes[n], NODE_PORT, topo.password).ping(),  # type: ignore[misc]
            left(),
            what=f"redis on {name} to answer PING",
        )
    replicas = list(topo.nodes)[1:]
    procs.wait_until(
        lambda: all(_info_replication(topo, n).get("master_link_status") == "up" for n in replicas),
        left(),
        what="both replicas to sync with the primary",
    )
    for name in topo.nodes:
        _start_sentinel(rd, state, topo, name)
    procs.wait_until(
        lambda: _sentinels_ready(topo),
        left(),
        interval=0.25,
        what="every Sentinel to see 2 replicas and 2 other Sentinels",
    )
    names = list(topo.lbs)
    for name in names:
        _start_haproxy(rd, state, name)
    # keepalived on lb1 first so that it takes the VIP (nopreempt keeps it where it is).
    _start_keepalived(rd, state, names[0])
    procs.wait_until(
        lambda: net.has_address(names[0], topo.vip),
        left(),
        interval=0.2,
        what=f"the VIP {topo.vip} on {names[0]}",
    )
    _start_keepalived(rd, state, names[1])
    procs.wait_until(
        lambda: _vip_role(topo) == "master",
        left(),
        interval=0.2,
        what="role:master through the VIP",
    )


def _sentinels_ready(topo: HATopology) -> bool:
    for name in topo.nodes:
        with _sentinel(topo, name) as s:
            reps = s.execute_command("SENTINEL", "REPLICAS", topo.master_name)
            sents = s.execute_command("SENTINEL", "SENTINELS", topo.master_name)
        if len(reps) < len(topo.nodes) - 1 or len(sents) < len(topo.nodes) - 1:
            return False
    return True


def _vip_role(topo: HATopology) -> str | None:
    with topo.client() as r:
        return str(r.execute_command("ROLE")[0])


def stop(run_dir: Path | str | None = None) -> list[str]:
    """Stop every process and remove every namespace and the bridge that start() created.

    Returns what was removed. Removes nothing the state file does not name.
    """
    rd = _resolve_run_dir(run_dir).resolve()
    state = _load_state(rd)
    if state is None:
        return []
    removed: list[str] = []
    # keepalived first (it releases the VIP), then the rest, each group in parallel (a
    # dispatcher may take seconds to notice SIGTERM: it blocks reading its streams).
    entries = list(state["processes"].values())
    for group in (
        [e for e in entries if e["role"] == "keepalived"],
        [e for e in entries if e["role"] != "keepalived"],
    ):
        ours = [e for e in group if procs.alive(e["pid"]) and _is_ours(e["pid"], e)]
        _terminate_all([e["pid"] for e in ours], timeout=8)
        removed += [f"process {e['host']}/{e['role']} (pid {e['pid']})" for e in ours]
    for host in state.get("hosts", []):
        # anything else still running inside a namespace the lab made is the lab's too
        if net.ns_name(host) in net.namespaces():
            for pid in net.ns_pids(host):
                procs.terminate(pid, timeout=3)
                removed.append(f"process pid {pid} in {net.ns_name(host)}")
        net.delete_host(host)
        removed.append(f"namespace {net.ns_name(host)}")
    if state.get("bridge"):
        net.delete_bridge()
        removed.append(f"bridge {state['bridge']}")
    procs.reap()
    _state_path(rd).unlink(missing_ok=True)
    clear_active(rd)
    return removed


def _terminate_all(pids: list[int], timeout: float) -> None:
    """SIGTERM every pid, wait for all of them, SIGKILL what is left at the deadline."""
    for pid in pids:
        procs.signal_pid(pid, signal.SIGTERM)
    if procs.wait_until(
        lambda: not any(procs.alive(p) for p in pids), timeout, raise_on_timeout=False
    ):
        return
    for pid in pids:
        if procs.alive(pid):
            procs.signal_pid(pid, signal.SIGKILL)
    procs.wait_until(
        lambda: not any(procs.alive(p) for p in pids), 5, what="processes to die after SIGKILL"
    )


def _is_ours(pid: int, entry: dict[str, Any]) -> bool:
    """Guard against a recycled pid: the command line must still be the one we started."""
    line = procs.cmdline(pid)
    return bool(line) and Path(entry["cmd"][0]).name in line
