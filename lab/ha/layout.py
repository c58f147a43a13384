"""The HA topology: addresses, ports, the state file, platform checks, Redis helpers.

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
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import redis

from . import net
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
        from .roles import primary

        return primary(self.run_dir)

    def vip_holder(self) -> str | None:
        from .roles import vip_holder

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


def set_active(run_dir: Path) -> None:
    """Make ``run_dir`` the default of every helper called without one (this process)."""
    global _active_run_dir
    _active_run_dir = run_dir


def clear_active(run_dir: Path) -> None:
    global _active_run_dir
    if _active_run_dir == run_dir:
        _active_run_dir = None


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
