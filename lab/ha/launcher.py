"""``./start.sh --ha``: the HA topology with the ACD on top, as ``python -m lab`` runs it.

On top of :func:`lab.ha.start` (3 Redis + Sentinel, 2 HAProxy + keepalived, VIP):

* two API replicas (uvicorn ``acd.api.app:app``) in namespaces api1/api2, behind the VIP :8000;
* dispatchers (``python -m acd.dispatcher``) in namespaces disp1, disp2, ...;
* JupyterLab on this machine (lab.stack's service), every one of them talking to Redis
  through the VIP :12000;
* last, the supervisor (``python -m lab.supervisor --ha``, lab.ha.supervised), which
  restarts whatever of it dies; stopped first.

Everything lives under ``<lab home>/ha`` (``$LAB_HOME/ha``); ``.env`` gets the same keys as
the embedded lab, with ``ACD_ENV=ha``. Running it again starts only what is missing; a
failure stops what that call started and names the component and its log file.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from lab import redis_users
from lab.apikeys import lab_key
from lab.envfile import read_env, write_env
from lab.errors import LabError
from lab.learners import learner_passwords, restore_learners
from lab.processes import Service, StartError, WaitTimeout, pid_alive, wait_until
from lab.stack import (
    SUPERVISOR,
    EmbeddedLab,
    LabConfig,
    http_ok,
    port_taken,
    supervisor_service,
)

from . import hooks, layout, roles, services
from .hooks import APP_ROLE, dispatcher_address
from .layout import PASSWORD_CHARS, REPO, HATopology
from .procs import recorded_pid
from .state import load_state, running_topology

DISPATCHER_PREFIX = "disp"


class HALab:
    """Start, stop and describe the HA environment with the API, dispatchers and JupyterLab."""

    def __init__(self, config: LabConfig | None = None) -> None:
        self.config = config or LabConfig.from_environment()
        self.run_dir = (self.config.home / "ha").resolve()
        self.env = read_env(self.config.env_file)
        # lab.stack's JupyterLab service, moved under the HA run dir (own pid and log file)
        self._embedded = EmbeddedLab(self.config)
        self.jupyter_token = self._embedded.jupyter_token
        self.api_key = self._embedded.api_key  # checked, or created, by start (lab.apikeys)

    # -- what runs where --------------------------------------------------------------
    def topology(self) -> HATopology | None:
        """The running topology, or None when the HA environment is not up."""
        return running_topology(self.run_dir)

    def is_up(self) -> bool:
        return self.topology() is not None

    @property
    def jupyter_url(self) -> str:
        return f"http://127.0.0.1:{self.config.jupyter_port}/lab?token={self.jupyter_token}"

    def client_env(self, topo: HATopology) -> dict[str, str]:
        """What .env holds: the same keys as the embedded lab."""
        return {
            "API_URL": topo.api_url,
            "JUPYTER_URL": self.jupyter_url,
            "ACD_ENV": "ha",
            "JUPYTER_TOKEN": self.jupyter_token,
            "ACD_API_KEY": self.api_key,
            **redis_users.env_entries({**topo.role_passwords(), **topo.sentinel_passwords()},
                                      topo.vip, topo.redis_port),
        }

    def jupyter(self, topo: HATopology | None = None) -> Service:
        """lab.stack's JupyterLab; its kernels get the learner's REDIS_URL through the VIP."""
        base = next(s for s in self._embedded.services() if s.name == "jupyter")
        env = dict(base.env)
        if topo is not None:
            env.update({**topo.env(), "JUPYTER_URL": self.jupyter_url, "ACD_ENV": "ha"})
        return dataclasses.replace(base, run_dir=self.run_dir, env=env)

    def supervisor(self) -> Service:
        """``python -m lab.supervisor --ha``: its pid file, log and beat under the run dir."""
        return supervisor_service(self.run_dir, ["--ha"], {
            "PYTHONPATH": str(REPO), "LAB_HOME": str(self.config.home),
            "LAB_ENV_FILE": str(self.config.env_file)})

    def _all_running(self, topo: HATopology) -> bool:
        state = load_state(self.run_dir) or {"processes": {}}
        apps = [n for n, _, _ in topo.api_servers]
        apps += [f"{DISPATCHER_PREFIX}{i}" for i in range(1, self.config.dispatchers + 1)]
        return (all(pid_alive(e["pid"]) for e in state["processes"].values())
                and all(self._app_pid(n) for n in apps) and self.jupyter(topo).running())

    def _app_pid(self, host: str) -> int | None:
        state = load_state(self.run_dir) or {"processes": {}}
        pid = recorded_pid(state, host, APP_ROLE)
        return pid if pid_alive(pid) else None

    def _log(self, host: str) -> Path:
        return self.run_dir / host / f"{APP_ROLE}.log"

    def status(self) -> dict[str, Any]:
        """Components with their pid (None: not running), and lab.ha's status."""
        topo = self.topology()
        if topo is None:
            return {"running": False, "run_dir": str(self.run_dir)}
        components: dict[str, int | None] = {}
        for name, _, _ in topo.api_servers:
            components[f"api {name}"] = self._app_pid(name)
        for i in range(1, self.config.dispatchers + 1):
            components[f"dispatcher {DISPATCHER_PREFIX}{i}"] = self._app_pid(
                f"{DISPATCHER_PREFIX}{i}"
            )
        components["jupyter"] = self.jupyter().pid()
        components[SUPERVISOR] = self.supervisor().pid()
        return {
            "running": True,
            "run_dir": str(self.run_dir),
            "components": components,
            "ha": roles.status(self.run_dir),
        }

    def where(self) -> str:
        topo = self.topology()
        if topo is None:
            return "The HA lab is not running."
        info = roles.status(self.run_dir)
        holder = ", ".join(info["vip_holder"]) or "nobody"
        api = ", ".join(f"{n} {a}:{p}" for n, a, p in topo.api_servers)
        disp = ", ".join(
            f"{DISPATCHER_PREFIX}{i} {dispatcher_address(i)}"
            for i in range(1, self.config.dispatchers + 1)
        )
        nodes = ", ".join(f"{n} {a}:6379 ({info['roles'].get(n)})" for n, a in topo.nodes.items())
        lbs = ", ".join(f"{n} {a}" for n, a in topo.lbs.items())
        return f"""
The lab is up (environment: ha). Settings are in {self.config.env_file}.
  JupyterLab   {self.jupyter_url}   <- open this (on this machine)
  REST API     {topo.api_url}/docs  (VIP -> HAProxy -> {api})
  Redis        redis://{topo.vip}:{topo.redis_port} (VIP -> HAProxy -> primary; password in .env)
  Redis nodes  {nodes}; Sentinel on :26379 of each
               (user sentinel_admin, REDIS_SENTINEL_ADMIN_PASSWORD in .env)
  Balancers    {lbs}; VIP {topo.vip} on {holder}; stats {topo.stats_url}
  Dispatchers  {disp}
  Logs         {self.run_dir}/<host>/*.log, {self.run_dir}/logs/jupyter.log
Drill: python -m lab.drill. Stop everything with ./stop.sh."""

    # -- start ------------------------------------------------------------------------
    def _passwords(self) -> dict[str, str]:
        """Each Redis role's password: .env's when it may go into a config file."""
        kept = {k: v for k, v in self.env.items() if set(v) <= PASSWORD_CHARS}
        return redis_users.passwords(kept, (*redis_users.HA_ROLES, *redis_users.SENTINEL_ROLES))

    def start(self, echo: Callable[[str], None] = print) -> HATopology:
        """Start what is not running and wait for every health check."""
        why = layout.check_platform()
        if why:
            raise StartError(f"HA lab: {why}")
        embedded = {n: p for n, p in self._embedded.status().items() if p}
        if embedded:
            raise StartError(
                f"the embedded lab runs ({', '.join(embedded)}): stop it first with ./stop.sh"
            )
        fresh = not self.is_up()
        started: list[str] = []  # hosts whose app this call started
        jupyter_started = False
        supervisor = self.supervisor()
        running = self.topology()
        if supervisor.running() and (running is None or not self._all_running(running)):
            # It would start what is down too, and two copies would run: this start
            # starts it, then the supervisor again.
            supervisor.stop()
            echo(f"  {SUPERVISOR:<15} stopped while this start starts what is down")
        try:
            try:
                layout.ensure_packages()
                # The workshop's learners (lab.workshop) are users of every node too.
                topo = running or services.start(
                    passwords=self._passwords(), run_dir=self.run_dir, timeout=90,
                    learners=learner_passwords(self.config.home))
            except LabError as exc:
                raise StartError(
                    f"HA topology (Redis, Sentinel, HAProxy, keepalived): {exc}; "
                    f"logs in {self.run_dir}/<host>/*.log"
                ) from exc
            echo(
                f"  {'topology':<15} {'started' if fresh else 'already running'} "
                f"(3 Redis + Sentinel, 2 HAProxy + keepalived, VIP {topo.vip} "
                f"on {roles.vip_holder(self.run_dir)})"
            )
            self._load_functions(topo)
            self.api_key = lab_key(topo.role_url("deployer"), self.api_key)
            restored = restore_learners(topo.role_url("admin"), self.config.home)
            if restored:
                echo(f"  {'workshop':<15} API keys and first centers of {', '.join(restored)} "
                     "back (the lab's data starts empty)")
            # A contact is confirmed only once a replica has it: it survives a failover.
            env = {"PYTHONPATH": str(REPO), "ACD_ENV": "ha", "ACD_WAIT_REPLICAS": "1"}
            # Each with its own Redis user, in its environment (never its command line).
            started += self._start_api(topo, {**env, "REDIS_URL": topo.role_url("api")}, echo)
            started += self._start_dispatchers(
                topo, {**env, "REDIS_URL": topo.role_url("dispatcher")}, echo)
            jupyter = self.jupyter(topo)
            if jupyter.running():
                echo(f"  {'jupyter':<15} already running (pid {jupyter.pid()})")
            else:
                if port_taken(self.config.jupyter_port):
                    raise StartError(
                        f"jupyter: port {self.config.jupyter_port} is in use by another "
                        "program; set LAB_JUPYTER_PORT to a free port"
                    )
                jupyter.start()
                jupyter_started = True
                echo(f"  {'jupyter':<15} started (pid {jupyter.pid()}), log {jupyter.log_file}")
            write_env(self.config.env_file, self.client_env(topo))
            if supervisor.start():
                echo(f"  {SUPERVISOR:<15} started (pid {supervisor.pid()}), "
                     f"log {supervisor.log_file}")
            else:
                echo(f"  {SUPERVISOR:<15} already running (pid {supervisor.pid()})")
        except (StartError, LabError, OSError, redis.RedisError) as exc:
            if fresh:
                self.stop(echo=lambda _: None)
            else:
                for host in reversed(started):
                    hooks.stop_in_namespace(host, APP_ROLE, run_dir=self.run_dir)
                if jupyter_started:
                    self.jupyter().stop()
            if isinstance(exc, StartError):
                raise
            raise StartError(str(exc)) from exc
        return topo

    def _load_functions(self, topo: HATopology) -> None:
        from acd.connection import connect
        from acd.functions import load_library

        async def load() -> None:
            client = connect(topo.role_url("deployer"))
            try:
                await load_library(client)
            finally:
                await client.aclose()

        try:
            asyncio.run(load())
        except (redis.RedisError, OSError) as exc:
            raise StartError(f"loading the acd Functions library through the VIP: {exc}") from exc

    def _start_api(
        self, topo: HATopology, env: dict[str, str], echo: Callable[[str], None]
    ) -> list[str]:
        def command(name: str, address: str, port: int) -> list[str]:
            return [
                sys.executable, "-m", "uvicorn", "acd.api.app:app",
                "--host", address, "--port", str(port), "--no-access-log",
            ]  # fmt: skip

        missing = [s for s in topo.api_servers if self._app_pid(s[0]) is None]
        for name, _, _ in topo.api_servers:
            if name not in {s[0] for s in missing}:
                echo(f"  {'api ' + name:<15} already running (pid {self._app_pid(name)})")
        try:
            if len(missing) == len(topo.api_servers):
                hooks.start_api_replicas(command, env=env, timeout=60, run_dir=self.run_dir)
            else:
                for name, addr, port in missing:
                    hooks.run_in_namespace(
                        name, APP_ROLE, command(name, addr, port), env=env, run_dir=self.run_dir
                    )
            for name, addr, port in missing:
                self._wait_app(name, f"http://{addr}:{port}/health/live", f"API replica {name}")
            wait_until(
                http_ok(f"{topo.api_url}/health/live"), 30,
                f"the API through the VIP {topo.api_url}",
            )
        except LabError as exc:
            names = ", ".join(f"{n}: {self._log(n)}" for n, _, _ in missing)
            raise StartError(f"API replicas: {exc}; see the logs ({names})") from exc
        for name, addr, port in missing:
            echo(
                f"  {'api ' + name:<15} started (pid {self._app_pid(name)}) on {addr}:{port}, "
                f"log {self._log(name)}"
            )
        return [name for name, _, _ in missing]

    def _wait_app(self, host: str, url: str, what: str, timeout: float = 60) -> None:
        check = http_ok(url)

        def ready() -> bool:
            if self._app_pid(host) is None:
                raise StartError(f"{what} exited; see {self._log(host)}")
            return check()

        try:
            wait_until(ready, timeout, what, interval=0.1)
        except WaitTimeout as exc:
            raise StartError(f"{what} did not answer {url}; see {self._log(host)}") from exc

    def _start_dispatchers(
        self, topo: HATopology, env: dict[str, str], echo: Callable[[str], None]
    ) -> list[str]:
        def command(name: str, address: str) -> list[str]:
            return [sys.executable, "-m", "acd.dispatcher"]

        count = self.config.dispatchers
        names = [f"{DISPATCHER_PREFIX}{i}" for i in range(1, count + 1)]
        missing = [n for n in names if self._app_pid(n) is None]
        for name in names:
            if name not in missing:
                echo(f"  {'dispatcher ' + name:<15} already running (pid {self._app_pid(name)})")
        if len(missing) == count:
            hooks.start_dispatchers(command, count, env=env, run_dir=self.run_dir)
        else:
            for name in missing:
                i = int(name.removeprefix(DISPATCHER_PREFIX))
                hooks.run_in_namespace(
                    name,
                    APP_ROLE,
                    command(name, dispatcher_address(i)),
                    address=dispatcher_address(i),
                    env={"DISPATCHER_NAME": name, **env},
                    run_dir=self.run_dir,
                )
        for name in missing:
            pid = self._app_pid(name)

            def connected(host: str = name, p: int | None = pid) -> bool:
                if self._app_pid(host) is None:
                    raise StartError(f"dispatcher {host} exited; see {self._log(host)}")
                with topo.client() as r:
                    return f"acd-dispatcher-{p}" in {c.get("name") for c in r.client_list()}

            try:
                wait_until(connected, 30, f"dispatcher {name} connected through the VIP",
                           interval=0.1)
            except WaitTimeout as exc:
                raise StartError(f"{exc}; see {self._log(name)}") from exc
            echo(
                f"  {'dispatcher ' + name:<15} started (pid {pid}), connected through the VIP, "
                f"log {self._log(name)}"
            )
        return missing

    # -- stop -------------------------------------------------------------------------
    def stop(self, purge: bool = False, echo: Callable[[str], None] = print) -> list[str]:
        """Stop the supervisor first (it would restart the rest), then JupyterLab and
        everything lab.ha recorded (processes, namespaces, bridge)."""
        removed: list[str] = []
        if self.supervisor().stop():
            removed.append(SUPERVISOR)
            echo(f"  {SUPERVISOR:<15} stopped")
        if self.jupyter().stop():
            removed.append("jupyter")
            echo(f"  {'jupyter':<15} stopped")
        for item in services.stop(self.run_dir):
            removed.append(item)
            echo(f"  removed {item}")
        if purge and self.run_dir.exists():
            shutil.rmtree(self.run_dir, ignore_errors=True)
            echo(f"  HA run dir deleted ({self.run_dir})")
        return removed


def ha_state_exists(config: LabConfig | None = None) -> bool:
    """Whether the HA environment of this lab home has a state file (it may be up)."""
    config = config or LabConfig.from_environment()
    return (config.home / "ha" / "state.json").exists()
