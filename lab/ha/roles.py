"""Who is who in the running HA lab: the primary, the VIP holder, and a status summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis

from lab.errors import LabError
from lab.processes import pid_alive

from . import net
from .layout import HATopology, replication_info, sentinel_client
from .state import load_state, require_state, resolve_run_dir

# --------------------------------------------------------------------------- status


def status(run_dir: Path | str | None = None) -> dict[str, Any]:
    """What runs: processes (alive or not), primary, replicas, VIP holder."""
    rd = resolve_run_dir(run_dir)
    state = load_state(rd)
    if state is None:
        return {"running": False, "run_dir": str(rd)}
    topo = HATopology.from_dict(state["topology"])
    info: dict[str, Any] = {
        "running": net.link_exists(topo.bridge),
        "run_dir": str(rd),
        "vip": topo.vip,
        "redis_url": topo.redis_url.replace(topo.secret("lab"), "***"),
        "api_url": topo.api_url,
        "stats_url": topo.stats_url,
        "processes": {k: pid_alive(e["pid"]) for k, e in sorted(state["processes"].items())},
    }
    try:
        info["primary"] = primary(rd)
    except (LabError, redis.RedisError, OSError) as exc:
        info["primary"] = f"unknown ({exc})"
    roles = {}
    for name in topo.nodes:
        try:
            roles[name] = replication_info(topo, name).get("role")
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
    _, _, topo = require_state(run_dir)
    by_ip = {addr: name for name, addr in topo.nodes.items()}
    votes: dict[str, int] = {}
    for name in topo.nodes:
        try:
            with sentinel_client(topo, name) as s:
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
    """Every balancer holding the VIP (more than one: split brain)."""
    _, _, topo = require_state(run_dir)
    return [name for name in topo.lbs if net.has_address(name, topo.vip)]


def vip_holder(run_dir: Path | str | None = None) -> str | None:
    """The balancer holding the VIP (None when nobody does)."""
    holders = vip_holders(run_dir)
    if len(holders) > 1:
        raise LabError(f"split brain: the VIP is on {holders}")
    return holders[0] if holders else None
