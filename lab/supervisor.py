"""``python -m lab.supervisor [--ha]``: restart what died in the lab.

./start.sh (``--ha``) starts it last and ./stop.sh stops it first (lab.stack,
lab.ha.launcher), so it only ever sees services that should run. The embedded lab's
services are lab.stack's; the HA lab's are every process its state file records, each in
its network namespace (lab.ha.supervised), and its JupyterLab. Both are "things with a pid
and a way to start them again" (:class:`Supervised`).

Every CHECK_EVERY_S it looks at each one's pid; a dead one is started again with the same
command, environment and log, and a line in ``logs/supervisor.log`` says so. A service
that dies again within STABLE_S of its restart is crash-looping: the next restart waits 1,
2, 4 ... up to BACKOFF_MAX_S seconds, and the log says that too. After a Redis restart the
embedded lab loads the acd Functions library if the AOF did not bring it back; in the HA
lab a dead Redis waits for Sentinel's failover first (``restart_wait``; why:
lab.ha.supervised).

Whoever kills things on purpose to measure the outage (the failover drill, lab.drill) asks
the supervisor to hold off with :func:`holding`: a hold file in the run dir with a deadline
and the holder's pid, acknowledged by the supervisor before the holder goes on. While it
holds, nothing is restarted; when the holder removes it, dies or overstays its deadline,
supervision resumes and restarts whatever is still dead.

Without root and without systemd, this is the lab's smallest honest answer to "nothing
restarts what died".
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Protocol

import redis

from lab.processes import group_members, pid_alive, stop_pids, wait_until
from lab.stack import SUPERVISOR, EmbeddedLab, supervisor_file

CHECK_EVERY_S = 1.0
STABLE_S = 10.0  # up this long after a restart: it is well again, the backoff resets
BACKOFF_MAX_S = 60.0
WAIT_AT_MOST_S = 30.0  # a restart_wait reason is honoured this long after the death

log = logging.getLogger("lab.supervisor")

__all__ = ["Hold", "Supervised", "Supervisor", "hold_file", "holding", "main"]


# -- holding off while someone fails the lab on purpose -------------------------------------
@dataclass(frozen=True)
class Hold:
    by: str  # who asked, for the log
    pid: int  # the holder: the hold ends when it does (a drill killed midway)
    until: float  # time.time() of its deadline


def hold_file(run_dir: Path) -> Path:
    """The hold file of the supervisor of the lab whose run dir (home) is ``run_dir``."""
    return supervisor_file(run_dir, "hold")


def read_hold(path: Path, *, honoured: bool = True) -> Hold | None:
    """The hold in ``path``; with ``honoured``, only while its holder lives and its
    deadline has not passed."""
    try:
        data = json.loads(path.read_text())
        hold = Hold(str(data["by"]), int(data["pid"]), float(data["until"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring the unreadable hold file %s: %s", path, exc)
        return None
    if honoured and (not pid_alive(hold.pid) or time.time() >= hold.until):
        return None
    return hold


def _write(path: Path, hold: Hold) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(hold)))
    tmp.replace(path)  # whoever reads it sees all of it or nothing


def acknowledge(hold: Hold | None, path: Path) -> None:
    """The supervisor's answer next to the hold file: the hold it honours (None: none)."""
    ack = path.with_suffix(".held")
    if hold is None:
        ack.unlink(missing_ok=True)
    else:
        _write(ack, hold)


