"""What every long-running ACD process does: ride out Redis outages (retry with backoff),
log an error once per kind per interval rather than once per attempt, restart a failed
loop instead of dying, and say it is alive (a heartbeat /health counts)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import cast

from redis.asyncio import Redis
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    wait_exponential_jitter,
)

from acd.commands import command, server_time_us
from acd.connection import is_transient
from acd.keys import DISPATCHERS

log = logging.getLogger("acd.dispatcher")


class ErrorLog:
    """Logs an error once per kind (type and message) per ``every`` seconds, saying how
    many like it were not logged meanwhile: Redis away for a minute writes a few lines,
    not one per attempt of every center."""

    def __init__(self, logger: logging.Logger, every: float = 10.0) -> None:
        self.logger = logger
        self.every = every
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def report(self, what: str, exc: BaseException) -> None:
        kind = (type(exc).__name__, (str(exc).splitlines() or [""])[0][:200])
        now = time.monotonic()
        last, skipped = self._seen.get(kind, (float("-inf"), 0))
        if now - last < self.every:
            self._seen[kind] = (last, skipped + 1)
            return
        more = f" ({skipped} more like it in the last {now - last:.0f} s)" if skipped else ""
        self.logger.warning("%s: %s: %s%s", what, kind[0], kind[1], more)
        self._seen[kind] = (now, 0)


errors = ErrorLog(log)


def cancel_requested() -> bool:
    """True once the running task was asked to stop (Task.cancel). Loops check it as well
    as catching CancelledError: redis-py (8.1, on Python 3.11) can swallow the
    CancelledError of a task cancelled in the middle of a command, and the loop would
    then go on for ever (seen in tests/api/test_health.py about one run in two)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _retrying(what: str) -> AsyncRetrying:
    """Retry for as long as Redis is away or failing over, backing off up to 2 s."""

    def note(state: RetryCallState) -> None:
        if state.outcome is not None and state.outcome.exception() is not None:
            errors.report(what, cast(BaseException, state.outcome.exception()))

    return AsyncRetrying(
        retry=retry_if_exception(is_transient),
        wait=wait_exponential_jitter(multiplier=0.05, max=2.0, jitter=0.05),
        before_sleep=note,
        reraise=True,
    )


async def supervise(name: str, body: Callable[[], Awaitable[None]],
                    stopped: Callable[[], bool]) -> None:
    """Run ``body`` until stopped: transient errors retry with backoff; anything else is
    logged and restarts it a second later, so one bad round never ends the service."""
    while not stopped() and not cancel_requested():
        try:
            async for attempt in _retrying(name):
                with attempt:
                    await body()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; restarting in 1 s", name)
            await asyncio.sleep(1)


async def serve(name: str, body: Callable[[], Awaitable[None]],
                stopped: Callable[[], bool], progress: Callable[[], tuple[int, int]],
                summary_every: float) -> None:
    """``supervise(body)``, logging every ``summary_every`` s the assignments and rounds
    ``progress()`` reports (and the rate since the last line)."""

    async def summaries() -> None:
        last, last_t = progress()[0], time.monotonic()
        while True:
            await asyncio.sleep(summary_every)
            (assigned, rounds), now = progress(), time.monotonic()
            log.info("%s: %d assigned (%.1f/s over the last %.0f s), %d rounds", name,
                     assigned, (assigned - last) / (now - last_t), now - last_t, rounds)
            last, last_t = assigned, now

    summary = asyncio.create_task(summaries())
    try:
        await supervise(name, body, stopped)
    finally:
        summary.cancel()


HEARTBEAT_S = 2.0  # a dispatcher says it is alive this often
# A dispatcher that has not beaten for this long is counted out: three missed beats, so a
# slow round or a short Redis hiccup does not make /health flap, while a killed one
# stops counting within seconds.
HEARTBEAT_WINDOW_S = 3 * HEARTBEAT_S


async def heartbeat(redis: Redis, every: float = HEARTBEAT_S) -> None:
    """Keep this process in the ``acd:dispatchers`` sorted set (score: the server's ms at
    its last beat) until cancelled, then leave it."""
    member = f"{socket.gethostname()}:{os.getpid()}"
    try:
        while not cancel_requested():
            try:
                now_ms = await server_time_us(redis) // 1000
                await command(redis, "ZADD", DISPATCHERS, now_ms, member)
                # Members that stopped beating long ago (killed) are forgotten.
                await command(redis, "ZREMRANGEBYSCORE", DISPATCHERS, "-inf",
                              now_ms - 3_600_000)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                errors.report("heartbeat", exc)
            await asyncio.sleep(every)
    finally:
        try:
            await asyncio.wait_for(command(redis, "ZREM", DISPATCHERS, member), 1.0)
        except Exception as exc:  # noqa: BLE001 - stopping anyway; it ages out
            log.debug("could not leave %s: %s", DISPATCHERS, exc)


async def live_dispatchers(redis: Redis, window_s: float = HEARTBEAT_WINDOW_S) -> int:
    """How many dispatchers beat within the last ``window_s`` seconds, by the server's
    clock (the one their beats are scored with: no skew between hosts)."""
    now_ms = await server_time_us(redis) // 1000
    return int(await command(redis, "ZCOUNT", DISPATCHERS,
                             now_ms - int(window_s * 1000), "+inf"))
