"""The lab's supervisor (lab.supervisor): a dead service is started again, a crash-looping
one with a growing backoff; in the lab as ./start.sh leaves it, kill -9 of a dispatcher,
of the API or of Redis is repaired and the ACD serves again, with its data."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path

import httpx
import pytest
import redis

from lab.lessons import running_lab
from lab.processes import Service, pid_alive, stop_pids, wait_until
from lab.supervisor import (
    STABLE_S,
    WAIT_AT_MOST_S,
    Hold,
    Supervisor,
    hold_file,
    holding,
    read_hold,
)

REPO = Path(__file__).resolve().parents[1]


def service(tmp_path: Path, name: str, code: str) -> Service:
    return Service(name, [sys.executable, "-c", code], tmp_path, healthy=lambda: True)


def test_a_crash_loop_backs_off_and_a_steady_service_is_left_alone(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Real processes, the supervisor's clock given by the test: when restarts happen
    is exact, however slow the machine."""
    caplog.set_level(logging.INFO, logger="lab.supervisor")
    crashing = service(tmp_path, "crashing", "import sys; sys.exit(3)")
    steady = service(tmp_path, "steady", "import time; time.sleep(120)")
    supervisor = Supervisor([crashing, steady], tmp_path / "beat")
    crash, _ = supervisor.watched
    try:
        supervisor.check(0.0)  # neither runs yet: both started at once
        assert (tmp_path / "beat").exists()
        first_steady = steady.pid()
        assert first_steady is not None and crash.process is not None

        now = 0.0
        for expected_delay in (1.0, 2.0, 4.0):
            previous = crash.process
            previous.wait(timeout=10)
            now += 0.5
            supervisor.check(now)  # noticed dead: no restart yet, a delay instead
            assert crash.process is previous and crash.next_start == now + expected_delay
            supervisor.check(now + expected_delay - 0.01)
            assert crash.process is previous, "restarted before its backoff ended"
            now += expected_delay
            supervisor.check(now)
            assert crash.process is not previous
        assert crash.failures == 3
        assert steady.pid() == first_steady, "the steady one was left alone"
        log = caplog.text
        assert "crashing (pid" in log and "exited (code 3)" in log
        assert "3 time(s) in a row: crash-looping? next restart in 4 s" in log
        assert log.count("restarted crashing") == 4

        # One that ran STABLE_S and more before it died is restarted at once.
        steady_pid = steady.pid()
        assert steady_pid is not None
        os.kill(steady_pid, signal.SIGKILL)
        wait_until(lambda: not pid_alive(steady_pid), 10, "the steady one to die")
        supervisor.check(STABLE_S + 0.1)
        assert steady.pid() not in (None, steady_pid)
        assert f"restarted steady (pid {steady_pid} -> {steady.pid()}) after exit" in caplog.text
    finally:
        stop_pids([p for p in (crashing.pid(), steady.pid()) if p], timeout=5)


def killed(service: Service) -> int:
    pid = service.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not pid_alive(pid), 10, f"{service.name} to die")
    return pid


