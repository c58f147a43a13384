"""The dispatcher: matches waiting contacts to longest-available agents, atomically.

Each round is one call of the ``acd_dispatch`` Redis Function, which finds and claims
agents for up to ``batch`` contacts in one atomic step: there is no moment at which a
contact or an agent is held by this process, so killing it at any point loses nothing and
strands nobody. Between rounds it blocks on the center's wake stream (XREAD with a
timeout) from the last id the function reported, so it runs again as soon as a contact is
queued or an agent becomes available, and never misses a wake-up.

One Dispatcher serves one center; acd.all_centers.AllCenters serves every registered
center from one loop. Run it: ``python -m acd.dispatcher --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from collections.abc import Callable

from acd.all_centers import AllCenters
from acd.center import DEFAULT_BATCH, DEFAULT_BUDGET, Center
from acd.connection import connect
from acd.models import DispatchRound
from acd.service import HEARTBEAT_S, cancel_requested, heartbeat, serve
from acd.settings import get_settings
from acd.wrap_up import PendingRead

log = logging.getLogger("acd.dispatcher")


class Dispatcher:
    """Dispatch loop for one center.

    A service: it assigns nothing while the center's dispatch mode is manual (a lesson
    runs its own dispatcher there), unless ``manual_too`` (a dispatcher made for that very
    center, like the simulator's in-process ones). ``on_round`` sees every acd_dispatch
    call's result (the benchmark records the pairs it checks)."""

    def __init__(self, center: Center, batch: int = DEFAULT_BATCH,
                 budget: int = DEFAULT_BUDGET, idle_ms: int = 1000,
                 summary_every: float = 10.0, manual_too: bool = False,
                 on_round: Callable[[DispatchRound], None] | None = None) -> None:
        if idle_ms < 1:
            raise ValueError(f"idle_ms must be at least 1 (a wait needs a deadline), "
                             f"not {idle_ms}")
        self.center = center
        self.on_round = on_round
        self.manual_too = manual_too
        self.batch = batch
        self.budget = budget
        self.idle_ms = idle_ms
        self.summary_every = summary_every
        self.assigned = 0
        self.rounds = 0
        self.wrap_up_in_ms: int | None = None  # from the last round: see wait_for_wake
        self._read: PendingRead[None] = PendingRead()
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Stop after the current wait (at most ``idle_ms``); cancel the task to stop now."""
        self._stop.set()

    async def round(self) -> str:
        """Assign until nothing more can be assigned; return the last wake id seen."""
        while True:
            done = await self.center.dispatch_round(self.batch, self.budget,
                                                    service=not self.manual_too)
            self.rounds += 1
            self.assigned += len(done.pairs)
            if self.on_round is not None:
                self.on_round(done)
            for contact, agent in done.pairs:
                log.debug("assigned contact %s to agent %s", contact, agent)
            self.wrap_up_in_ms = done.wrap_up_in_ms
            if len(done.pairs) < self.batch:
                return done.wake_id

    async def wait_for_wake(self, after: str) -> None:
        """Until a wake-up after ``after`` (at most ``idle_ms``), or until the center's
        next wrap-up ends: only a round ends it, and no wake-up comes for it."""
        due = self.wrap_up_in_ms
        timer = max(1, due) if due is not None and due < self.idle_ms else None
        await self._read.wait(lambda: self.center.wait_for_wake(after, self.idle_ms), timer)

    async def _loop(self) -> None:
        try:
            while not self._stop.is_set() and not cancel_requested():
                wake_id = await self.round()
                await self.wait_for_wake(wake_id)
        finally:
            self._read.cancel()

    async def run(self) -> None:
        """Run until stop() or cancellation; survives Redis restarts and failovers."""
        await serve(f"center {self.center.name}", self._loop, self._stop.is_set,
                    lambda: (self.assigned, self.rounds), self.summary_every)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    settings = get_settings()
    p = argparse.ArgumentParser(
        prog="python -m acd.dispatcher",
        description="Assign waiting contacts to the longest-available qualified agents.")
    p.add_argument("--redis-url", default=settings.redis_url,
                   help="Redis URL (default: REDIS_URL from the environment or .env)")
    p.add_argument("--center", action="append",
                   help="center to serve; repeat for several (default: every registered "
                        "center, and new ones as they appear)")
    p.add_argument("--batch", type=int, default=DEFAULT_BATCH,
                   help="most assignments per atomic round (default: %(default)s)")
    p.add_argument("--idle-ms", type=int, default=1000,
                   help="longest wait for a wake-up before checking again (default: %(default)s)")
    p.add_argument("--summary-every", type=float, default=10.0,
                   help="seconds between summary log lines (default: %(default)s)")
    p.add_argument("--log-level", default="INFO", help="DEBUG logs every assignment")
    return p.parse_args(argv)


async def amain(args: argparse.Namespace) -> None:
    redis = connect(args.redis_url, client_name=f"acd-dispatcher-{os.getpid()}",
                    block_ms=args.idle_ms)
    options = {"batch": args.batch, "idle_ms": args.idle_ms,
               "summary_every": args.summary_every}
    runners: list[Dispatcher | AllCenters]
    if args.center:
        runners = [Dispatcher(Center(redis, c), **options) for c in args.center]
        log.info("dispatching for %s", ", ".join(args.center))
    else:
        runners = [AllCenters(redis, **options)]
        log.info("dispatching for every registered center")
    # SIGTERM/SIGINT cancel at once, even in the middle of a blocking wait: nothing is
    # held between rounds, so there is nothing to finish first.
    main_task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: main_task.cancel() if main_task else None)
    beat = asyncio.create_task(heartbeat(redis))
    try:
        await asyncio.gather(*(r.run() for r in runners))
    except asyncio.CancelledError:
        pass
    finally:
        beat.cancel()
        # Bounded: leaving acd:dispatchers is a courtesy (a killed one ages out anyway).
        await asyncio.wait([beat], timeout=HEARTBEAT_S + 2)
        await redis.aclose()
    log.info("stopped after %d assignments", sum(r.assigned for r in runners))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()
