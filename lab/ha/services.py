"""Start and stop the HA lab: namespaces, Redis + Sentinel, HAProxy + keepalived."""

from __future__ import annotations

import secrets
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from lab.binaries import redis_server, rejson_module
from lab.errors import LabError
from lab.processes import cmdline, pid_alive, stop_pids, wait_until
from lab.stack import supervisor_file

from . import net
from .components import start_haproxy, start_keepalived, start_redis, start_sentinel
from .configs import write_configs
from .layout import (
    DEFAULT_API_SERVERS,
    NODE_PORT,
    PASSWORD_CHARS,
    HATopology,
    check_platform,
    ensure_packages,
    redis_client,
    replication_info,
    sentinel_client,
)
from .procs import is_ours
from .roles import format_status, status
from .state import (
    State,
    clear_active,
    load_state,
    resolve_run_dir,
    save_state,
    set_active,
    state_path,
)

# --------------------------------------------------------------------------- start / stop


def start(
    password: str | None = None,
    *,
    passwords: Mapping[str, str] | None = None,
    run_dir: Path | str | None = None,
    api_servers: Sequence[tuple[str, str, int]] | None = None,
    down_after_ms: int = 1000,
    failover_timeout_ms: int = 3000,
    timeout: float = 60.0,
    learners: Mapping[str, str] | None = None,
) -> HATopology:
    """Start the HA environment (or return the one already running) and wait until it serves.

    ``api_servers``: the REST API backends of HAProxy's :8000 frontend as
    ``(name, address, port)``; each name gets a namespace ``acd-<name>`` unless its address
    is the machine's own (192.168.20.1). Start the processes with ``start_api_replicas``.
    ``password``: the admin's; ``passwords``: each role's (lab.redis_users; a role not in
    it gets ``password``). ``learners``: workshop learners (name -> password) every node
    gets as users (lab.workshop).
    """
    why = check_platform()
    if why:
        raise LabError(why)
    rd = resolve_run_dir(run_dir)
    existing = load_state(rd)
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
    roles = dict(passwords or {})
    if password is None:
        password = roles.get("admin") or secrets.token_hex(16)
    for role, value in {"admin": password, **roles}.items():
        if not value or not set(value) <= PASSWORD_CHARS:
            raise LabError(f"password of the Redis user {role}: use letters, digits, '_' "
                           "and '-' only (it goes into config files)")
    users = net.subnet_users()
    if users or net.link_exists(net.BRIDGE):
        what = "; ".join(users) or f"interface {net.BRIDGE} exists"
        raise LabError(
            f"refusing to start: {net.SUBNET} is already in use on this machine ({what}). "
            "Free it, or stop the other lab (python -m lab.ha stop --run-dir ...)"
        )
    ensure_packages()
    redis_server()  # fail early with a clear message when missing
    module = rejson_module()

    topo = HATopology(
        run_dir=rd,
        password=password,
        passwords=roles,
        api_servers=list(api_servers) if api_servers is not None else list(DEFAULT_API_SERVERS),
        down_after_ms=down_after_ms,
        failover_timeout_ms=failover_timeout_ms,
    )
    # Fresh per-host directories (data of an earlier run would confuse Sentinel).
    rd.mkdir(parents=True, exist_ok=True)
    for host in [*topo.nodes, *topo.lbs, *(s[0] for s in topo.api_servers)]:
        shutil.rmtree(rd / host, ignore_errors=True)
    state: State = {
        "topology": topo.to_dict(),
        "bridge": None,
        "hosts": [],
        "processes": {},
        "started_at": time.time(),
    }
    save_state(rd, state)
    set_active(rd)
    try:
        net.create_bridge()
        state["bridge"] = net.BRIDGE
        save_state(rd, state)
        hosts = {**topo.nodes, **topo.lbs}
        hosts.update({n: a for n, a, _ in topo.api_servers if a != topo.host_ip})
        for host, addr in hosts.items():
            state["hosts"].append(host)
            save_state(rd, state)
            net.create_host(host, addr)
        write_configs(topo, module, learners)
        _bring_up(rd, state, topo, timeout)
    except BaseException:
        stop(rd)
        raise
    return topo


