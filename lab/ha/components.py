"""How each component of the topology starts: Redis and Sentinel on the nodes, HAProxy and
keepalived on the balancers, from the configs under the run dir (lab.ha.configs)."""

from __future__ import annotations

from pathlib import Path

from lab.binaries import redis_server
from lab.processes import pid_alive, wait_until

from . import net
from .layout import REDIS_PORT, find_program
from .procs import start_process
from .state import State


def start_redis(run_dir: Path, state: State, name: str) -> None:
    """Node ``name``'s redis-server, from its own config (which Sentinel may rewrite)."""
    start_process(run_dir, state, name, "redis",
                  [str(redis_server()), str(run_dir / name / "redis.conf")])


def start_sentinel(run_dir: Path, state: State, name: str) -> None:
    start_process(run_dir, state, name, "sentinel",
                  [str(redis_server()), str(run_dir / name / "sentinel.conf"), "--sentinel"])


def start_haproxy(run_dir: Path, state: State, name: str) -> None:
    """Balancer ``name``'s HAProxy (its config checked first); waits until it listens."""
    haproxy = find_program("haproxy") or "haproxy"
    cfg = run_dir / name / "haproxy.cfg"
    net.run([haproxy, "-c", "-q", "-f", str(cfg)])
    pid = start_process(run_dir, state, name, "haproxy", [haproxy, "-db", "-f", str(cfg)])
    wait_until(lambda: pid_alive(pid) and listening(name, REDIS_PORT), 10,
               f"HAProxy on {name} to listen")


def start_keepalived(run_dir: Path, state: State, name: str) -> None:
    d = run_dir / name
    start_process(run_dir, state, name, "keepalived", [
        find_program("keepalived") or "keepalived", "-n", "-l", "-D", "-G", "-P",
        "-f", str(d / "keepalived.conf"),
        "-p", str(d / "keepalived-main.pid"),
        "-r", str(d / "keepalived-vrrp.pid"),
    ])  # fmt: skip


def listening(host: str, port: int) -> bool:
    """Something listens on TCP ``port`` inside host's namespace."""
    out = net.run(net.in_namespace(host, ["ss", "-Hltn", f"sport = :{port}"]), check=False)
    return bool(out.strip())
