"""The HA lab for real: 3 Redis + 3 Sentinels, 2 HAProxy + keepalived, network namespaces.

Needs Linux, root and iproute2; HAProxy and keepalived are installed by the lab
(apt-get) when missing. The topology starts once for the module (seconds) and is always
stopped. Order matters: the tests walk through the failover drill (lab.drill, with its
raw writes to Redis only: no API runs here).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ha_runs import topology

import lab.ha as ha
from lab import drill
from lab.ha import net
from lab.processes import command_lines, wait_until

_WHY = ha.check_platform()
if _WHY:
    pytest.skip(f"HA lab tests skipped: {_WHY}", allow_module_level=True)

pytestmark = pytest.mark.slow

_state: dict[str, object] = {}
# The Sentinels' passwords differ from the nodes' ("test-password"): a client that used
# the wrong one would be refused.
SENTINEL_PASSWORDS = {"sentinel_admin": "sentinel-admin-pw", "sentinel_peer": "sentinel-peer-pw"}


@pytest.fixture(scope="module")
def topo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ha.HATopology]:
    with topology(tmp_path_factory.mktemp("ha"), SENTINEL_PASSWORDS) as started:
        yield started


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


def _first_replies(address: str, *commands: tuple[str, ...]) -> list[str]:
    """The first line of a Sentinel's reply to each command, on one connection, as any
    program on the bridge would send them (no client library, no AUTH unless sent)."""
    replies = []
    with socket.create_connection((address, 26379), timeout=5) as sock, \
            sock.makefile("rb") as answers:
        for command in commands:
            wire = f"*{len(command)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in command)
            sock.sendall(wire.encode())
            replies.append(answers.readline().decode().strip())
    return replies


@pytest.mark.timeout(60)
def test_a_sentinel_serves_only_its_users(topo: ha.HATopology) -> None:
    """Without AUTH a Sentinel runs nothing (NOAUTH): no failover, no SET, no REMOVE, no
    reading its configuration; a wrong password is WRONGPASS; the Sentinels' own peer
    user may not fail over either. The lab's user (sentinel_admin) is served."""
    admin, peer = SENTINEL_PASSWORDS["sentinel_admin"], SENTINEL_PASSWORDS["sentinel_peer"]
    master = topo.master_name
    for name, address in topo.nodes.items():
        anonymous = _first_replies(
            address, ("PING",), ("SENTINEL", "FAILOVER", master),
            ("SENTINEL", "SET", master, "down-after-milliseconds", "1"),
            ("SENTINEL", "REMOVE", master), ("SENTINEL", "MASTERS"),
            ("SENTINEL", "GET-MASTER-ADDR-BY-NAME", master))
        assert all(r.startswith("-NOAUTH ") for r in anonymous), (name, anonymous)
        wrong = _first_replies(address, ("AUTH", "sentinel_admin", "test-password"),
                               ("AUTH", "default", admin), ("AUTH", admin),
                               ("SENTINEL", "FAILOVER", master))
        assert [r.split()[0] for r in wrong] == ["-WRONGPASS"] * 3 + ["-NOAUTH"], (name, wrong)
        as_peer = _first_replies(address, ("AUTH", "sentinel_peer", peer),
                                 ("SENTINEL", "FAILOVER", master),
                                 ("SENTINEL", "SET", master, "quorum", "1"),
                                 ("SENTINEL", "MASTERS"))
        assert as_peer[0] == "+OK" and all(r.startswith("-NOPERM ") for r in as_peer[1:]), (
            name, as_peer)
        assert _first_replies(address, ("AUTH", "sentinel_admin", admin), ("PING",)) == [
            "+OK", "+PONG"]
        with ha.sentinel_client(topo, name) as s:
            assert s.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", master) == [
                topo.nodes["re1"], "6379"]
            got = s.execute_command("SENTINEL", "MASTER", master)  # a map in RESP3
            settings = got if isinstance(got, dict) else dict(zip(got[::2], got[1::2],
                                                                  strict=True))
            assert str(settings["quorum"]) == "2", settings
            assert str(settings["down-after-milliseconds"]) == "1000", settings
            # what was refused above is in the log; the drills below must add nothing
            assert s.acl_log(), name
            s.acl_log_reset()
    assert ha.primary(topo.run_dir) == "re1"


