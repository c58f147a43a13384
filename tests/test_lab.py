"""start.sh and stop.sh for real: every component up and healthy, idempotent, data kept
across restarts, purged on request, nothing left running, a failed start names the
component and leaves nothing half-running."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from lab.embedded import free_port
from lab.envfile import read_env
from lab.processes import pid_alive

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def lab_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {**os.environ,
           "LAB_HOME": str(tmp_path / "home"), "LAB_ENV_FILE": str(tmp_path / "lab.env"),
           "LAB_REDIS_PORT": str(free_port()), "LAB_API_PORT": str(free_port()),
           "LAB_JUPYTER_PORT": str(free_port())}
    yield env
    subprocess.run(["./stop.sh", "--purge"], cwd=REPO, env=env, timeout=60,
                   capture_output=True)


def run(cmd: list[str], env: dict[str, str], ok: bool = True) -> str:
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    out = proc.stdout + proc.stderr
    assert (proc.returncode == 0) == ok, out
    return out


def pids(env: dict[str, str]) -> dict[str, int]:
    run_dir = Path(env["LAB_HOME"]) / "run"
    return {p.stem: int(p.read_text()) for p in run_dir.glob("*.pid")}


@pytest.mark.timeout(300)
def test_start_stop_restart_purge(lab_env: dict[str, str]) -> None:
    out = run(["./start.sh"], lab_env)
    assert "JupyterLab" in out and "token=" in out
    started = pids(lab_env)
    assert set(started) == {"redis", "api", "dispatcher-1", "dispatcher-2", "jupyter",
                            "supervisor"}
    settings = read_env(Path(lab_env["LAB_ENV_FILE"]))
    assert {"REDIS_URL", "API_URL", "JUPYTER_URL", "ACD_API_KEY"} <= set(settings)
    auth = {"Authorization": f"Bearer {settings['ACD_API_KEY']}"}
    assert oct(Path(lab_env["LAB_ENV_FILE"]).stat().st_mode)[-3:] == "600"

    # Everything answers; a contact queued through the API is assigned by a dispatcher.
    api = settings["API_URL"]
    assert httpx.get(f"{api}/health", timeout=5).json()["status"] == "ok"
    assert httpx.get(settings["JUPYTER_URL"].replace("/lab?", "/api/status?"),
                     timeout=5).status_code == 200
    assert httpx.get(f"{api}/v1/centers/labcheck/stats", timeout=5).status_code == 401
    r = httpx.post(f"{api}/v1/centers/labcheck/agents", timeout=5, headers=auth,
                   json={"id": "a1", "fname": "A", "lname": "B", "skills": ["en"],
                         "available": True})
    assert r.status_code == 201, r.text
    cid = httpx.post(f"{api}/v1/centers/labcheck/contacts", json={"skills": ["en"]},
                     timeout=5, headers=auth).json()["id"]
    for _ in range(200):
        state = httpx.get(f"{api}/v1/centers/labcheck/contacts/{cid}", timeout=5,
                          headers=auth).json()
        if state["state"] == "assigned":
            break
    assert state["state"] == "assigned" and state["agent"] == "a1"
    with redis.Redis.from_url(settings["REDIS_URL"], socket_timeout=5) as r0:
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=int(lab_env["LAB_REDIS_PORT"]), password="wrong",
                        socket_timeout=5).ping()
        assert r0.ping()

    # The Python entry notebooks use says the same.
    said = run([sys.executable, "-c", "import lab; i = lab.info(); print(i.environment, "
                "i.redis_url, sorted(k for k, v in lab.status().items() if v))"], lab_env)
    assert said.split(maxsplit=2)[:2] == ["embedded", settings["REDIS_URL"]], said
    assert "dispatcher-2" in said and "jupyter" in said

    # Again: harmless, reports what runs, starts nothing new.
    assert "already running" in run(["./start.sh"], lab_env)
    assert pids(lab_env) == started

    # Stop: nothing of ours is left; the data stays.
    run(["./stop.sh"], lab_env)
    assert not [name for name, pid in started.items() if pid_alive(pid)]
    assert not pids(lab_env)
    # Rotate the secrets while it is stopped: the next start has new ones, the old refused.
    assert "REDIS_ADMIN_PASSWORD" in run([sys.executable, "-m", "lab", "rotate"], lab_env)
    run(["./start.sh"], lab_env)
    rotated = read_env(Path(lab_env["LAB_ENV_FILE"]))
    assert rotated["REDIS_URL"] != settings["REDIS_URL"]
    assert rotated["JUPYTER_TOKEN"] != settings["JUPYTER_TOKEN"]
    assert rotated["ACD_API_KEY"] != settings["ACD_API_KEY"]
    assert httpx.get(f"{api}/v1/centers/labcheck/agents/a1", timeout=5,
                     headers={"Authorization": f"Bearer {rotated['ACD_API_KEY']}"}
                     ).status_code == 200
    # The old key is revoked with the rotation, the old password refused.
    assert httpx.get(f"{api}/v1/centers/labcheck/agents/a1", timeout=5,
                     headers=auth).status_code == 401
    with redis.Redis.from_url(rotated["REDIS_URL"], socket_timeout=5) as new:
        assert new.ping()
    with (redis.Redis.from_url(settings["REDIS_URL"], socket_timeout=5,
                               retry=Retry(NoBackoff(), 0)) as old,
          pytest.raises(redis.AuthenticationError)):
        old.ping()
    run(["./stop.sh", "--purge"], lab_env)
    assert not (Path(lab_env["LAB_HOME"]) / "data").exists()


@pytest.mark.timeout(120)
def test_a_failed_start_names_the_component_and_leaves_nothing_running(
        lab_env: dict[str, str]) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(lab_env["LAB_API_PORT"])))
        squatter.listen()
        out = run(["./start.sh"], lab_env, ok=False)
    assert "api" in out and "LAB_API_PORT" in out
    assert not pids(lab_env), "redis, started before the api failed, was stopped again"
