"""The HA lab for real: 3 Redis + 3 Sentinels, 2 HAProxy + keepalived, network namespaces.

Needs Linux, root and iproute2; HAProxy and keepalived are installed by the lab
(apt-get) when missing. The topology starts once for the module (seconds) and is always
stopped. Order matters: the tests walk through a failover drill.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import lab.ha as ha
from lab.ha import net
from lab.processes import wait_until

_WHY = ha.check_platform()
if _WHY:
    pytest.skip(f"HA lab tests skipped: {_WHY}", allow_module_level=True)

pytestmark = pytest.mark.slow

_state: dict[str, object] = {}


@pytest.fixture(scope="module")
def topo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ha.HATopology]:
    users = net.subnet_users()
    if users or net.link_exists(net.BRIDGE):
        pytest.skip(
            f"192.168.20.0/24 is in use here ({users or net.BRIDGE}): "
            "stop the running lab first (python -m lab.ha stop)"
        )
    run_dir = tmp_path_factory.mktemp("ha")
    try:
        topology = ha.start("test-password", run_dir=run_dir, timeout=90)
    except BaseException:
        ha.stop(run_dir)
        raise
    try:
        yield topology
    finally:
        ha.stop(run_dir)


@pytest.mark.timeout(60)
def test_vip_serves_the_primary_with_json(topo: ha.HATopology) -> None:
    with topo.client() as r:
        assert r.ping()
        assert r.execute_command("ROLE")[0] == "master"
        assert (
            r.execute_command("JSON.SET", "lab:ha:doc", "$", '{"agent":"a1","skills":["x"]}')
            == "OK"
        )
        assert r.execute_command("JSON.GET", "lab:ha:doc", "$.agent") == '["a1"]'
        info = r.info("replication")
        assert info["connected_slaves"] == 2
    assert ha.primary(topo.run_dir) == "re1"
    assert ha.vip_holder(topo.run_dir) == "lb1"
    stats = httpx.get(f"http://{topo.vip}:{topo.stats_port}/", timeout=5)
    assert stats.status_code == 200 and "redis_primary" in stats.text


@pytest.mark.timeout(30)
def test_second_start_reports_what_runs(topo: ha.HATopology) -> None:
    again = ha.start(run_dir=topo.run_dir)
    assert again.password == topo.password
    info = ha.status(topo.run_dir)
    assert info["running"] and all(info["processes"].values()), info


@pytest.mark.timeout(60)
def test_api_frontend_round_robins_over_replicas(topo: ha.HATopology, tmp_path: Path) -> None:
    # A stand-in HTTP server only to test HAProxy's http frontend; the real API plugs in
    # through the same hook.
    def stand_in(name: str, address: str, port: int) -> list[str]:
        root = tmp_path / name
        root.mkdir()
        (root / "who").write_text(name)
        return [
            sys.executable,
            "-m",
            "http.server",
            str(port),
            "--bind",
            address,
            "--directory",
            str(root),
        ]

    ha.start_api_replicas(stand_in, run_dir=topo.run_dir)
    # HAProxy marks the servers up after its checks (rise 2, inter 1 s).
    seen: set[str] = set()
    wait_until(
        lambda: _collect(topo, seen) >= {"api1", "api2"},
        15,
        "both API replicas through the VIP",
    )
    for name, _, _ in topo.api_servers:
        ha.stop_in_namespace(name, "app", run_dir=topo.run_dir)


def _collect(topo: ha.HATopology, seen: set[str]) -> set[str]:
    reply = httpx.get(f"{topo.api_url}/who", timeout=2)
    if reply.status_code == 200:
        seen.add(reply.text)
    return seen


@pytest.mark.timeout(60)
def test_kill_primary_recovers_without_losing_acknowledged_writes(topo: ha.HATopology) -> None:
    before = ha.primary(topo.run_dir)
    result = ha.run_drill(
        lambda: _state.setdefault("killed", ha.kill_primary(topo.run_dir)),
        event="kill -9 primary",
        deadline_s=30,
        run_dir=topo.run_dir,
    )
    print(result.summary())
    assert result.recovered, result.errors
    assert result.failed_calls > 0  # the kill was seen by the client
    assert result.outage_s < 15, result
    assert result.acknowledged > 100
    assert result.lost == 0, result
    after = ha.primary(topo.run_dir)
    assert after != before and _state["killed"] == before
    with topo.client() as r:
        assert r.execute_command("ROLE")[0] == "master"
        assert r.execute_command("JSON.GET", "lab:ha:doc", "$.agent") == '["a1"]'


@pytest.mark.timeout(60)
def test_restarted_old_primary_rejoins_as_replica(topo: ha.HATopology) -> None:
    old = str(_state["killed"])
    current = ha.restart_node(old, run_dir=topo.run_dir, timeout=40)
    assert current != old
    with ha.redis_client(topo.nodes[old], 6379, topo.password) as r:
        info = r.info("replication")
    assert info["role"] == "slave" and info["master_link_status"] == "up"
    assert info["master_host"] == topo.nodes[current]
    # Sentinel rewrote the old primary's config: it restarts as a replica from it.
    assert "replicaof" in (topo.run_dir / old / "redis.conf").read_text()
    with topo.client() as r:
        assert r.info("replication")["connected_slaves"] == 2


@pytest.mark.timeout(60)
def test_stop_lb_moves_vip_and_clients_continue(topo: ha.HATopology) -> None:
    holder = ha.vip_holder(topo.run_dir)
    other = next(n for n in topo.lbs if n != holder)
    result = ha.drill_stop_lb(holder, deadline_s=20, run_dir=topo.run_dir)
    print(result.summary())
    assert ha.vip_holder(topo.run_dir) == other
    assert result.recovered and result.lost == 0 and result.outage_s < 10, result
    ha.start_lb(holder, run_dir=topo.run_dir)
    # nopreempt: the returning balancer stays backup.
    wait_until(lambda: ha.status(topo.run_dir)["processes"][f"{holder}/keepalived"], 5,
               f"keepalived on {holder} again")
    assert ha.vip_holders(topo.run_dir) == [other]


@pytest.mark.timeout(60)
def test_keepalived_tracks_its_own_haproxy(topo: ha.HATopology) -> None:
    holder = ha.vip_holder(topo.run_dir)
    other = next(n for n in topo.lbs if n != holder)
    # The other HAProxy still runs: a check by process name would keep the VIP here.
    ha.kill_haproxy(holder, run_dir=topo.run_dir)
    wait_until(
        lambda: ha.vip_holders(topo.run_dir) == [other],
        15,
        f"the VIP to move from {holder} to {other}",
    )
    with topo.client() as r:
        assert r.ping()
    ha.start_lb(holder, run_dir=topo.run_dir)


@pytest.mark.timeout(60)
def test_stop_leaves_nothing_behind(topo: ha.HATopology) -> None:
    pids = [int(p) for p in _all_pids(topo)]
    assert pids
    ha.stop(topo.run_dir)
    assert not [n for n in net.namespaces() if n.startswith(net.NS_PREFIX)]
    assert not net.link_exists(net.BRIDGE)
    assert not [p for p in pids if Path(f"/proc/{p}").exists()], "processes left (even zombies)"
    out = subprocess.run(["ps", "-eo", "pid,stat,args"], capture_output=True, text=True).stdout
    assert str(topo.run_dir) not in out
    assert not ha.status(topo.run_dir)["running"]


def _all_pids(topo: ha.HATopology) -> list[int]:
    import json

    state = json.loads((topo.run_dir / "state.json").read_text())
    return [e["pid"] for e in state["processes"].values()]
