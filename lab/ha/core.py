"""The HA environment: 3 Redis + 3 Sentinels, 2 HAProxy + keepalived sharing a VIP.

Each host is a Linux network namespace ``acd-<host>`` plugged into the bridge
``acdlab-br0`` (192.168.20.0/24); the machine itself is 192.168.20.1 on that bridge, so
programs on the machine reach the VIP 192.168.20.100. Nothing is routed anywhere else.

Everything the lab writes (configs, pid files, logs, data, the state file) lives under
the run dir, by default ``<repo>/.lab/ha``. ``stop()`` removes exactly what ``start()``
recorded in the state file.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from string import Template
from typing import Any

import redis

from . import net, procs
from .net import LabError

REPO = Path(__file__).resolve().parents[2]
DEFAULT_RUN_DIR = REPO / ".lab" / "ha"
TEMPLATES = Path(__file__).resolve().parent / "templates"

VIP = "192.168.20.100"
MASTER_NAME = "acd"
REDIS_PORT = 12000  # on the VIP (HAProxy)
API_PORT = 8000  # on the VIP (HAProxy)
STATS_PORT = 8404  # HAProxy statistics page on each balancer and the VIP
NODE_PORT = 6379
SENTINEL_PORT = 26379
NODES = {"re1": "192.168.20.11", "re2": "192.168.20.12", "re3": "192.168.20.13"}
LBS = {"lb1": "192.168.20.2", "lb2": "192.168.20.3"}
DEFAULT_API_SERVERS: list[tuple[str, str, int]] = [
    ("api1", "192.168.20.21", 8000),
    ("api2", "192.168.20.22", 8000),
]
DISPATCHER_BASE = 31  # dispatcher hosts disp1, disp2, ... get .31, .32, ...
PASSWORD_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")

_active_run_dir: Path | None = None


# --------------------------------------------------------------------------- topology


@dataclass
class HATopology:
    """What runs: addresses, ports, the password and where the files are."""

    run_dir: Path
    password: str
    vip: str = VIP
    bridge: str = net.BRIDGE
    host_ip: str = net.HOST_IP
    master_name: str = MASTER_NAME
    redis_port: int = REDIS_PORT
    api_port: int = API_PORT
    stats_port: int = STATS_PORT
    nodes: dict[str, str] = field(default_factory=lambda: dict(NODES))
    lbs: dict[str, str] = field(default_factory=lambda: dict(LBS))
    api_servers: list[tuple[str, str, int]] = field(
        default_factory=lambda: list(DEFAULT_API_SERVERS)
    )
    down_after_ms: int = 1000
    failover_timeout_ms: int = 3000

    @property
    def redis_url(self) -> str:
        return f"redis://:{self.password}@{self.vip}:{self.redis_port}/0"

    @property
    def api_url(self) -> str:
        return f"http://{self.vip}:{self.api_port}"

    @property
    def stats_url(self) -> str:
        return f"http://{self.vip}:{self.stats_port}/"

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        return [(addr, SENTINEL_PORT) for addr in self.nodes.values()]

    def env(self) -> dict[str, str]:
        """Environment variables handed to API replicas and dispatchers."""
        return {
            "REDIS_URL": self.redis_url,
            "REDIS_PASSWORD": self.password,
            "API_URL": self.api_url,
            "LAB_HA_VIP": self.vip,
        }

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["run_dir"] = str(self.run_dir)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HATopology:
        kwargs = dict(data)
        kwargs["run_dir"] = Path(str(kwargs["run_dir"]))
        kwargs["api_servers"] = [tuple(s) for s in kwargs.get("api_servers", [])]
        return cls(**kwargs)

    # Convenience: the module's helpers bound to this topology.
    def primary(self) -> str:
        return primary(self.run_dir)

    def vip_holder(self) -> str | None:
        return vip_holder(self.run_dir)

    def client(self, **kwargs: object) -> redis.Redis:
        """A redis-py client through the VIP."""
        return _client(self.vip, self.redis_port, self.password, **kwargs)


# --------------------------------------------------------------------------- state file


def _state_path(run_dir: Path) -> Path:
    return run_dir / "state.json"


def _resolve_run_dir(run_dir: Path | str | None) -> Path:
    if run_dir is not None:
        return Path(run_dir)
    if _active_run_dir is not None:
        return _active_run_dir
    return Path(os.environ.get("LAB_HA_DIR", DEFAULT_RUN_DIR))


def _load_state(run_dir: Path) -> dict[str, Any] | None:
    path = _state_path(run_dir)
    if not path.exists():
        return None
    state: dict[str, Any] = json.loads(path.read_text())
    return state


def _save_state(run_dir: Path, state: dict[str, Any]) -> None:
    path = _state_path(run_dir)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    os.chmod(tmp, 0o600)  # it holds the password
    tmp.replace(path)


def _require_state(run_dir: Path | str | None) -> tuple[Path, dict[str, Any], HATopology]:
    rd = _resolve_run_dir(run_dir)
    state = _load_state(rd)
    if state is None:
        raise LabError(
            f"the HA lab is not running (no {_state_path(rd)}): run `python -m lab.ha start`"
        )
    return rd, state, HATopology.from_dict(state["topology"])


def topology(run_dir: Path | str | None = None) -> HATopology:
    """The topology of the running lab."""
    return _require_state(run_dir)[2]


# --------------------------------------------------------------------------- checks


def check_platform() -> str | None:
    """Why the HA lab cannot run here, or None when it can."""
    if platform.system() != "Linux":
        return f"the HA lab needs Linux network namespaces (this is {platform.system()})"
    if os.geteuid() != 0:
        return "the HA lab needs root (it creates network namespaces and a bridge)"
    if not net.have_ip():
        return "the HA lab needs the `ip` command (Debian package iproute2)"
    return None


def ensure_packages(timeout: float = 900) -> None:
    """Install HAProxy and keepalived from Debian packages when they are missing."""
    missing = [p for p in ("haproxy", "keepalived") if not _which(p)]
    if not missing:
        return
    if not shutil.which("apt-get"):
        raise LabError(
            f"{', '.join(missing)} missing and no apt-get: install them with your package manager"
        )
    print(f"lab.ha: installing {' '.join(missing)} (apt-get)...", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", *missing]):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        if proc.returncode != 0:
            raise LabError(f"{' '.join(cmd)} failed: {proc.stderr.strip()[-2000:]}")
    still = [p for p in missing if not _which(p)]
    if still:
        raise LabError(f"{', '.join(still)} still missing after apt-get install")


def _which(prog: str) -> str | None:
    return shutil.which(prog) or shutil.which(prog, path="/usr/sbin:/sbin:/usr/bin")


# --------------------------------------------------------------------------- rendering


def render(template: str, **values: object) -> str:
    """Fill ``lab/ha/templates/<template>`` with ``values`` (string.Template syntax)."""
    text = (TEMPLATES / template).read_text()
    return Template(text).substitute({k: str(v) for k, v in values.items()})


def _replicaof(topo: HATopology, name: str) -> str:
    primary_name = next(iter(topo.nodes))
    if name == primary_name:
        return "# primary at start (Sentinel may change this)"
    return f"replicaof {topo.nodes[primary_name]} {NODE_PORT}"


def render_redis_conf(topo: HATopology, name: str, rejson_module: Path | str) -> str:
    return render(
        "redis.conf",
        name=name,
        run_dir=topo.run_dir,
        rejson_module=rejson_module,
        password=topo.password,
        replica_priority=100,
        replicaof=_replicaof(topo, name),
    )


def render_sentinel_conf(topo: HATopology, name: str) -> str:
    return render(
        "sentinel.conf",
        name=name,
        run_dir=topo.run_dir,
        master_name=topo.master_name,
        primary_ip=next(iter(topo.nodes.values())),
        quorum=2,
        password=topo.password,
        down_after_ms=topo.down_after_ms,
        failover_timeout_ms=topo.failover_timeout_ms,
    )


def render_haproxy_cfg(topo: HATopology, name: str) -> str:
    redis_servers = "\n".join(
        f"    server {n} {addr}:{NODE_PORT} check" for n, addr in topo.nodes.items()
    )
    api_servers = (
        "\n".join(f"    server {n} {addr}:{port} check" for n, addr, port in topo.api_servers)
        or "    # no API replicas configured"
    )
    return render(
        "haproxy.cfg",
        name=name,
        vip=topo.vip,
        password=topo.password,
        stats_port=topo.stats_port,
        redis_port=topo.redis_port,
        api_port=topo.api_port,
        redis_servers=redis_servers,
        api_servers=api_servers,
    )


def render_keepalived_conf(topo: HATopology, name: str) -> str:
    names = list(topo.lbs)
    peer = names[1] if name == names[0] else names[0]
    return render(
        "keepalived.conf",
        name=name,
        ip=topo.lbs[name],
        peer_ip=topo.lbs[peer],
        vip=topo.vip,
        vrid=51,
        state="BACKUP",
        priority=101 if name == names[0] else 100,
        check_script=topo.run_dir / "check_haproxy.sh",
        haproxy_pidfile=topo.run_dir / name / "haproxy.pid",
    )


def write_configs(topo: HATopology, rejson_module: Path | str) -> None:
    rd = topo.run_dir
    for name in topo.nodes:
        (rd / name / "data").mkdir(parents=True, exist_ok=True)
        (rd / name / "redis.conf").write_text(render_redis_conf(topo, name, rejson_module))
        (rd / name / "sentinel.conf").write_text(render_sentinel_conf(topo, name))
    for name in topo.lbs:
        (rd / name).mkdir(parents=True, exist_ok=True)
        (rd / name / "haproxy.cfg").write_text(render_haproxy_cfg(topo, name))
        (rd / name / "keepalived.conf").write_text(render_keepalived_conf(topo, name))
    check = rd / "check_haproxy.sh"
    shutil.copyfile(TEMPLATES / "check_haproxy.sh", check)
    os.chmod(check, 0o755)
    for path in [rd, *rd.iterdir()]:
        if path.is_dir():
            os.chmod(path, 0o755)  # keepalived's script security wants no group/other write


# --------------------------------------------------------------------------- redis helpers


def _client(host: str, port: int, password: str | None, **kwargs: object) -> redis.Redis:
    opts: dict[str, object] = dict(
        host=host,
        port=port,
        password=password,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        decode_responses=True,
    )
    opts.update(kwargs)
    return redis.Redis(**opts)  # type: ignore[arg-type]


def _info_replication(topo: HATopology, name: str) -> dict[str, Any]:
    with _client(topo.nodes[name], NODE_PORT, topo.password) as r:
        info: dict[str, Any] = r.info("replication")
        return info


def _sentinel(topo: HATopology, name: str) -> redis.Redis:
    return _client(topo.nodes[name], SENTINEL_PORT, None)


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
    global _active_run_dir
    why = check_platform()
    if why:
        raise LabError(why)
    rd = _resolve_run_dir(run_dir).resolve()
    existing = _load_state(rd)
    if existing is not None:
        topo = HATopology.from_dict(existing["topology"])
        if net.link_exists(topo.bridge):
            _active_run_dir = rd
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
    _active_run_dir = rd
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
    global _active_run_dir
    rd = _resolve_run_dir(run_dir).resolve()
    state = _load_state(rd)
    if state is None:
        return []
    removed: list[str] = []
    # keepalived first (it releases the VIP), then the rest.
    entries = sorted(state["processes"].values(), key=lambda e: e["role"] != "keepalived")
    for entry in entries:
        pid = entry["pid"]
        if procs.alive(pid) and _is_ours(pid, entry):
            procs.terminate(pid, timeout=5)
            removed.append(f"process {entry['host']}/{entry['role']} (pid {pid})")
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
    if _active_run_dir == rd:
        _active_run_dir = None
    return removed


def _is_ours(pid: int, entry: dict[str, Any]) -> bool:
    """Guard against a recycled pid: the command line must still be the one we started."""
    line = procs.cmdline(pid)
    return bool(line) and Path(entry["cmd"][0]).name in line


# --------------------------------------------------------------------------- status


def status(run_dir: Path | str | None = None) -> dict[str, Any]:
    """What runs: processes (alive or not), primary, replicas, VIP holder."""
    rd = _resolve_run_dir(run_dir).resolve()
    state = _load_state(rd)
    if state is None:
        return {"running": False, "run_dir": str(rd)}
    topo = HATopology.from_dict(state["topology"])
    info: dict[str, Any] = {
        "running": net.link_exists(topo.bridge),
        "run_dir": str(rd),
        "vip": topo.vip,
        "redis_url": topo.redis_url.replace(topo.password, "***"),
        "api_url": topo.api_url,
        "stats_url": topo.stats_url,
        "processes": {k: procs.alive(e["pid"]) for k, e in sorted(state["processes"].items())},
    }
    try:
        info["primary"] = primary(rd)
    except (LabError, redis.RedisError, OSError) as exc:
        info["primary"] = f"unknown ({exc})"
    roles = {}
    for name in topo.nodes:
        try:
            roles[name] = _info_replication(topo, name).get("role")
        except (redis.RedisError, OSError):
            roles[name] = "down"
    info["roles"] = roles
    info["vip_holder"] = vip_holders(rd)
    return info


def format_status(info: dict[str, Any]) -> str:
    if not info.get("running"):
        return f"not running (run dir {info['run_dir']})"
    lines = [
        f"run dir   {info['run_dir']}",
        f"redis     {info['redis_url']}",
        f"api       {info['api_url']}",
        f"stats     {info['stats_url']}",
        f"primary   {info['primary']}",
        f"roles     {info['roles']}",
        f"VIP on    {', '.join(info['vip_holder']) or 'nobody'}",
    ]
    for key, alive in info["processes"].items():
        lines.append(f"  {key:<18} {'running' if alive else 'STOPPED'}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- failover helpers


def primary(run_dir: Path | str | None = None) -> str:
    """The node that the Sentinels' majority names as primary."""
    _, _, topo = _require_state(run_dir)
    by_ip = {addr: name for name, addr in topo.nodes.items()}
    votes: dict[str, int] = {}
    for name in topo.nodes:
        try:
            with _sentinel(topo, name) as s:
                addr, _port = s.execute_command(
                    "SENTINEL", "GET-MASTER-ADDR-BY-NAME", topo.master_name
                )
        except (redis.RedisError, OSError):
            continue
        votes[addr] = votes.get(addr, 0) + 1
    if not votes:
        raise LabError("no Sentinel answers")
    addr, _count = max(votes.items(), key=lambda kv: kv[1])
    return by_ip.get(addr, addr)


