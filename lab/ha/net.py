"""Linux network plumbing for the HA lab: one bridge, one namespace per host.

Every command goes through ``ip`` (iproute2) with a timeout. Nothing here touches an
interface, namespace or address that the lab did not create.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
from collections.abc import Sequence

from lab.errors import LabError

SUBNET = ipaddress.ip_network("192.168.20.0/24")
BRIDGE = "acdlab-br0"
HOST_IP = "192.168.20.1"
NS_PREFIX = "acd-"
VETH_PREFIX = "acdv-"


def run(
    args: Sequence[str], *, timeout: float = 15, check: bool = True, input: str | None = None
) -> str:
    """Run a command with a timeout; raise LabError with its stderr on failure."""
    try:
        proc = subprocess.run(
            list(args), capture_output=True, text=True, timeout=timeout, input=input
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"timed out after {timeout}s: {' '.join(args)}") from exc
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def ip(*args: str, check: bool = True) -> str:
    return run(["ip", *args], check=check)


def have_ip() -> bool:
    return shutil.which("ip") is not None


def ns_name(host: str) -> str:
    return f"{NS_PREFIX}{host}"


def in_namespace(host: str, cmd: Sequence[str]) -> list[str]:
    """``cmd`` run inside namespace acd-<host>."""
    return ["ip", "netns", "exec", ns_name(host), *cmd]


def veth_name(host: str) -> str:
    return f"{VETH_PREFIX}{host}"


def namespaces() -> list[str]:
    out = ip("-j", "netns", "list", check=False).strip()
    if not out:
        return []
    return [entry["name"] for entry in json.loads(out)]


def lab_namespaces() -> list[str]:
    return [n for n in namespaces() if n.startswith(NS_PREFIX)]


def link_exists(name: str) -> bool:
    return (
        subprocess.run(
            ["ip", "link", "show", "dev", name], capture_output=True, timeout=10
        ).returncode
        == 0
    )


def subnet_users(own_bridge: str = BRIDGE) -> list[str]:
    """Interfaces or routes of this machine (outside our bridge) that use the lab subnet."""
    users: list[str] = []
    for entry in json.loads(ip("-j", "-4", "addr", "show") or "[]"):
        if entry.get("ifname") == own_bridge:
            continue
        for addr in entry.get("addr_info", []):
            net = ipaddress.ip_interface(f"{addr['local']}/{addr['prefixlen']}").network
            if net.overlaps(SUBNET):
                users.append(f"address {addr['local']}/{addr['prefixlen']} on {entry['ifname']}")
    for route in json.loads(ip("-j", "-4", "route", "show", "table", "all") or "[]"):
        dst = route.get("dst", "")
        if dst in ("default", "") or route.get("dev") == own_bridge:
            continue
        if route.get("type") in ("local", "broadcast") and route.get("dev") == own_bridge:
            continue
        try:
            net = ipaddress.ip_network(dst if "/" in dst else f"{dst}/32", strict=False)
        except ValueError:
            continue
        if net.overlaps(SUBNET) and route.get("dev") != own_bridge:
            users.append(f"route {dst} dev {route.get('dev', '?')}")
    return sorted(set(users))


def create_bridge() -> None:
    ip("link", "add", BRIDGE, "type", "bridge")
    ip("addr", "add", f"{HOST_IP}/{SUBNET.prefixlen}", "dev", BRIDGE)
    ip("link", "set", BRIDGE, "up")


def delete_bridge() -> None:
    if link_exists(BRIDGE):
        ip("link", "del", BRIDGE)


def create_host(host: str, address: str) -> None:
    """A namespace ``acd-<host>`` with eth0 (address/24) plugged into the lab bridge."""
    ns, veth = ns_name(host), veth_name(host)
    ip("netns", "add", ns)
    ip("-n", ns, "link", "set", "lo", "up")
    ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
    ip("link", "set", veth, "master", BRIDGE)
    ip("link", "set", veth, "up")
    ip("-n", ns, "addr", "add", f"{address}/{SUBNET.prefixlen}", "dev", "eth0")
    ip("-n", ns, "link", "set", "eth0", "up")


def delete_host(host: str) -> None:
    ns, veth = ns_name(host), veth_name(host)
    if ns in namespaces():
        ip("netns", "del", ns)
    if link_exists(veth):  # normally gone with the namespace
        ip("link", "del", veth, check=False)


def ns_pids(host: str) -> list[int]:
    out = ip("netns", "pids", ns_name(host), check=False)
    return [int(p) for p in out.split()]


def has_address(host: str, address: str) -> bool:
    out = ip("-n", ns_name(host), "-j", "-4", "addr", "show", "dev", "eth0", check=False)
    if not out.strip():
        return False
    return any(a.get("local") == address for e in json.loads(out) for a in e.get("addr_info", []))