def test_a_hold_stops_restarts_until_it_ends_or_its_holder_dies(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The drill's way of killing on purpose: while a hold of a live holder lasts, a dead
    service stays dead and the hold is acknowledged; then it is restarted at once."""
    caplog.set_level(logging.INFO, logger="lab.supervisor")
    steady = service(tmp_path, "steady", "import time; time.sleep(120)")
    hold = hold_file(tmp_path)
    hold.parent.mkdir(parents=True)
    ack = hold.with_suffix(".held")
    supervisor = Supervisor([steady], tmp_path / "beat", hold=hold)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        supervisor.check(0.0)
        now = 0.0  # each restart long enough after the one before: no crash loop
        for honoured, until in ((True, time.time() + 60), (False, time.time() - 1)):
            first = killed(steady)
            drill = Hold("the drill", holder.pid, until)
            hold.write_text(json.dumps(asdict(drill)))
            now += STABLE_S + 1
            supervisor.check(now)
            assert (steady.pid() is None) is honoured
            assert (read_hold(ack, honoured=False) == drill) is honoured
            hold.unlink()
            now += 1
            supervisor.check(now)
            assert steady.pid() not in (None, first) and not ack.exists()
        assert "holding off at the request of the drill" in caplog.text
        assert "the hold of the drill ended: watching again" in caplog.text

        first = killed(steady)  # a holder that died (a drill killed midway) holds nothing
        hold.write_text(json.dumps(asdict(Hold("dead drill", holder.pid, time.time() + 60))))
        holder.kill()
        holder.wait(timeout=10)
        supervisor.check(now + STABLE_S + 1)
        assert steady.pid() not in (None, first)
    finally:
        holder.kill()
        stop_pids([p for p in (steady.pid(),) if p], timeout=5)


def test_holding_waits_for_the_running_supervisor_to_acknowledge(tmp_path: Path) -> None:
    steady = service(tmp_path, "steady", "import time; time.sleep(120)")
    supervisor = Supervisor([steady], tmp_path / "beat", hold=hold_file(tmp_path))
    with holding(tmp_path, "nobody watching", 60) as running:
        assert not running  # no supervisor pid file: nothing to wait for
    supervisor.check(0.0)  # starts it
    (tmp_path / "run" / "supervisor.pid").write_text(f"{os.getpid()}\n")
    stop = threading.Event()
    done = [0]  # rounds checked

    def rounds() -> None:
        while not stop.wait(0.05):
            supervisor.check(time.monotonic())
            done[0] += 1

    thread = threading.Thread(target=rounds, daemon=True)
    try:
        thread.start()
        with holding(tmp_path, "the test", 60) as running:
            assert running and supervisor.held is not None and supervisor.held.by == "the test"
            first = killed(steady)
            seen = done[0]
            wait_until(lambda: done[0] >= seen + 3, 10, "three rounds of the supervisor")
            assert steady.pid() is None, "restarted while held"
        assert not hold_file(tmp_path).exists()
        wait_until(lambda: steady.pid() not in (None, first), 10, "the restart after the hold")
    finally:
        stop.set()
        thread.join(timeout=10)
        stop_pids([p for p in (steady.pid(),) if p], timeout=5)
    (tmp_path / "run" / "supervisor.pid").write_text("999999999\n")
    with holding(tmp_path, "stale pid file", 60) as running:
        assert not running


def test_a_restart_waits_for_its_reason_at_most_wait_at_most_s(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The HA lab's dead Redis waits for Sentinel's failover: restart_wait names why."""
    caplog.set_level(logging.INFO, logger="lab.supervisor")
    a = service(tmp_path, "a", "import time; time.sleep(120)")
    b = service(tmp_path, "b", "import time; time.sleep(120)")
    reasons = {"a": "no failover yet", "b": "no failover yet"}
    supervisor = Supervisor([a, b], tmp_path / "beat",
                            restart_wait=lambda s: reasons.get(s.name))
    try:
        supervisor.check(0.0)  # not started yet: waits too
        assert a.pid() is None
        reasons.clear()
        supervisor.check(0.1)
        first_a, first_b = killed(a), killed(b)
        reasons.update({"a": "no failover yet", "b": "no failover yet"})
        supervisor.check(STABLE_S + 1)  # both noticed dead now
        supervisor.check(STABLE_S + WAIT_AT_MOST_S)
        assert a.pid() is None and b.pid() is None
        del reasons["a"]  # a's failover happened
        supervisor.check(STABLE_S + WAIT_AT_MOST_S + 0.5)
        assert a.pid() not in (None, first_a) and b.pid() is None
        supervisor.check(STABLE_S + 1 + WAIT_AT_MOST_S)  # b waited long enough
        assert b.pid() not in (None, first_b)
        assert caplog.text.count("b is dead, not restarted yet: no failover yet") == 1
        assert "b dead for 30 s and still no failover yet: restarting it anyway" in caplog.text
    finally:
        stop_pids([p for p in (a.pid(), b.pid()) if p], timeout=5)


def test_watch_keeps_the_history_of_what_it_watched_already(tmp_path: Path) -> None:
    a, b = (service(tmp_path, n, "import sys; sys.exit(1)") for n in ("a", "b"))
    supervisor = Supervisor([a], tmp_path / "beat")
    supervisor.watched[0].failures = 2
    supervisor.watch([b, a])
    assert [w.service.name for w in supervisor.watched] == ["b", "a"]
    assert supervisor.watched[1].failures == 2 and supervisor.watched[0].failures == 0
    supervisor.watch([b])
    assert [w.service.name for w in supervisor.watched] == ["b"]


def pid_of(home: Path, name: str) -> int:
    return int((home / "run" / f"{name}.pid").read_text())


def restarted(home: Path, name: str, old: int) -> bool:
    try:
        pid = pid_of(home, name)
    except (OSError, ValueError):
        return False
    return pid != old and pid_alive(pid)


@pytest.mark.timeout(300)
def test_the_lab_repairs_a_killed_dispatcher_api_and_redis(tmp_path: Path) -> None:
    with running_lab(tmp_path) as lab:
        home, env = lab.home, lab.kernel_env
        assert pid_alive(pid_of(home, "supervisor"))
        api_url = env["API_URL"]
        http = httpx.Client(base_url=api_url, timeout=5,  # the lab's key, as kernels get it
                            headers={"Authorization": f"Bearer {env['ACD_API_KEY']}"})
        center = "/v1/centers/supervised"

        def health() -> int:
            return http.get("/health").status_code

        def assigned_after_posting() -> str:
            contact = http.post(f"{center}/contacts", json={"skills": ["en"]})
            assert contact.status_code == 201, contact.text
            url = f"{center}/contacts/{contact.json()['id']}"
            wait_until(lambda: http.get(url).json()["state"] == "assigned", 30,
                       f"{url} to be assigned")
            agent: str = http.get(url).json()["agent"]
            http.post(f"{url}/complete")
            return agent

        with http:
            r = http.post(f"{center}/agents", json={"id": "a1", "fname": "A", "lname": "B",
                                                    "skills": ["en"], "available": True})
            assert r.status_code == 201, r.text

            for name in ("dispatcher-1", "api", "redis"):
                old = pid_of(home, name)
                os.kill(old, signal.SIGKILL)
                killed = time.monotonic()
                wait_until(partial(restarted, home, name, old), 30,
                           f"the supervisor to restart {name}")
                running_again = time.monotonic() - killed
                wait_until(lambda: health() == 200, 30, f"/health 200 after {name} restarted")
                print(f"kill -9 {name}: restarted after {running_again:.1f} s, /health 200 "
                      f"after {time.monotonic() - killed:.1f} s")
                # The agent created before survives (Redis: from its AOF), and serves.
                assert http.get(f"{center}/agents/a1").status_code == 200
                assert assigned_after_posting() == "a1"

            log_file = home / "logs" / "supervisor.log"
            # checked in the round after the restart, which may not have come yet
            wait_until(lambda: "acd functions library present" in log_file.read_text(), 10,
                       "the supervisor to check the functions of the restarted Redis")
            supervisor_log = log_file.read_text()
            for name in ("dispatcher-1", "api", "redis"):
                assert f"restarted {name} (pid" in supervisor_log, supervisor_log
            assert "leftover process(es) of its group" in supervisor_log  # uvicorn workers
            with redis.Redis.from_url(env["REDIS_URL"], socket_timeout=5,
                                      decode_responses=True) as r0:
                assert r0.function_list(library="acd")
                # ...and rewrote its AOF, which a crash may have torn (README, Reliability).
                wait_until(lambda: int(r0.info("persistence")["aof_rewrites"]) >= 1, 30,
                           "the supervisor to rewrite the restarted Redis's AOF")

                # ./start.sh right after a death: it or the supervisor starts the dead
                # one, never both (the supervisor is stopped while start.sh starts it).
                old = pid_of(home, "dispatcher-2")
                os.kill(old, signal.SIGKILL)
                started = subprocess.run(["./start.sh"], cwd=REPO, env=lab.env, text=True,
                                         capture_output=True, timeout=120)
                assert started.returncode == 0, started.stdout + started.stderr
                wait_until(lambda: restarted(home, "dispatcher-2", old), 30,
                           "dispatcher-2 to run again")

                def dispatcher_clients() -> set[str]:
                    return {c["name"] for c in r0.client_list()
                            if c["name"].startswith("acd-dispatcher-")}

                expected = {f"acd-dispatcher-{pid_of(home, n)}"
                            for n in ("dispatcher-1", "dispatcher-2")}
                wait_until(lambda: dispatcher_clients() == expected, 30,
                           f"exactly the dispatchers of the pid files: {expected}")
                assert pid_alive(pid_of(home, "supervisor"))
