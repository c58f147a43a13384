"""Bring up the Redis Enterprise environment and bootstrap it through the REST API.

``up()``: checks for a Docker engine, writes REDIS_PASSWORD to .env (kept if present),
makes the self-signed certificate for HAProxy's 8443 front, ``docker compose up -d
--build``, then ``bootstrap()``: creates the cluster on re1 (/v1/bootstrap/create_cluster),
joins re2 and re3 (/v1/bootstrap/join_cluster), waits for 3 active nodes (/v1/nodes),
creates the database from database.json (/v1/bdbs), waits until it is active and
answers PING through the VIP, then writes REDIS_URL, API_URL and JUPYTER_URL to .env.
Every wait has a deadline.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from lab.errors import LabError

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"
DATABASE_JSON = HERE / "database.json"
ENV_FILE = REPO / ".env"
CERT_DIR = REPO / ".lab" / "enterprise" / "certs"
PROJECT = "acd-enterprise"

VIP = "192.168.20.100"
NODES = {"re1": "192.168.20.11", "re2": "192.168.20.12", "re3": "192.168.20.13"}
CLUSTER_NAME = "acd.lab.local"
NODE_PATHS = {
    "persistent_path": "/var/opt/redislabs/persist",
    "ephemeral_path": "/var/opt/redislabs/tmp",
}


class DockerUnavailable(LabError):
    """No Docker engine (or no Compose v2) is reachable."""


class EnterpriseError(LabError):
    """The cluster or the database could not be set up."""


# --------------------------------------------------------------------------- docker


def require_docker(timeout: float = 10) -> None:
    """Raise DockerUnavailable with a clear message unless `docker compose` can work."""
    docker = shutil.which("docker")
    hint = (
        "The Enterprise environment needs a Docker engine with Compose v2. Without "
        "Docker, run the open-source HA lab instead: sudo python -m lab.ha start"
    )
    if docker is None:
        raise DockerUnavailable(f"the docker client is not installed. {hint}")
    try:
        info = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise DockerUnavailable(f"no Docker engine answered within {timeout}s. {hint}") from exc
    if info.returncode != 0 or not info.stdout.strip():
        detail = (info.stderr or info.stdout).strip().splitlines()
        last = detail[-1] if detail else "docker info failed"
        raise DockerUnavailable(f"no Docker engine is reachable ({last}). {hint}")
    compose = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, timeout=timeout
    )
    if compose.returncode != 0:
        raise DockerUnavailable(
            f"the Docker Compose v2 plugin is missing (`docker compose`). {hint}"
        )


def _compose(*args: str, timeout: float = 1800) -> None:
    cmd = ["docker", "compose", "-p", PROJECT, "-f", str(COMPOSE_FILE), *args]
    print("+", " ".join(cmd), file=sys.stderr)
    proc = subprocess.run(cmd, cwd=REPO, timeout=timeout)
    if proc.returncode != 0:
        raise EnterpriseError(f"{' '.join(cmd)} failed ({proc.returncode})")


def up() -> None:
    require_docker()
    env = read_env_file()
    password = env.get("REDIS_PASSWORD") or secrets.token_hex(16)
    update_env_file({"REDIS_PASSWORD": password})
    make_certificate(CERT_DIR)
    _compose("up", "-d", "--build")
    bootstrap(password)


def down(volumes: bool = False) -> None:
    require_docker()
    _compose("down", "--remove-orphans", *(["--volumes"] if volumes else []))


# --------------------------------------------------------------------------- files


def read_env_file(path: Path = ENV_FILE) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()
    return values


def update_env_file(values: dict[str, str], path: Path = ENV_FILE) -> None:
    """Set ``values`` in the .env file, keeping every other line as it is."""
    lines = path.read_text().splitlines() if path.exists() else []
    done: set[str] = set()
    out = []
    for line in lines:
        key = line.partition("=")[0].strip()
        if "=" in line and key in values and not line.lstrip().startswith("#"):
            out.append(f"{key}={values[key]}")
            done.add(key)
        else:
            out.append(line)
    out += [f"{k}={v}" for k, v in values.items() if k not in done]
    path.write_text("\n".join(out) + "\n")
    os.chmod(path, 0o600)


def make_certificate(cert_dir: Path, common_name: str = "acd-lab.local") -> Path:
    """A self-signed certificate + key in one PEM for HAProxy's 8443 front (openssl CLI)."""
    cert_dir.mkdir(parents=True, exist_ok=True)
    pem = cert_dir / "haproxy.pem"
    if pem.exists():
        return pem
    if shutil.which("openssl") is None:
        raise EnterpriseError("openssl is needed to make the 8443 certificate")
    key, crt = cert_dir / "haproxy.key", cert_dir / "haproxy.crt"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "825",
            "-subj",
            f"/CN={common_name}",
            "-keyout",
            str(key),
            "-out",
            str(crt),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    pem.write_bytes(crt.read_bytes() + key.read_bytes())
    os.chmod(pem, 0o644)  # read by HAProxy inside the container
    return pem


def database_definition(password: str | None = None, path: Path = DATABASE_JSON) -> dict[str, Any]:
    """database.json with the password placeholder filled from ``password`` or $REDIS_PASSWORD."""
    text = path.read_text()
    pw = password if password is not None else os.environ.get("REDIS_PASSWORD", "")
    if "${REDIS_PASSWORD}" in text:
        if not pw:
            raise EnterpriseError("REDIS_PASSWORD is not set")
        text = text.replace("${REDIS_PASSWORD}", pw)
    definition: dict[str, Any] = json.loads(text)
    return definition


