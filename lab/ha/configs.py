"""Configuration files of the HA lab, rendered from ``lab/ha/templates``."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from string import Template

from lab.embedded import redis_maxmemory
from lab.processes import private_dir, write_private
from lab.redis_users import SENTINEL_PEER, sentinel_acl_lines, write_acl_file

from .layout import (
    NODE_PORT,
    TEMPLATES,
    HATopology,
)

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
        acl_file=acl_path(topo, name),
        replication_password=topo.secret("replication"),
        replica_priority=100,
        replicaof=_replicaof(topo, name),
        maxmemory=redis_maxmemory(),
    )


def render_sentinel_conf(topo: HATopology, name: str) -> str:
    return render(
        "sentinel.conf",
        name=name,
        run_dir=topo.run_dir,
        master_name=topo.master_name,
        primary_ip=next(iter(topo.nodes.values())),
        quorum=2,
        sentinel_password=topo.secret("sentinel"),
        sentinel_users="\n".join(sentinel_acl_lines(topo.sentinel_passwords())),
        peer_user=SENTINEL_PEER,
        peer_password=topo.secret(SENTINEL_PEER),
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
        health_password=topo.secret("health"),
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


def acl_path(topo: HATopology, name: str) -> Path:
    """Node ``name``'s ACL file: the users of lab.redis_users with the lab's passwords."""
    return topo.run_dir / name / "users.acl"


def write_acl_files(topo: HATopology, learners: Mapping[str, str] | None = None) -> None:
    """Every node's ACL file: the roles' users and the workshop learners' (name ->
    password, lab.learners). Each node has its own (ACL users are not replicated), all
    the same, so a replica promoted later and a node the supervisor restarts have every
    user the primary has."""
    for name in topo.nodes:
        write_acl_file(acl_path(topo, name), topo.role_passwords(), learners)


def write_configs(topo: HATopology, rejson_module: Path | str,
                  learners: Mapping[str, str] | None = None) -> None:
    rd = topo.run_dir
    for name in topo.nodes:
        private_dir(rd / name / "data")
    write_acl_files(topo, learners)
    for name in topo.nodes:
        write_private(rd / name / "redis.conf", render_redis_conf(topo, name, rejson_module))
        write_private(rd / name / "sentinel.conf", render_sentinel_conf(topo, name))
    for name in topo.lbs:
        (rd / name).mkdir(parents=True, exist_ok=True)
        write_private(rd / name / "haproxy.cfg", render_haproxy_cfg(topo, name))
        write_private(rd / name / "keepalived.conf", render_keepalived_conf(topo, name))
    check = rd / "check_haproxy.sh"
    shutil.copyfile(TEMPLATES / "check_haproxy.sh", check)
    os.chmod(check, 0o755)
    os.chmod(rd, 0o755)  # keepalived's script security wants no group/other write
    for path in rd.iterdir():
        if path.is_dir():
            os.chmod(path, 0o700)  # configs, data and logs: the owner's only
