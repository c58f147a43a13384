"""``python -m lab.supervisor``: restart what died in the embedded lab.

./start.sh starts it last and ./stop.sh stops it first (lab.stack), so it only ever sees
services that should run. Every CHECK_EVERY_S it looks at each one's pid; a dead one is
started again with the same command, environment and log, and a line in
``logs/supervisor.log`` says so. A service that dies again within STABLE_S of its restart
is crash-looping: the next restart waits 1, 2, 4 ... up to BACKOFF_MAX_S seconds, and the
log says that too. After a Redis restart the acd Functions library is loaded if the AOF
did not bring it back.

Without root and without systemd, this is the lab's smallest honest answer to "nothing
restarts what died"; the HA lab's Redis fails over through Sentinel instead.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import redis

from lab.processes import Service, group_members, stop_pids
from lab.stack import SUPERVISOR, EmbeddedLab

CHECK_EVERY_S = 1.0
STABLE_S = 10.0  # up this long after a restart: it is well again, the backoff resets
BACKOFF_MAX_S = 60.0

log = logging.getLogger("lab.supervisor")


@dataclass
class Watched:
    service: Service
    pid: int | None  # the last pid seen alive
    process: subprocess.Popen[bytes] | None = None  # when we started it: its exit code
    restarted_at: float | None = None  # monotonic; None: started by ./start.sh
    failures: int = 0  # deaths in a row, each within STABLE_S of its restart
    next_start: float | None = None  # set while it is dead: when to start it again


class Supervisor:
    """Watches ``services`` (in order: dependencies first). ``after_restart(service)``
    returns False while something still has to be done for it (retried each round: the
    lab loads the Functions library into a restarted Redis); ``beat`` is touched after
    each round."""

    def __init__(self, services: list[Service], beat: Path,
                 after_restart: Callable[[Service], bool] | None = None) -> None:
        self.watched = [Watched(s, s.pid()) for s in services]
        self.beat = beat
        self.after_restart = after_restart
        self.pending: list[Service] = []  # restarted, after_restart not yet done

    def check(self, now: float) -> None:
        """One round: note the dead, restart those whose time has come; Redis first (the
        list's order), as the others need it."""
        for w in self.watched:
            pid = w.service.pid()
            if pid is not None:
                w.pid = pid
                if w.failures and w.restarted_at and now - w.restarted_at >= STABLE_S:
                    log.info("%s up for %g s since its restart: well again", w.service.name,
                             STABLE_S)
                    w.failures = 0
                continue
            if w.next_start is None:
                self._died(w, now)
            if w.next_start is not None and now >= w.next_start:
                self._restart(w, now)
        if self.after_restart is not None:
            self.pending = [s for s in self.pending if not self.after_restart(s)]
        self.beat.touch()

    def _died(self, w: Watched, now: float) -> None:
        name, how = w.service.name, self._exit(w)
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


def functions_loaded(lab: EmbeddedLab) -> Callable[[Service], bool]:
    """After a Redis restart: True once it has the acd library (from its AOF, or loaded
    now); False while it does not answer yet. Nothing to do for the other services."""

    def after_restart(service: Service) -> bool:
        if service is not lab.redis:
            return True
        try:
            with lab.redis.client() as client:  # fails fast while Redis starts
                had_it = bool(client.function_list(library="acd"))
            if not had_it:
                lab.load_functions()
        except (redis.RedisError, OSError) as exc:
            log.debug("functions not loaded yet: %s", exc)
            return False
        log.info("redis: acd functions library %s", "present (from its AOF)" if had_it
                 else "loaded (its AOF did not have it)")
        return True

    return after_restart


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(message)s")
    lab = EmbeddedLab()
    if not lab.env.get("REDIS_PASSWORD"):
        log.error("no REDIS_PASSWORD in %s: start the lab with ./start.sh",
                  lab.config.env_file)
        return 2
    supervisor = Supervisor([s for s in lab.services() if s.name != SUPERVISOR],
                            lab.supervisor_beat, functions_loaded(lab))
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
        supervisor.check(time.monotonic())
        if stopping.wait(CHECK_EVERY_S):
            break
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