# --------------------------------------------------------------------------- REST API


def _wait(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 2.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except (httpx.HTTPError, OSError, ValueError, KeyError) as exc:
            last = exc
        time.sleep(interval)
    raise EnterpriseError(
        f"timed out after {timeout}s waiting for {what}"
        + (f" (last error: {last})" if last else "")
    )


def _api(host: str, auth: tuple[str, str] | None = None) -> httpx.Client:
    # The nodes present their own self-signed certificates.
    return httpx.Client(base_url=f"https://{host}:9443", auth=auth, verify=False, timeout=30)


def bootstrap(password: str | None = None, timeout: float = 600) -> None:
    env = read_env_file()
    password = password or os.environ.get("REDIS_PASSWORD") or env.get("REDIS_PASSWORD")
    if not password:
        raise EnterpriseError("no REDIS_PASSWORD (in the environment or .env)")
    user = os.environ.get("RE_ADMIN_USER", env.get("RE_ADMIN_USER", "admin@acd.lab"))
    admin_pw = os.environ.get("RE_ADMIN_PASSWORD", env.get("RE_ADMIN_PASSWORD", "")) or password
    update_env_file({"RE_ADMIN_USER": user, "RE_ADMIN_PASSWORD": admin_pw})
    creds = {"username": user, "password": admin_pw}
    first, *others = NODES.items()

    def bootstrap_idle(addr: str) -> bool:
        with _api(addr) as c:
            state = c.get("/v1/bootstrap").json()["bootstrap_status"]["state"]
        return state in ("idle", "completed")

    for _name, addr in NODES.items():
        _wait(lambda a=addr: bootstrap_idle(a), timeout, f"the REST API of {addr}")  # type: ignore[misc]

    with _api(first[1], (user, admin_pw)) as c:
        if c.get("/v1/nodes").status_code != 200:  # not yet a cluster
            reply = _api(first[1]).post(
                "/v1/bootstrap/create_cluster",
                json={
                    "action": "create_cluster",
                    "cluster": {"name": CLUSTER_NAME},
                    "node": {"paths": NODE_PATHS},
                    "credentials": creds,
                },
            )
            if reply.status_code >= 400:
                raise EnterpriseError(f"create_cluster: {reply.status_code} {reply.text}")
    _wait(
        lambda: _api(first[1], (user, admin_pw)).get("/v1/nodes").status_code == 200,
        timeout,
        "the cluster on re1",
    )

    for name, addr in others:

        def joined(a: str = addr) -> bool:
            with _api(first[1], (user, admin_pw)) as c:
                return any(n.get("addr") == a for n in c.get("/v1/nodes").json())

        if joined():
            continue
        reply = _api(addr).post(
            "/v1/bootstrap/join_cluster",
            json={
                "action": "join_cluster",
                "cluster": {"nodes": [first[1]]},
                "node": {"paths": NODE_PATHS},
                "credentials": creds,
            },
        )
        if reply.status_code >= 400:
            raise EnterpriseError(f"join_cluster {name}: {reply.status_code} {reply.text}")
        _wait(joined, timeout, f"{name} to join the cluster")

    def nodes_active() -> bool:
        with _api(first[1], (user, admin_pw)) as c:
            nodes = c.get("/v1/nodes").json()
        return len(nodes) == len(NODES) and all(n.get("status") == "active" for n in nodes)

    _wait(nodes_active, timeout, "3 active nodes")

    definition = database_definition(password)
    with _api(first[1], (user, admin_pw)) as c:
        existing = [b for b in c.get("/v1/bdbs").json() if b.get("name") == definition["name"]]
        if existing:
            uid = existing[0]["uid"]
        else:
            reply = c.post("/v1/bdbs", json=definition)
            if reply.status_code >= 400:
                raise EnterpriseError(f"create database: {reply.status_code} {reply.text}")
            uid = reply.json()["uid"]

    def db_active() -> bool:
        with _api(first[1], (user, admin_pw)) as c:
            return bool(c.get(f"/v1/bdbs/{uid}").json().get("status") == "active")

    _wait(db_active, timeout, f"database {uid} to be active")
    _wait(
        lambda: _redis_ping(VIP, definition["port"], password),
        timeout,
        f"the database through the VIP {VIP}:{definition['port']}",
        interval=1,
    )
    update_env_file(
        {
            "REDIS_URL": f"redis://:{password}@{VIP}:{definition['port']}/0",
            "API_URL": f"http://{VIP}:8000",
            "JUPYTER_URL": os.environ.get(
                "JUPYTER_URL", env.get("JUPYTER_URL", "http://127.0.0.1:8888/lab")
            ),
        }
    )
    print(
        f"lab.enterprise: database {definition['name']} ready at {VIP}:{definition['port']}; "
        f"admin console https://{VIP}:8443 ({user}); .env updated",
        file=sys.stderr,
    )


def _redis_ping(host: str, port: int, password: str) -> bool:
    with socket.create_connection((host, port), timeout=2) as s:
        s.settimeout(2)
        s.sendall(f"AUTH {password}\r\nPING\r\n".encode())
        data = b""
        while b"PONG" not in data and len(data) < 1024:
            chunk = s.recv(1024)
            if not chunk:
                break
            data += chunk
        return b"+OK" in data and b"+PONG" in data