@contextmanager
def holding(run_dir: Path, by: str, seconds: float, timeout: float = 10.0) -> Iterator[bool]:
    """Ask the supervisor of the lab whose run dir is ``run_dir`` to restart nothing while
    the block runs (``seconds`` at most, and not after this process ended): whoever kills
    things on purpose measures its own outage and brings them back itself. Waits until the
    supervisor acknowledged it; yields whether a supervisor runs."""
    path = hold_file(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    hold = Hold(by, os.getpid(), time.time() + seconds)
    _write(path, hold)
    try:
        try:
            pid: int | None = int(supervisor_file(run_dir, "pid").read_text())
        except (OSError, ValueError):
            pid = None
        running = pid_alive(pid)
        if running:
            wait_until(lambda: read_hold(path.with_suffix(".held"), honoured=False) == hold,
                       timeout, f"the supervisor (pid {pid}) to acknowledge the hold {path}")
        yield running
    finally:
        path.unlink(missing_ok=True)


class Supervised(Protocol):
    """A thing with a pid and a way to start it again (lab.processes.Service; in the HA
    lab lab.ha.supervised.HAProcess)."""

    @property
    def name(self) -> str: ...

    @property
    def log_file(self) -> Path: ...

    def pid(self) -> int | None:
        """Its pid while it runs, else None."""
        ...

    def launch(self) -> subprocess.Popen[bytes]:
        """Start it again, without waiting for it to be ready."""
        ...


@dataclass
class Watched:
    service: Supervised
    pid: int | None  # the last pid seen alive
    process: subprocess.Popen[bytes] | None = None  # when we started it: its exit code
    restarted_at: float | None = None  # monotonic; None: started by ./start.sh
    failures: int = 0  # deaths in a row, each within STABLE_S of its restart
    next_start: float | None = None  # set while it is dead: when to start it again
    dead_since: float | None = None  # when this death was noticed
    waiting: str | None = None  # the restart_wait reason logged last


class Supervisor:
    """Watches ``services`` (in order: dependencies first). ``after_restart(service)``
    returns False while something still has to be done for it (retried each round: the
    lab loads the Functions library into a restarted Redis); ``restart_wait(service)``
    names a reason to leave a dead one dead for now (at most WAIT_AT_MOST_S after its
    death); ``hold`` is the hold file (see :func:`holding`); ``beat`` is touched after
    each round."""

    def __init__(self, services: list[Supervised], beat: Path,
                 after_restart: Callable[[Supervised], bool] | None = None, *,
                 restart_wait: Callable[[Supervised], str | None] | None = None,
                 hold: Path | None = None) -> None:
        self.watched = [Watched(s, s.pid()) for s in services]
        self.beat = beat
        self.after_restart = after_restart
        self.restart_wait = restart_wait
        self.hold = hold
        self.held: Hold | None = None  # the hold being honoured
        self.pending: list[Supervised] = []  # restarted, after_restart not yet done

    def watch(self, services: list[Supervised]) -> None:
        """Watch these from now on (the HA lab's list is its state file's, which changes):
        what was watched already keeps its history; what is gone is forgotten."""
        known = {w.service.name: w for w in self.watched}
        self.watched = [known.get(s.name) or Watched(s, s.pid()) for s in services]

    def check(self, now: float) -> None:
        """One round: note the dead, restart those whose time has come; Redis first (the
        list's order), as the others need it. Nothing while a hold is honoured."""
        if self._holding():
            self.beat.touch()
            return
        for w in self.watched:
            pid = w.service.pid()
            if pid is not None:
                w.pid, w.next_start, w.dead_since, w.waiting = pid, None, None, None
                if w.failures and w.restarted_at and now - w.restarted_at >= STABLE_S:
                    log.info("%s up for %g s since its restart: well again", w.service.name,
                             STABLE_S)
                    w.failures = 0
                continue
            if w.next_start is None:
                self._died(w, now)
            if w.next_start is not None and now >= w.next_start and self._may_start(w, now):
                self._restart(w, now)
        if self.after_restart is not None:
            self.pending = [s for s in self.pending if not self.after_restart(s)]
        self.beat.touch()

    def _holding(self) -> bool:
        if self.hold is None:
            return False
        hold, before = read_hold(self.hold), self.held
        # Honoured before it is acknowledged: the holder goes on once it reads the ack.
        self.held = hold
        if hold is not None and hold != before:
            log.info("holding off at the request of %s (pid %d), for %.0f s at most: "
                     "nothing is restarted until it ends", hold.by, hold.pid,
                     hold.until - time.time())
            acknowledge(hold, self.hold)
        elif hold is None and before is not None:
            log.info("the hold of %s ended: watching again", before.by)
            acknowledge(None, self.hold)
        return hold is not None

    def _may_start(self, w: Watched, now: float) -> bool:
        why = self.restart_wait(w.service) if self.restart_wait is not None else None
        name = w.service.name
        if why is None:
            return True
        waited = now - (w.dead_since or now)
        if waited < WAIT_AT_MOST_S:
            if why != w.waiting:
                log.info("%s is dead, not restarted yet: %s (at most %g s)", name, why,
                         WAIT_AT_MOST_S)
                w.waiting = why
            return False
        log.warning("%s dead for %.0f s and still %s: restarting it anyway", name, waited,
                    why)
        return True

    def _died(self, w: Watched, now: float) -> None:
        name, how = w.service.name, self._exit(w)
        w.dead_since = now
        if w.restarted_at is not None and now - w.restarted_at < STABLE_S:
            w.failures += 1
            delay = min(2.0 ** (w.failures - 1), BACKOFF_MAX_S)
            log.warning("%s (pid %s) exited %s %.1f s after its restart, %d time(s) in a "
                        "row: crash-looping? next restart in %g s; see %s", name, w.pid, how,
                        now - w.restarted_at, w.failures, delay, w.service.log_file)
            w.next_start = now + delay
        else:
            w.next_start = now

    @staticmethod
    def _exit(w: Watched) -> str:
        if w.process is not None and w.process.poll() is not None:
            code = w.process.returncode
            return f"(signal {-code})" if code < 0 else f"(code {code})"
        return "(exit code unknown: not our child)"

    def _restart(self, w: Watched, now: float) -> None:
        name, old = w.service.name, w.pid
        if old is not None:
            # Its group outlives a leader killed with -9 (uvicorn's workers would keep
            # the port and make every restart fail).
            leftovers = group_members(old)
            if leftovers:
                log.info("%s: stopping %d leftover process(es) of its group: %s", name,
                         len(leftovers), leftovers)
                stop_pids(leftovers, timeout=5)
        how = self._exit(w)
        try:
            w.process = w.service.launch()
        except OSError as exc:
            w.failures += 1
            delay = min(2.0 ** (w.failures - 1), BACKOFF_MAX_S)
            log.error("could not restart %s: %s; next try in %g s", name, exc, delay)
            w.next_start = now + delay
            return
        w.pid, w.restarted_at, w.next_start = w.process.pid, now, None
        log.info("restarted %s (pid %s -> %d) after exit %s", name, old, w.pid, how)
        self.pending.append(w.service)


def functions_loaded(lab: EmbeddedLab) -> Callable[[Supervised], bool]:
    """After a Redis restart: True once it has the acd library (from its AOF, or loaded
    now) and has begun rewriting its AOF; False while it does not answer yet. Nothing to
    do for the other services.

    The rewrite: a crash can tear the AOF's last transaction; Redis 8.2 then loads the
    file cut at the last whole command but leaves that MULTI open, and the next restart
    would apply the torn call's first commands with the next transaction (README,
    Reliability). A rewritten AOF holds only the dataset as loaded."""

    def after_restart(service: Supervised) -> bool:
        if service is not lab.redis:
            return True
        try:
            with lab.redis.client() as client:  # fails fast while Redis starts
                had_it = bool(client.function_list(library="acd"))
                if not had_it:
                    lab.load_functions()
                try:
                    client.bgrewriteaof()
                except redis.ResponseError as exc:
                    if "already in progress" not in str(exc):
                        raise
        except (redis.RedisError, OSError) as exc:
            log.debug("functions not loaded yet: %s", exc)
            return False
        log.info("redis: acd functions library %s", "present (from its AOF)" if had_it
                 else "loaded (its AOF did not have it)")
        return True

    return after_restart


Watching = tuple[Supervisor, Callable[[], list[Supervised] | None] | None]


def embedded_supervisor() -> Watching | None:
    lab = EmbeddedLab()
    if not lab.env.get("REDIS_PASSWORD"):
        log.error("no REDIS_PASSWORD in %s: start the lab with ./start.sh",
                  lab.config.env_file)
        return None
    services: list[Supervised] = [s for s in lab.services() if s.name != SUPERVISOR]
    home = lab.config.home
    return Supervisor(services, supervisor_file(home, "beat"), functions_loaded(lab),
                      hold=hold_file(home)), None


def ha_supervisor() -> Watching | None:
    """The HA lab's: its state file's processes (read again each round: a balancer
    stopped on purpose leaves it) and its JupyterLab; None when the lab does not run."""
    from lab.ha.launcher import HALab
    from lab.ha.supervised import recorded_processes, redis_serves, redis_wait

    ha = HALab()
    topo = ha.topology()
    if topo is None:
        log.error("the HA lab does not run (no state file or bridge under %s): start it "
                  "with ./start.sh --ha", ha.run_dir)
        return None
    jupyter = ha.jupyter(topo)

    def services() -> list[Supervised] | None:
        recorded = recorded_processes(ha.run_dir)
        return None if recorded is None else [*recorded, jupyter]

    first = services() or []
    return Supervisor(first, supervisor_file(ha.run_dir, "beat"), redis_serves(ha.run_dir),
                      restart_wait=redis_wait(ha.run_dir), hold=hold_file(ha.run_dir)), services


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.supervisor",
                                     description="Restart what died in the lab.")
    parser.add_argument("--ha", action="store_true",
                        help="the HA lab of ./start.sh --ha (default: the embedded lab)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(message)s")
    watching = ha_supervisor() if args.ha else embedded_supervisor()
    if watching is None:
        return 2
    supervisor, services = watching
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        # Only a flag: a restart in progress finishes and writes its pid file, so
        # ./stop.sh, which stops us first, then stops what we started.
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("watching %s every %g s", ", ".join(w.service.name for w in supervisor.watched),
             CHECK_EVERY_S)
    while True:
        if services is not None:
            current = services()
            if current is None:
                log.info("the lab's state file is gone (it was stopped): nothing to watch")
                break
            supervisor.watch(current)
        supervisor.check(time.monotonic())
        if stopping.wait(CHECK_EVERY_S):
            break
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
