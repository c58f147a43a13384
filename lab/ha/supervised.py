"""What the supervisor (``python -m lab.supervisor --ha``, started by ./start.sh --ha)
watches in the HA lab: every process the state file records (Redis and Sentinel on the
nodes, HAProxy and keepalived on the balancers, the API replicas, the dispatchers). A dead
one is started again in its namespace with the command, environment and config it was
started with (lab.ha.procs.relaunch). One stopped on purpose (stop_lb, stop_in_namespace)
is no longer recorded: it stays stopped.

A dead Redis is restarted only once the Sentinels name another primary, or WAIT_AT_MOST_S
(lab.supervisor) after its death when they never do. Restarted at once, a killed primary
would be back before Sentinel's down-after-milliseconds (1 s here): no failover, and the
node would serve again as the primary from its own AOF, which misses up to a second of
writes (appendfsync everysec) that the replicas have (the API confirms a contact only once
a replica has it: ACD_WAIT_REPLICAS=1). The replicas would then resync from it and drop
those writes. After the failover, the replica with the most data is the primary, and the
old one comes back from its own config, as the drill's "bring back" does it
(lab.ha.failover.restart_node): Sentinel, seeing a stale primary return, makes it a replica
of the new one (and rewrites its config), and it resyncs. Until then it has no replica:
HAProxy sends it nothing and it refuses writes (min-replicas-to-write 1). Only when
Sentinel cannot fail over (too few Sentinels or replicas left) is waiting pointless: then
its AOF is the best copy there is.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import redis

from lab.errors import LabError
from lab.processes import pid_alive

from .failover import rejoined
from .layout import NODE_PORT, redis_client
from .procs import process_key, recorded_pid, relaunch
from .roles import primary
from .state import load_state, require_state

log = logging.getLogger("lab.supervisor")

# dependencies first: the balancers check Redis, the applications need both
ROLE_ORDER = {"redis": 0, "sentinel": 1, "haproxy": 2, "keepalived": 3}


class Named(Protocol):
    @property
    def name(self) -> str: ...


@dataclass(frozen=True)
class HAProcess:
    """One recorded process of the HA lab, as the supervisor sees it."""

    run_dir: Path
    host: str
    role: str

    @property
    def name(self) -> str:
        return process_key(self.host, self.role)

    @property
    def log_file(self) -> Path:
        return self.run_dir / self.host / f"{self.role}.log"

    def pid(self) -> int | None:
        state = load_state(self.run_dir)
        pid = recorded_pid(state, self.host, self.role) if state else None
        return pid if pid_alive(pid) else None

    def launch(self) -> subprocess.Popen[bytes]:
        return relaunch(self.run_dir, self.host, self.role)


def recorded_processes(run_dir: Path) -> list[HAProcess] | None:
    """Every process the state file records, dependencies first; None without one."""
    state = load_state(run_dir)
    if state is None:
        return None
    found = [HAProcess(run_dir, e["host"], e["role"]) for e in state["processes"].values()]
    return sorted(found, key=lambda p: (ROLE_ORDER.get(p.role, len(ROLE_ORDER)), p.host))


def _redis_node(thing: Named) -> str | None:
    return thing.host if isinstance(thing, HAProcess) and thing.role == "redis" else None


def redis_wait(run_dir: Path) -> Callable[[Named], str | None]:
    """The supervisor's restart_wait: why a dead Redis is not restarted yet (see the
    module's docstring), None for anything else."""

    def why(thing: Named) -> str | None:
        node = _redis_node(thing)
        if node is None:
            return None
        try:
            current = primary(run_dir)
        except (LabError, redis.RedisError, OSError) as exc:
            return f"no Sentinel tells who the primary is ({exc})"
        if current == node:
            return "the Sentinels still name it the primary: waiting for their failover"
        return None

    return why


def redis_serves(run_dir: Path) -> Callable[[Named], bool]:
    """The supervisor's after_restart: a restarted Redis is done once it is a replica of
    the primary with its link up (or answers as the primary itself, restarted without a
    failover); logged with the time it took. Nothing to do for anything else."""
    restarted: dict[str, float] = {}

    def done(thing: Named) -> bool:
        node = _redis_node(thing)
        if node is None:
            return True
        since = restarted.setdefault(node, time.monotonic())
        try:
            if primary(run_dir) == node:
                _, _, topo = require_state(run_dir)
                with redis_client(topo.nodes[node], NODE_PORT, topo.password) as r:
                    ok, what = bool(r.ping()), "the primary (no failover happened)"
            else:
                ok, what = rejoined(node, run_dir), f"a replica of {primary(run_dir)}"
        except (LabError, redis.RedisError, OSError) as exc:
            log.debug("%s not back yet: %s", node, exc)
            return False
        if ok:
            log.info("%s serves again as %s, %.1f s after its restart", node, what,
                     time.monotonic() - since)
            del restarted[node]
        return ok

    return done
