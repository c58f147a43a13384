"""./start.sh --ha end to end: ``python -m lab start --ha``, the contact failover drill
(``python -m lab.drill``), workshop learners (``python -m lab workshop``), ``python -m lab
stop``.

Real processes in real network namespaces: Linux and root only. LAB_HOME and LAB_ENV_FILE
point into a temporary folder, so a developer's .lab/ and .env are never touched.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ha_learners as hl
import httpx
import pytest
import redis
from ha_runs import REPO, lab_env, leftovers, recorded_pid, require_free_subnet, run_lab, wait_gone
from lab_runs import NOTEBOOKS, nbval
from redis.exceptions import NoPermissionError

from acd.keys import Keys
from lab.embedded import free_port
from lab.envfile import read_env
from lab.ha import check_platform, primary, topology
from lab.ha.failover import rejoined
from lab.learners import connection_file, learner_passwords
from lab.lessons import kernel_env
from lab.processes import command_lines, pid_alive, wait_until
from lab.stack import http_ok

_WHY = check_platform()
if _WHY:
    print(f"HA start/drill tests skipped: {_WHY}", file=sys.stderr)
    pytest.skip(f"HA start/drill tests skipped: {_WHY}", allow_module_level=True)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dev_env_file() -> Iterator[None]:
    """The developer's .env must be the same after these tests."""
    path = REPO / ".env"
    before = path.read_bytes() if path.exists() else None
    yield
    assert (path.read_bytes() if path.exists() else None) == before, ".env of the repo changed"


@pytest.mark.timeout(150)
def test_a_failed_start_names_the_component_and_leaves_nothing(
    tmp_path: Path, dev_env_file: None
) -> None:
    require_free_subnet()
    with socket.socket() as busy:  # JupyterLab's port is taken: the last component fails
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        env = lab_env(tmp_path, busy.getsockname()[1])
        try:
            proc = run_lab(env, "lab", "start", "--ha")
        finally:
            run_lab(env, "lab", "stop")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "jupyter: port" in proc.stderr and "LAB_JUPYTER_PORT" in proc.stderr, proc.stderr
    assert "Nothing of it was left running" in proc.stderr
    assert not (tmp_path / ".env").exists()
    assert not leftovers(tmp_path)


@pytest.fixture(scope="module")
def ha_lab(
    tmp_path_factory: pytest.TempPathFactory, dev_env_file: None
) -> Iterator[dict[str, str]]:
    require_free_subnet()
    home = tmp_path_factory.mktemp("lab")
    hl.add_earlier_learner(home)
    env = lab_env(home, free_port())
    try:
        started = time.monotonic()
        proc = run_lab(env, "lab", "start", "--ha")
        print(proc.stdout, proc.stderr, f"started in {time.monotonic() - started:.1f} s")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        yield env
    finally:
        run_lab(env, "lab", "stop")


@pytest.mark.timeout(60)
def test_start_writes_env_and_serves_through_the_vip(ha_lab: dict[str, str]) -> None:
    values = read_env(Path(ha_lab["LAB_ENV_FILE"]))
    assert values["ACD_ENV"] == "ha"
    assert set(values) >= {"REDIS_URL", "API_URL", "JUPYTER_URL", "REDIS_PASSWORD", "JUPYTER_TOKEN",
                           "ACD_API_KEY"}
    assert "@192.168.20.100:12000" in values["REDIS_URL"]
    assert values["API_URL"] == "http://192.168.20.100:8000"
    assert httpx.get(values["API_URL"] + "/health", timeout=5).json()["redis"] == "ok"
    # The lab's key opens the API through the VIP (Host: the VIP); none gets 401.
    stats = values["API_URL"] + "/v1/centers/ha-check/stats"
    assert httpx.get(stats, timeout=5).status_code == 401
    auth = {"Authorization": f"Bearer {values['ACD_API_KEY']}"}
    assert httpx.get(stats, timeout=5, headers=auth).status_code == 200
    jupyter = values["JUPYTER_URL"].split("/lab?")[0]
    reply = httpx.get(f"{jupyter}/api/status", params={"token": values["JUPYTER_TOKEN"]}, timeout=5)
    assert reply.status_code == 200
    # JupyterLab's kernels get REDIS_URL through the VIP
    pid = int((Path(ha_lab["LAB_HOME"]) / "ha" / "run" / "jupyter.pid").read_text())
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert f"REDIS_URL={values['REDIS_URL']}".encode() in environ