def vip_holders(run_dir: Path | str | None = None) -> list[str]:
    _, _, topo = _require_state(run_dir)
    return [name for name in topo.lbs if net.has_address(name, topo.vip)]


def vip_holder(run_dir: Path | str | None = None) -> str | None:
    """The balancer holding the VIP (None when nobody does)."""
    holders = vip_holders(run_dir)
    if len(holders) > 1:
        raise LabError(f"split brain: the VIP is on {holders}")
    return holders[0] if holders else None


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


# --------------------------------------------------------------------------- hooks for the app


CommandFactory = Callable[..., Sequence[str]]


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
    the lab's environment (REDIS_URL, REDIS_PASSWORD, API_URL) plus ``env``. Its pid file
    and log are ``<run dir>/<host>/<role>.pid|.log``; stop() ends it. Returns the pid."""
    rd, state, topo = _require_state(run_dir)
    if host != "host" and host not in state["hosts"]:
        if address is None:
            raise LabError(f"host {host} does not exist: give its address")
        state["hosts"].append(host)
        _save_state(rd, state)
        net.create_host(host, address)
    full_env = {**topo.env(), "LAB_HA_HOST": host, **(env or {})}
    return _start_process(rd, state, host, role, cmd, env=full_env, cwd=Path(cwd) if cwd else REPO)


def stop_in_namespace(host: str, role: str, run_dir: Path | str | None = None) -> None:
    rd, state, _ = _require_state(run_dir)
    _stop_process(rd, state, host, role)


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
    rd, _, topo = _require_state(run_dir)
    pids = []
    for name, addr, port in topo.api_servers:
        host = "host" if addr == topo.host_ip else name
        pids.append(
            run_in_namespace(host, "app", cmd_factory(name, addr, port), env=env, run_dir=rd)
        )
    for (name, addr, port), pid in zip(topo.api_servers, pids, strict=True):
        procs.wait_until(
            lambda a=addr, p=port, i=pid: _tcp_open(a, p, i),  # type: ignore[misc]
            timeout,
            what=f"API replica {name} to listen on {addr}:{port}",
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
    rd, _, _ = _require_state(run_dir)
    pids = []
    for i in range(1, count + 1):
        name, addr = f"disp{i}", f"192.168.20.{DISPATCHER_BASE + i - 1}"
        pids.append(
            run_in_namespace(
                name,
                "app",
                cmd_factory(name, addr),
                address=addr,
                env={"DISPATCHER_NAME": name, **(env or {})},
                run_dir=rd,
            )
        )
    for pid in pids:
        procs.wait_until(
            lambda p=pid: procs.alive(p),  # type: ignore[misc]
            2,
            what="dispatcher to start",
        )
    return pids


def _tcp_open(addr: str, port: int, pid: int) -> bool:
    import socket

    if not procs.alive(pid):
        raise LabError(f"pid {pid} exited: see its log in the run dir")
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((addr, port)) == 0
