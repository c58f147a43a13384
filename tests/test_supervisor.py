"""The lab's supervisor (lab.supervisor): a dead service is started again, a crash-looping
one with a growing backoff; in the lab as ./start.sh leaves it, kill -9 of a dispatcher,
of the API or of Redis is repaired and the ACD serves again, with its data."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import httpx
import pytest
import redis

from lab.lessons import running_lab
from lab.processes import Service, pid_alive, stop_pids, wait_until
from lab.supervisor import STABLE_S, Supervisor

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
        http = httpx.Client(base_url=api_url, timeout=5)
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