def _bring_up(rd: Path, state: State, topo: HATopology, timeout: float) -> None:
    deadline = time.monotonic() + timeout

    def left() -> float:
        return max(1.0, deadline - time.monotonic())

    for name in topo.nodes:
        start_redis(rd, state, name)
    for name in topo.nodes:
        wait_until(lambda n=name: _pings(topo, n), left(), f"redis on {name} to answer PING")  # type: ignore[misc]
    replicas = list(topo.nodes)[1:]
    wait_until(
        lambda: all(replication_info(topo, n).get("master_link_status") == "up" for n in replicas),
        left(),
        "both replicas to sync with the primary",
    )
    for name in topo.nodes:
        start_sentinel(rd, state, name)
    wait_until(
        lambda: _sentinels_ready(topo),
        left(),
        "every Sentinel to see 2 replicas and 2 other Sentinels",
        interval=0.25,
    )
    names = list(topo.lbs)
    for name in names:
        start_haproxy(rd, state, name)
    # keepalived on lb1 first so that it takes the VIP (nopreempt keeps it where it is).
    start_keepalived(rd, state, names[0])
    wait_until(
        lambda: net.has_address(names[0], topo.vip),
        left(),
        f"the VIP {topo.vip} on {names[0]}",
        interval=0.2,
    )
    start_keepalived(rd, state, names[1])
    wait_until(
        lambda: _vip_role(topo) == "master",
        left(),
        "role:master through the VIP",
        interval=0.2,
    )


def _pings(topo: HATopology, name: str) -> bool:
    with redis_client(topo.nodes[name], NODE_PORT, topo.password) as r:
        return bool(r.ping())


def _sentinels_ready(topo: HATopology) -> bool:
    for name in topo.nodes:
        with sentinel_client(topo, name) as s:
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
    rd = resolve_run_dir(run_dir)
    state = load_state(rd)
    if state is None:
        return []
    removed: list[str] = []
    removed += _stop_supervisor(rd)
    # keepalived first (it releases the VIP), then the rest, each group in parallel (a
    # dispatcher may take seconds to notice SIGTERM: it blocks reading its streams).
    entries = list(state["processes"].values())
    for group in (
        [e for e in entries if e["role"] == "keepalived"],
        [e for e in entries if e["role"] != "keepalived"],
    ):
        ours = [e for e in group if pid_alive(e["pid"]) and is_ours(e)]
        stop_pids([e["pid"] for e in ours], timeout=8)
        removed += [f"process {e['host']}/{e['role']} (pid {e['pid']})" for e in ours]
    for host in state.get("hosts", []):
        # anything else still running inside a namespace the lab made is the lab's too
        if net.ns_name(host) in net.namespaces():
            for pid in net.ns_pids(host):
                stop_pids([pid], timeout=3)
                removed.append(f"process pid {pid} in {net.ns_name(host)}")
        net.delete_host(host)
        removed.append(f"namespace {net.ns_name(host)}")
    if state.get("bridge"):
        net.delete_bridge()
        removed.append(f"bridge {state['bridge']}")
    state_path(rd).unlink(missing_ok=True)
    clear_active(rd)
    return removed


def _stop_supervisor(rd: Path) -> list[str]:
    """The supervisor of ./start.sh --ha (lab.ha.supervised) first: it would restart what
    this stops."""
    pid_file = supervisor_file(rd, "pid")
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        return []
    pid_file.unlink(missing_ok=True)
    if not pid_alive(pid) or "lab.supervisor" not in cmdline(pid):
        return []
    stop_pids([pid], timeout=10, group=True)
    return [f"process supervisor (pid {pid})"]
