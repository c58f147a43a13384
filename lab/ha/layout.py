"""The HA topology: addresses, ports, platform checks, Redis clients of its nodes.

Each host is a Linux network namespace ``acd-<host>`` plugged into the bridge
``acdlab-br0`` (192.168.20.0/24); the machine itself is 192.168.20.1 on that bridge, so
programs on the machine reach the VIP 192.168.20.100. Nothing is routed anywhere else.

Where the lab writes its files and what it started: ``lab.ha.state``.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import redis

from lab.errors import LabError
from lab.redis_users import HA_ROLES, SENTINEL_ADMIN, SENTINEL_ROLES, role_url

from . import net

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


# --------------------------------------------------------------------------- topology


@dataclass
class HATopology:
    """What runs: addresses, ports, the Redis users' passwords and where the files are.

    ``password`` is the admin's (the lab's own checks and drills); ``passwords`` every
    role's, the nodes' and the Sentinels' (lab.redis_users), a role missing from it has
    ``password``."""

    run_dir: Path
    password: str
    passwords: dict[str, str] = field(default_factory=dict)
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

    def secret(self, role: str) -> str:
        return self.passwords.get(role) or self.password

    def role_passwords(self) -> dict[str, str]:
        """The Redis nodes' users' passwords."""
        return {role: self.secret(role) for role in HA_ROLES}

    def sentinel_passwords(self) -> dict[str, str]:
        """The Sentinels' users' passwords (lab.redis_users.SENTINEL_USERS)."""
        return {role: self.secret(role) for role in SENTINEL_ROLES}

    def role_url(self, role: str) -> str:
        """The URL of ``role``'s user through the VIP."""
        return role_url(role, self.secret(role), self.vip, self.redis_port)

    @property
    def redis_url(self) -> str:
        """The learner's (notebooks), as in every environment's REDIS_URL."""
        return self.role_url("lab")

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
        """Environment variables handed to every process of the lab (the API replicas
        and the dispatchers get their own role's REDIS_URL on top)."""
        return {
            "REDIS_URL": self.redis_url,
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

    def client(self, **kwargs: object) -> redis.Redis:
        """A redis-py client through the VIP."""
        return redis_client(self.vip, self.redis_port, self.password, **kwargs)


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
    missing = [p for p in ("haproxy", "keepalived") if not find_program(p)]
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
    still = [p for p in missing if not find_program(p)]
    if still:
        raise LabError(f"{', '.join(still)} still missing after apt-get install")


def find_program(prog: str) -> str | None:
    """``prog`` on PATH or in the sbin folders (not on a plain user's PATH)."""
    return shutil.which(prog) or shutil.which(prog, path="/usr/sbin:/sbin:/usr/bin")


# --------------------------------------------------------------------------- redis helpers


def redis_client(host: str, port: int, password: str | None, **kwargs: object) -> redis.Redis:
    """A client with 1 s timeouts (``kwargs`` override them); with a password, as the admin
    user (the nodes' default user is off) unless ``username`` says another."""
    opts: dict[str, object] = dict(
        host=host,
        port=port,
        password=password,
        username="admin" if password else None,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        decode_responses=True,
    )
    opts.update(kwargs)
    return redis.Redis(**opts)  # type: ignore[arg-type]


def replication_info(topo: HATopology, name: str) -> dict[str, Any]:
    """INFO replication of node ``name``, asked directly (not through the VIP)."""
    with redis_client(topo.nodes[name], NODE_PORT, topo.password) as r:
        info: dict[str, Any] = r.info("replication")
        return info


def sentinel_client(topo: HATopology, name: str) -> redis.Redis:
    """A client of the Sentinel on node ``name``, as its sentinel_admin user (the
    Sentinels refuse a client that does not authenticate)."""
    return redis_client(topo.nodes[name], SENTINEL_PORT, topo.secret(SENTINEL_ADMIN),
                        username=SENTINEL_ADMIN)