@pytest.mark.timeout(60)
def test_api_frontend_round_robins_over_replicas(topo: ha.HATopology, tmp_path: Path) -> None:
    # A stand-in HTTP server only to test HAProxy's http frontend; the real API plugs in
    # through the same hook.
    def stand_in(name: str, address: str, port: int) -> list[str]:
        root = tmp_path / name
        root.mkdir()
        (root / "who").write_text(name)
        # HAProxy checks a replica with GET /health/live (lab/ha/templates/haproxy.cfg)
        (root / "health").mkdir()
        (root / "health" / "live").write_text("ok")
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


@pytest.mark.timeout(180)
def test_the_drill_on_the_bare_topology_loses_no_acknowledged_write(topo: ha.HATopology) -> None:
    # No API runs here: the drill's raw writes straight to Redis are its only probe.
    old, holder = ha.primary(topo.run_dir), ha.vip_holder(topo.run_dir)
    assert (old, holder) == ("re1", "lb1")
    report = drill.run(contacts=False, warmup_s=1.0, run_dir=topo.run_dir)
    print(json.dumps(report.to_dict(), indent=1))
    events = report.events
    assert [e.event for e in events] == [
        "baseline (no failure)", "stop lb1 (VIP moves)", "kill -9 primary re1",
        "bring back lb1 + re1",
    ]
    for e in events:
        assert e.contacts is None and e.writes is not None, e
        assert e.writes.acknowledged > 100 and e.writes.lost == 0 and e.writes.recovered, e
    stop, kill = events[1].writes, events[2].writes
    assert stop is not None and kill is not None
    assert kill.failed > 0 and 0 < kill.outage_s < 15, kill  # the kill was seen by the client
    assert stop.outage_s < 10, stop
    assert report.ok and report.lost == 0 and report.components == {}, report.to_dict()

    new = ha.primary(topo.run_dir)
    assert new != "re1"
    with ha.redis_client(topo.nodes["re1"], 6379, topo.password) as r:
        info = r.info("replication")
    assert info["role"] == "slave" and info["master_link_status"] == "up"
    assert info["master_host"] == topo.nodes[new]
    # Sentinel rewrote the old primary's config: it restarted as a replica from it.
    assert "replicaof" in (topo.run_dir / "re1" / "redis.conf").read_text()
    with topo.client() as r:
        assert r.execute_command("ROLE")[0] == "master"
        assert r.info("replication")["connected_slaves"] == 2
        assert r.execute_command("JSON.GET", "lab:ha:doc", "$.agent") == '["a1"]'
    # nopreempt: the returning balancer stays backup.
    assert ha.vip_holders(topo.run_dir) == ["lb2"]
    assert report.final_roles == {"re1": "slave", new: "master",
                                  **{n: "slave" for n in topo.nodes if n not in ("re1", new)}}


@pytest.mark.long  # a second drill (28 s): the fast tier keeps the one above
@pytest.mark.timeout(180)
def test_python_m_lab_ha_drill_reports_as_json(topo: ha.HATopology) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lab.ha", "drill", "--json", "--run-dir", str(topo.run_dir)],
        capture_output=True, text=True, timeout=170,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] and report["lost"] == 0
    assert [e["event"].split()[0] for e in report["events"]] == ["baseline", "stop", "kill",
                                                                 "bring"]
    assert all(e["writes"]["lost"] == 0 and "offered" not in e for e in report["events"])
    assert report["events"][2]["writes"]["failed"] > 0


@pytest.mark.timeout(30)
def test_the_sentinels_refused_their_peers_nothing_during_the_failovers(
        topo: ha.HATopology) -> None:
    """Two drills failed over through the Sentinels, which reach each other as the peer
    user: had it missed a command (a vote, a hello), a Sentinel's ACL LOG would say so."""
    for name in topo.nodes:
        with ha.sentinel_client(topo, name) as s:
            refused = [(e["username"], e["reason"], e["object"]) for e in s.acl_log()]
            peers = s.execute_command("SENTINEL", "SENTINELS", topo.master_name)
        assert not refused, (name, refused)
        assert len(peers) == 2, (name, peers)


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
    # Processes the drill's subprocess restarted were orphaned when it exited: init reaps
    # them once they end, a moment later.
    wait_until(lambda: not [p for p in pids if Path(f"/proc/{p}").exists()], 15,
               "every process of the lab to be gone (even zombies)")
    assert not [line for line in command_lines().values() if str(topo.run_dir) in line]
    assert not ha.status(topo.run_dir)["running"]


def _all_pids(topo: ha.HATopology) -> list[int]:
    state = json.loads((topo.run_dir / "state.json").read_text())
    return [e["pid"] for e in state["processes"].values()]
