"""The embedded lab: Redis, the REST API, two dispatchers and JupyterLab on this machine,
and a supervisor (lab.supervisor) that restarts any of them that dies.

Everything lives under the lab home (``.lab/`` in the repository, or ``$LAB_HOME``):
``data/`` (Redis AOF), ``logs/``, ``run/`` (pid files). The ``.env`` file at the
repository root (or ``$LAB_ENV_FILE``) tells every client where things are; the Redis
password is generated once and kept there.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

from lab import redis_users
from lab.apikeys import lab_key
from lab.embedded import EmbeddedRedis
from lab.envfile import read_env, write_env
from lab.learners import learner_passwords
from lab.processes import Service, StartError

REPO = Path(__file__).resolve().parents[1]
SUPERVISOR = "supervisor"  # the name of its service, pid file and log


def supervisor_file(run_dir: Path, suffix: str) -> Path:
    """The supervisor's ``pid``, ``beat`` or ``hold`` file of the lab whose run dir (home)
    is ``run_dir`` (lab.supervisor)."""
    return run_dir / "run" / f"{SUPERVISOR}.{suffix}"


def supervisor_service(run_dir: Path, options: list[str], env: dict[str, str]) -> Service:
    """``python -m lab.supervisor [options]`` as a Service of the lab in ``run_dir``: ready
    once it touched its beat file after it started (its first round of checks is done)."""
    beat, pid_file = supervisor_file(run_dir, "beat"), supervisor_file(run_dir, "pid")

    def checking() -> bool:
        return beat.stat().st_mtime >= pid_file.stat().st_mtime

    return Service(SUPERVISOR, [sys.executable, "-m", "lab.supervisor", *options], run_dir,
                   checking, env, start_timeout=30, cwd=REPO)


@dataclass(frozen=True)
class LabConfig:
    home: Path
    env_file: Path
    redis_port: int
    api_port: int
    jupyter_port: int
    api_workers: int = 2
    dispatchers: int = 2
    # Where Redis and the REST API listen: 127.0.0.1, or 0.0.0.0 for a workshop whose
    # learners reach this machine over the LAN (lab.workshop add --host).
    bind: str = "127.0.0.1"

    @classmethod
    def from_environment(cls) -> LabConfig:
        env = os.environ
        return cls(
            home=Path(env.get("LAB_HOME", REPO / ".lab")),
            env_file=Path(env.get("LAB_ENV_FILE", REPO / ".env")),
            redis_port=int(env.get("LAB_REDIS_PORT", "16379")),
            api_port=int(env.get("LAB_API_PORT", "8000")),
            jupyter_port=int(env.get("LAB_JUPYTER_PORT", "8888")),
            api_workers=int(env.get("LAB_API_WORKERS", "2")),
            dispatchers=int(env.get("LAB_DISPATCHERS", "2")),
            bind=listen_address(env.get("LAB_BIND", "127.0.0.1")),
        )


BIND_CHOICES = ("127.0.0.1", "0.0.0.0")


def listen_address(value: str) -> str:
    """LAB_BIND: 127.0.0.1 (this machine only) or 0.0.0.0 (every interface: learners on
    the LAN; every Redis user and API route needs its password or key)."""
    if value not in BIND_CHOICES:
        raise ValueError(f"LAB_BIND {value!r}: use 127.0.0.1 (this machine only) or 0.0.0.0 "
                         "(every interface, for a workshop over the LAN)")
    return value


def http_ok(url: str) -> Callable[[], bool]:
    """A health check: GET ``url`` answers 200."""

    def check() -> bool:
        return httpx.get(url, timeout=2).status_code == 200
    return check


def port_taken(port: int) -> bool:
    """Something listens on 127.0.0.1:``port`` already."""
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class EmbeddedLab:
    """Start, stop and describe the embedded lab."""

    def __init__(self, config: LabConfig | None = None) -> None:
        self.config = config or LabConfig.from_environment()
        self.env = read_env(self.config.env_file)
        self.passwords = redis_users.passwords(self.env, redis_users.EMBEDDED_ROLES)
        self.password = self.passwords["lab"]
        self.jupyter_token = self.env.get("JUPYTER_TOKEN") or secrets.token_hex(16)
        # The lab's admin key for the REST API: checked against Redis (and created if
        # missing) by start(); see lab.apikeys.
        self.api_key = self.env.get("ACD_API_KEY", "")
        self.redis = EmbeddedRedis(self.config.home, self.config.redis_port,
                                   users=self.passwords,
                                   learners=lambda: learner_passwords(self.config.home),
                                   bind=self.config.bind)

    # -- what runs where ---------------------------------------------------------------
    @property
    def urls(self) -> dict[str, str]:
        c = self.config
        return {
            "REDIS_URL": self.redis.url_for("lab"),
            "API_URL": f"http://127.0.0.1:{c.api_port}",
            "JUPYTER_URL": f"http://127.0.0.1:{c.jupyter_port}/lab?token={self.jupyter_token}",
        }

    def client_env(self) -> dict[str, str]:
        """What .env holds: where everything is, every Redis role's password and URL
        (lab.redis_users), Jupyter's token, the lab's REST API key."""
        return {**self.urls, "ACD_ENV": "embedded", "JUPYTER_TOKEN": self.jupyter_token,
                "ACD_API_KEY": self.api_key,
                **redis_users.env_entries(self.passwords, "127.0.0.1", self.config.redis_port)}

    def role_env(self, role: str) -> dict[str, str]:
        """A component's environment: REDIS_URL is its own role's (secrets reach it there,
        never on its command line); the other roles' passwords are not in it."""
        return {**self.urls, "ACD_ENV": "embedded", "PYTHONPATH": str(REPO),
                "REDIS_URL": self.redis.url_for(role)}

    def services(self) -> list[Service]:
        c, py = self.config, sys.executable
        api = Service(
            "api", [py, "-m", "uvicorn", "acd.api.app:app", "--host", c.bind,
                    "--port", str(c.api_port), "--workers", str(c.api_workers)],
            c.home, http_ok(f"http://127.0.0.1:{c.api_port}/health/live"),
            self.role_env("api"), cwd=REPO)
        dispatchers = [
            Service(f"dispatcher-{i + 1}", [py, "-m", "acd.dispatcher"], c.home,
                    self._dispatcher_connected(f"dispatcher-{i + 1}"),
                    self.role_env("dispatcher"), cwd=REPO)
            for i in range(c.dispatchers)
        ]
        # The token reaches JupyterLab in its environment (JUPYTER_TOKEN), not its argv.
        # The kernels' API client sends the lab's key (lab.api_key()).
        env = {**self.role_env("lab"), "JUPYTER_TOKEN": self.jupyter_token,
               "ACD_API_KEY": self.api_key}
        jupyter = Service(
            "jupyter", [py, "-m", "jupyter", "lab", "--no-browser", "--ip", "127.0.0.1",
                        "--port", str(c.jupyter_port),
                        f"--ServerApp.root_dir={REPO}",
                        # window.jupyterapp: the suite drives this very JupyterLab in a
                        # browser (Run All, widgets) through the app's commands
                        "--LabApp.expose_app_in_browser=True",
                        *(["--allow-root"] if os.geteuid() == 0 else [])],
            c.home,
            http_ok(f"http://127.0.0.1:{c.jupyter_port}/api/status?token={self.jupyter_token}"),
            env, start_timeout=90, cwd=REPO)
        # Last: started once everything it watches runs, stopped before any of it stops
        # (it would restart what stop.sh stops).
        supervisor = supervisor_service(
            c.home, [], {**self.role_env("admin"), "LAB_HOME": str(c.home),
                         "LAB_ENV_FILE": str(c.env_file)})
        return [self.redis, api, *dispatchers, jupyter, supervisor]

    def _dispatcher_connected(self, name: str) -> Callable[[], bool]:
        def check() -> bool:
            service = next(s for s in self.services() if s.name == name)
            pid = service.pid()
            with self.redis.client() as r:
                names = {c.get("name") for c in r.client_list()}
            return pid is not None and f"acd-dispatcher-{pid}" in names
        return check

    def status(self) -> dict[str, int | None]:
        return {s.name: s.pid() for s in self.services()}

    # -- start and stop ----------------------------------------------------------------
    def start(self, echo: Callable[[str], None] = print) -> None:
        """Start what is not running; on a failure stop what this call started."""
        started: list[Service] = []
        self._pause_supervisor(echo)
        try:
            # Redis first: the lab's API key lives there, and the others' environment
            # (client_env) carries it.
            if self._start(self.redis, echo):
                started.append(self.redis)
            self.load_functions()  # this checkout's library, if it changed
            self.api_key = lab_key(self.redis.url_for("deployer"), self.api_key)
            write_env(self.config.env_file, self.client_env())
            for service in self.services()[1:]:
                if self._start(service, echo):
                    started.append(service)
        except (StartError, OSError, redis.RedisError) as exc:
            for service in reversed(started):
                service.stop()
            raise StartError(str(exc)) from exc

    def _start(self, service: Service, echo: Callable[[str], None]) -> bool:
        """Start ``service`` unless it runs; whether this call started it."""
        if service.running():
            echo(f"  {service.name:<13} already running (pid {service.pid()})")
            return False
        ports = {"redis": self.config.redis_port, "api": self.config.api_port,
                 "jupyter": self.config.jupyter_port}
        port = ports.get(service.name)
        if port and port_taken(port):
            raise StartError(
                f"{service.name}: port {port} is in use by another program; "
                f"set LAB_{service.name.upper()}_PORT to a free port")
        service.start()
        echo(f"  {service.name:<13} started (pid {service.pid()}), log {service.log_file}")
        return True

    def _pause_supervisor(self, echo: Callable[[str], None]) -> None:
        """Stop the supervisor when something it watches is down: this start starts that
        (the supervisor might too, and two copies would run), then the supervisor again."""
        services = self.services()
        supervisor = services[-1]
        if supervisor.running() and not all(s.running() for s in services[:-1]):
            supervisor.stop()
            echo(f"  {SUPERVISOR:<13} stopped while this start starts what is down")

    def load_functions(self) -> None:
        """Load the acd Functions library into the lab's Redis unless it has it."""
        import asyncio

        from acd.connection import connect
        from acd.functions import load_library

        async def load() -> None:
            client = connect(self.redis.url_for("deployer"))
            try:
                await load_library(client)
            finally:
                await client.aclose()

        asyncio.run(load())

    def stop(self, purge: bool = False, echo: Callable[[str], None] = print) -> None:
        for service in reversed(self.services()):
            if service.stop():
                echo(f"  {service.name:<13} stopped")
        if purge:
            shutil.rmtree(self.config.home / "data", ignore_errors=True)
            echo(f"  data deleted ({self.config.home / 'data'})")