@pytest.mark.timeout(60)
def test_start_again_is_harmless(ha_lab: dict[str, str]) -> None:
    state = json.loads((Path(ha_lab["LAB_HOME"]) / "ha" / "state.json").read_text())
    before = {k: v["pid"] for k, v in state["processes"].items()}
    proc = run_lab(ha_lab, "lab", "start", "--ha", timeout=50)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("already running") >= 6, proc.stdout
    state = json.loads((Path(ha_lab["LAB_HOME"]) / "ha" / "state.json").read_text())
    assert {k: v["pid"] for k, v in state["processes"].items()} == before
    status = run_lab(ha_lab, "lab", "status", timeout=30)
    assert "HA lab        running" in status.stdout and "STOPPED" not in status.stdout
    assert re.search(r"supervisor +running, pid \d+", status.stdout), status.stdout


# -- workshop mode on the HA lab (lab.ha.workshop) --------------------------------------
LEARNERS = ("ann", "bea")
USERS = {"learner-ann", "learner-bea", f"learner-{hl.EARLIER}"}
_workshop: dict[str, Any] = {}  # the primary and each node's pid when they were added


@pytest.mark.timeout(120)
def test_workshop_learners_on_the_ha_lab_reach_their_own_centers_only(
        ha_lab: dict[str, str]) -> None:
    run_dir = Path(ha_lab["LAB_HOME"]) / "ha"
    topo = topology(run_dir)
    for name in LEARNERS:
        proc = run_lab(ha_lab, "lab", "workshop", "add", name, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "did not answer" not in proc.stdout, proc.stdout
    ann = hl.learner(ha_lab, "ann")
    assert f"@{topo.vip}:{topo.redis_port}/" in ann["REDIS_URL"], ann["REDIS_URL"]
    assert ann["API_URL"] == topo.api_url
    # Every node has every learner, live and in its ACL file (ACL users are not replicated):
    # the two added now, and the earlier one that the start wrote there.
    assert hl.learner_users(ha_lab) == {n: (USERS, USERS) for n in topo.nodes}
    for address in topo.nodes.values():  # the start gave the earlier one her own password
        with redis.Redis(host=address, username=f"learner-{hl.EARLIER}",
                         password=hl.EARLIER_PASSWORD, socket_timeout=5) as r:
            assert r.execute_command("ACL", "WHOAMI") == f"learner-{hl.EARLIER}".encode()
    asyncio.run(hl.served(ann["REDIS_URL"], "ann", 1))
    bea = Keys("bea")
    with redis.Redis.from_url(ann["REDIS_URL"], decode_responses=True, socket_timeout=5) as a:
        assert a.execute_command("ACL", "WHOAMI") == "learner-ann"
        for command in (("EXISTS", bea.meta), ("ZCARD", bea.queue), ("SET", bea.meta, "x"),
                        ("SCAN", "0")):
            with pytest.raises(NoPermissionError):
                a.execute_command(*command)
    with httpx.Client(base_url=topo.api_url, timeout=10,
                      headers={"Authorization": f"Bearer {ann['ACD_API_KEY']}"}) as api:
        assert api.get("/v1/centers/bea/agents").status_code == 403
        agents = api.get("/v1/centers/ann/agents")
        assert agents.status_code == 200 and "a1" in agents.text, agents.text
    with httpx.Client(base_url=topo.api_url, timeout=10,
                      headers={"Authorization": f"Bearer {hl.EARLIER_KEY}"}) as api:
        assert api.get(f"/v1/centers/{hl.EARLIER}/agents").status_code == 200  # restored
        assert api.get("/v1/centers/ann/agents").status_code == 403
    listed = run_lab(ha_lab, "lab", "workshop", "list", timeout=60)
    assert listed.returncode == 0 and listed.stdout.count("user yes") == 3, listed.stdout
    # The refusals above are ann's alone, and only they are cleared: the check for
    # refusals after the drill still sees every other one.
    for node, address in topo.nodes.items():
        with hl.node_admin(ha_lab, address) as r:
            assert {e["username"] for e in r.acl_log()} <= {"learner-ann"}, node
            r.acl_log_reset()
    _workshop.update(primary=primary(run_dir),
                     pids={n: recorded_pid(run_dir, f"{n}/redis") for n in topo.nodes})


@pytest.mark.long  # 94 s: the plain run's drill and supervisor tests use the same lab
@pytest.mark.timeout(600)
def test_notebooks_nbval_strict_in_the_ha_lab(ha_lab: dict[str, str]) -> None:
    # The whole series through the VIP, as the HA lab's JupyterLab runs it: notebook 08
    # takes its live branch here (a real failover drill) and must still agree with the
    # committed outputs (its cells with run-dependent figures are checked by asserts).
    pid = int((Path(ha_lab["LAB_HOME"]) / "ha" / "run" / "jupyter.pid").read_text())
    env = kernel_env(pid)
    assert env["ACD_ENV"] == "ha"
    started = time.monotonic()
    proc = nbval(NOTEBOOKS, env, cell_timeout=240)
    took = time.monotonic() - started
    print(proc.stdout[-3000:], f"\nthe series took {took:.0f} s in the HA lab")
    assert proc.returncode == 0, f"{proc.stdout[-12000:]}\n{proc.stderr[-3000:]}"


@pytest.mark.timeout(150)
def test_drill_loses_no_contact(ha_lab: dict[str, str]) -> None:
    started = time.monotonic()
    proc = run_lab(ha_lab, "lab.drill", "--json", timeout=140)
    print(proc.stderr[-3000:], f"drill took {time.monotonic() - started:.1f} s")
    report = json.loads(proc.stdout)
    print(json.dumps(report["events"], indent=1))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert report["lost"] == 0 and report["duplicates"] == 0, report
    assert report["violations"] == [], report["violations"]
    assert report["components_survived"], report["components"]
    events = report["events"]
    assert len(events) == 4
    for event in events:
        assert event["offered"] > 0 and event["lost"] == 0, event
        assert event["assigned"] == event["offered"], event
        # the raw writes straight to Redis, next to the contacts through the API
        assert event["writes"]["acknowledged"] > 0 and event["writes"]["lost"] == 0, event
    kill = events[2]
    assert kill["event"].startswith("kill -9 primary")
    assert kill["client_errors"] > 0 and 0 < kill["outage_s"] < 15, kill
    assert kill["writes"]["failed"] > 0 and 0 < kill["writes"]["outage_s"] < 15, kill
    assert events[1]["outage_s"] < 10, events[1]
    # the old primary is back, as a replica
    assert sorted(report["final_roles"].values()) == ["master", "slave", "slave"]
    # ... brought back by the drill: the supervisor held off while it ran, then watched again
    log_file = Path(ha_lab["LAB_HOME"]) / "ha" / "logs" / "supervisor.log"

    def during_the_drill() -> str:
        return log_file.read_text().rsplit(f"at the request of lab.drill {report['center']}",
                                           1)[1]

    # said in the supervisor's round after the drill removed its hold
    wait_until(lambda: "watching again" in during_the_drill(), 10,
               "the supervisor to end the drill's hold")
    during = during_the_drill().split("watching again")[0]
    assert not re.search(r"restarted \S+ \(pid", during), log_file.read_text()


@pytest.mark.timeout(60)
def test_no_secret_on_a_command_line_or_in_a_log_and_nothing_refused(
        ha_lab: dict[str, str]) -> None:
    """After the lessons and the drill: every secret of .env (the Sentinels' passwords
    too) is absent from every command line and from every log; the files that must hold
    one (the nodes' ACL files and configs, sentinel.conf, the state file the supervisor
    restarts from) and every host folder are the owner's only; no node's and no Sentinel's
    ACL LOG has a refusal (each role had what it needed)."""
    values = read_env(Path(ha_lab["LAB_ENV_FILE"]))
    secrets = {k: v for k, v in values.items() if "PASSWORD" in k or "TOKEN" in k}
    assert len(secrets) >= 11, sorted(secrets)
    for name in LEARNERS:  # the workshop's learners (added above): their secrets too
        if connection_file(Path(ha_lab["LAB_HOME"]), name).exists():
            conn = hl.learner(ha_lab, name)
            secrets[f"{name}'s password"] = conn["REDIS_URL"].split(":")[2].split("@")[0]
            secrets[f"{name}'s API key"] = conn["ACD_API_KEY"]
    assert {"REDIS_SENTINEL_ADMIN_PASSWORD", "REDIS_SENTINEL_PEER_PASSWORD"} <= set(secrets)
    ps = "\n".join(command_lines().values())
    run_dir = Path(ha_lab["LAB_HOME"]) / "ha"
    logs = list(run_dir.rglob("*.log"))
    assert len(logs) >= 10, logs
    for key, value in secrets.items():
        assert value not in ps, f"{key} is on a command line"
        for log in logs:
            assert value.encode() not in log.read_bytes(), f"{key} is in {log}"
    for path in [*run_dir.rglob("*.acl"), *run_dir.rglob("*.conf"), *run_dir.rglob("*.cfg"),
                 run_dir / "state.json", *logs]:
        assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"
    for host in [p for p in run_dir.iterdir() if p.is_dir()]:
        assert host.stat().st_mode & 0o077 == 0, f"{host} is open to others"
    for name, address in topology(run_dir).nodes.items():
        with redis.Redis(host=address, port=6379, username="admin", socket_timeout=5,
                         password=values["REDIS_ADMIN_PASSWORD"], decode_responses=True) as r:
            refused = [(e["username"], e["reason"], e["object"]) for e in r.acl_log()]
        assert not refused, f"{name} refused: {refused[:10]}"
        # The Sentinels too: the lab's clients and their peers had what they needed
        # (the drill's failover ran through them), and they refuse an anonymous client.
        with redis.Redis(host=address, port=26379, username="sentinel_admin", socket_timeout=5,
                         password=values["REDIS_SENTINEL_ADMIN_PASSWORD"],
                         decode_responses=True) as s:
            refused = [(e["username"], e["reason"], e["object"]) for e in s.acl_log()]
        assert not refused, f"the Sentinel on {name} refused: {refused[:10]}"
        with redis.Redis(host=address, port=26379, socket_timeout=5, protocol=2) as anonymous, \
                pytest.raises(redis.AuthenticationError, match="Authentication required"):
            anonymous.execute_command("SENTINEL", "MASTERS")


@pytest.mark.timeout(300)
def test_the_supervisor_brings_back_a_killed_api_replica_dispatcher_and_primary(
    ha_lab: dict[str, str],
) -> None:
    """kill -9, as a crash would: each comes back in its namespace (the primary after
    Sentinel's failover, as a replica); /health through the VIP is 200 again, a contact
    posted afterwards is assigned, and none posted before is lost."""
    run_dir = Path(ha_lab["LAB_HOME"]) / "ha"
    topo = topology(run_dir)
    supervisor_log = run_dir / "logs" / "supervisor.log"
    key = read_env(Path(ha_lab["LAB_ENV_FILE"]))["ACD_API_KEY"]
    http = httpx.Client(base_url=topo.api_url, timeout=10,
                        headers={"Authorization": f"Bearer {key}"})
    center = "/v1/centers/supervised"
    posted: list[str] = []

    def assigned_after_posting() -> None:
        reply = http.post(f"{center}/contacts", json={"skills": ["en"]})
        assert reply.status_code == 201, reply.text
        url = f"{center}/contacts/{reply.json()['id']}"
        posted.append(url)
        wait_until(lambda: http.get(url).json()["state"] == "assigned", 30,
                   f"{url} to be assigned")
        assert http.post(f"{url}/complete").status_code == 200

    def dispatcher_connected(pid: int) -> bool:
        with topo.client() as r:
            return f"acd-dispatcher-{pid}" in {c.get("name") for c in r.client_list()}

    def health() -> dict[str, object]:
        reply = http.get("/health")
        return dict(reply.json()) if reply.status_code == 200 else {}

    api1 = next((a, p) for n, a, p in topo.api_servers if n == "api1")
    ready = {
        "api1/app": lambda pid: http_ok(f"http://{api1[0]}:{api1[1]}/health/live")(),
        "disp1/app": dispatcher_connected,
    }
    figures: dict[str, str] = {}
    with http:
        reply = http.post(f"{center}/agents", json={"id": "a1", "fname": "A", "lname": "B",
                                                    "skills": ["en"], "available": True})
        assert reply.status_code == 201, reply.text
        assigned_after_posting()
        old_primary = primary(run_dir)
        for key in ("api1/app", "disp1/app", f"{old_primary}/redis"):
            old = recorded_pid(run_dir, key)
            os.kill(old, signal.SIGKILL)
            killed = time.monotonic()

            def restarted(k: str = key, o: int = old) -> bool:
                pid = recorded_pid(run_dir, k)
                return pid != o and pid_alive(pid)

            wait_until(restarted, 60, f"the supervisor to restart {key}", interval=0.1)
            running = time.monotonic() - killed
            pid = recorded_pid(run_dir, key)
            wait_until(lambda: health().get("dispatchers") == 2, 60,
                       "/health through the VIP: 200 with both dispatchers", interval=0.1)
            healthy = time.monotonic() - killed
            if key.endswith("/redis"):
                wait_until(lambda: rejoined(old_primary, run_dir), 60,
                           f"{old_primary} to rejoin as a replica", interval=0.1)
            else:
                wait_until(lambda k=key, p=pid: ready[k](p), 60, f"{key} to serve",  # type: ignore[misc]
                           interval=0.1)
            figures[key] = (f"running again {running:.1f} s, /health 200 (2 dispatchers) "
                            f"{healthy:.1f} s, serving {time.monotonic() - killed:.1f} s "
                            "after the kill")
            print(f"kill -9 {key}: {figures[key]}")
            assigned_after_posting()
        new_primary = primary(run_dir)
        assert new_primary != old_primary
        with topo.client() as r:
            assert r.info("replication")["connected_slaves"] == 2
        lost = [url for url in posted if http.get(url).status_code != 200]
        assert lost == [] and len(posted) == 4
    rejoin = f"{old_primary} serves again as a replica of {new_primary}"
    # said in the supervisor's round after the rejoin
    wait_until(lambda: rejoin in supervisor_log.read_text(), 10, f"'{rejoin}' in its log")
    log = supervisor_log.read_text()
    for key in figures:
        assert f"restarted {key} (pid" in log, log
    assert "still name it the primary: waiting for their failover" in log, log


@pytest.mark.timeout(150)
def test_workshop_learners_outlive_failovers_and_remove_takes_them_off_every_node(
        ha_lab: dict[str, str]) -> None:
    """After the drill's and the supervisor test's failovers (or one of its own when run
    alone): every node still has the learners, the restarted ones from their ACL files,
    and ann works through the VIP on the new primary. Then ``remove``."""
    assert _workshop, "run with test_workshop_learners_on_the_ha_lab_reach_their_own_..."
    run_dir = Path(ha_lab["LAB_HOME"]) / "ha"
    topo = topology(run_dir)
    def pid(node: str) -> int:
        return recorded_pid(run_dir, f"{node}/redis")

    old = primary(run_dir)
    if old == _workshop["primary"] and pid(old) == _workshop["pids"][old]:
        print(f"{old} is the primary it was: this test fails it over")
        os.kill(pid(old), signal.SIGKILL)
        wait_until(lambda: primary(run_dir) != old, 30, "the Sentinels' failover")
        # the supervisor restarts it from its config, its users from its ACL file
        wait_until(lambda: rejoined(old, run_dir), 60, f"{old} to rejoin", interval=0.1)
    # The primary now was a replica at the add, or was restarted since (from its file).
    now = primary(run_dir)
    assert now != _workshop["primary"] or pid(now) != _workshop["pids"][now]
    assert [n for n in topo.nodes if pid(n) != _workshop["pids"][n]], "no node restarted"
    assert hl.learner_users(ha_lab) == {n: (USERS, USERS) for n in topo.nodes}
    ann = hl.learner(ha_lab, "ann")
    asyncio.run(hl.served(ann["REDIS_URL"], "ann", 2))
    for name in (*LEARNERS, hl.EARLIER):
        proc = run_lab(ha_lab, "lab", "workshop", "remove", name, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"user {len(topo.nodes)}," in proc.stdout, proc.stdout
    assert hl.learner_users(ha_lab) == {n: (set(), set()) for n in topo.nodes}
    assert learner_passwords(Path(ha_lab["LAB_HOME"])) == {}
    with redis.Redis.from_url(ann["REDIS_URL"], socket_timeout=5) as a, \
            pytest.raises(redis.AuthenticationError):
        a.ping()
    reply = httpx.get(f"{topo.api_url}/v1/centers/ann/agents", timeout=10,
                      headers={"Authorization": f"Bearer {ann['ACD_API_KEY']}"})
    assert reply.status_code == 401, reply.text
    with topo.client() as admin:
        assert not list(admin.scan_iter(match="{acd:ann}*"))
    listed = run_lab(ha_lab, "lab", "workshop", "list", timeout=60)
    assert "No learners" in listed.stdout, listed.stdout


@pytest.mark.timeout(90)
def test_stop_leaves_nothing_behind(ha_lab: dict[str, str]) -> None:
    home = Path(ha_lab["LAB_HOME"])
    state = json.loads((home / "ha" / "state.json").read_text())
    pids = [int(e["pid"]) for e in state["processes"].values()]
    pids += [int((home / "ha" / "run" / f"{n}.pid").read_text()) for n in ("jupyter",
                                                                          "supervisor")]
    proc = run_lab(ha_lab, "lab", "stop", timeout=80)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "removed bridge acdlab-br0" in proc.stdout
    assert not wait_gone(pids, 15), "processes left (even zombies)"
    assert not leftovers(home)
    assert not (home / "ha" / "state.json").exists()
    again = run_lab(ha_lab, "lab", "stop", timeout=30)
    assert again.returncode == 0 and "removed" not in again.stdout

