"""One dispatcher loop for every registered center (``python -m acd.dispatcher`` without
``--center``): fair, on a bounded number of connections, however many centers there are."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter, deque
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError

from acd.center import DEFAULT_BATCH, DEFAULT_BUDGET, Center
from acd.commands import StreamEntry, StreamWatch, last_stream_id
from acd.connection import is_transient
from acd.keys import CENTERS, CENTERS_STREAM, check_name
from acd.service import cancel_requested, errors, serve
from acd.wrap_up import PendingRead

log = logging.getLogger("acd.dispatcher")


class AllCenters:
    """Serves every registered center from one loop: fairly, on a bounded number of
    connections, however many centers there are.

    A pass gives one round (up to ``batch`` assignments) to each center with work, in
    turn; a center whose round used its whole batch has more and joins the next pass,
    behind the others (round-robin: a busy center never starves a quiet one). Rounds of a
    pass run ``parallel`` at a time, so the process uses at most ``parallel`` + 1
    connections. With no center left with work, one XREAD watches the wake streams of all
    centers and the new-centers stream until one has news. A cluster refuses one XREAD over
    many hash slots: there every center gets a round each ``idle_ms`` / 10 instead (an idle
    center's round costs the server a few µs).
    """

    REDISCOVER_S = 30.0  # re-read the set of centers: add missed ones, drop deleted ones
    NEWS_COUNT = 100  # most entries per stream an XREAD returns (a burst of new centers)

    def __init__(self, redis: Redis, batch: int = DEFAULT_BATCH, budget: int = DEFAULT_BUDGET,
                 idle_ms: int = 1000, parallel: int = 8, summary_every: float = 10.0) -> None:
        if idle_ms < 1:
            raise ValueError(f"idle_ms must be at least 1, not {idle_ms}")
        self.redis = redis
        self.batch, self.budget, self.idle_ms = batch, budget, idle_ms
        self.parallel = parallel
        self.summary_every = summary_every
        self.centers: dict[str, Center] = {}
        self.served: Counter[str] = Counter()  # assignments per center
        self.rounds = 0
        self._ready: deque[str] = deque()
        self._by_wake: dict[str, str] = {}
        # Centers with a wrap-up pending: the monotonic time it ends. No wake-up comes
        # for it, so the wait ends in time and the center gets a round then.
        self._wrap_up_due: dict[str, float] = {}
        self._read: PendingRead[dict[str, list[StreamEntry]]] = PendingRead()
        # Every center's wake stream after the id its last round saw, and the new-centers
        # stream: the one XREAD that waits for news, re-encoded only where an id moved.
        self._watch = StreamWatch()
        # A cluster-aware client has no single connection to send one XREAD on; a plain
        # client to a sharded server learns it from CROSSSLOT (below).
        self._one_xread = not isinstance(redis, RedisCluster)
        self._stop = asyncio.Event()
        self._ignored: set[str] = set()  # registered names that are no center's, logged once

    @property
    def assigned(self) -> int:
        return sum(self.served.values())

    def stop(self) -> None:
        self._stop.set()

    def _mark(self, name: str) -> None:
        if name in self.centers and name not in self._ready:
            self._ready.append(name)

    def _center_name(self, entry: object) -> str | None:
        """``entry`` if a registered entry can be a center, else None (logged once).
        Whoever may register a center (a workshop learner's Redis user too) can write
        anything in the set and the stream: one bad entry must not stop every center."""
        try:
            if isinstance(entry, str):
                return check_name("center", entry)
            why = "no center name"
        except ValueError as exc:
            why = str(exc)
        shown = repr(entry)[:80]
        if shown not in self._ignored and len(self._ignored) < 1000:
            self._ignored.add(shown)
            log.warning("ignored the registered entry %s: %s", shown, why)
        return None

    def _add(self, entry: object) -> None:
        name = self._center_name(entry)
        if name is None:
            return
        if name not in self.centers:
            center = Center(self.redis, name)
            self.centers[name] = center
            self._by_wake[center.keys.wake] = name
            self._watch.set(center.keys.wake, "0-0")
            log.info("serving center %s", name)
        self._mark(name)

    async def _discover(self, everyone: bool) -> None:
        """Serve the registered centers: new ones get a round, deleted ones leave.
        ``everyone``: every center gets a round (a fresh start: news may have been missed
        while Redis was away); a periodic look gives rounds to new centers only, not a
        pass of thousands of idle rounds that every center with news would wait behind."""
        names = set(await cast(Any, self.redis.smembers(CENTERS)))
        for gone in set(self.centers) - names:
            wake = self.centers.pop(gone).keys.wake
            del self._by_wake[wake]
            self._watch.remove(wake)
            log.info("center %s was deleted: no longer served", gone)
        for name in sorted(names):
            if everyone or name not in self.centers:
                self._add(name)

    async def _round(self, name: str) -> None:
        center = self.centers.get(name)
        if center is None:
            return
        try:
            done = await center.dispatch_round(self.batch, self.budget, service=True)
        except Exception as exc:
            if not is_transient(exc):
                raise
            errors.report(f"center {name}", exc)
            self._mark(name)  # Redis is away: try again in a later pass
            return
        self.rounds += 1
        self.served[name] += len(done.pairs)
        if name in self.centers:  # not deleted meanwhile
            self._watch.set(center.keys.wake, done.wake_id)
        if done.wrap_up_in_ms is None:
            self._wrap_up_due.pop(name, None)
        else:
            self._wrap_up_due[name] = time.monotonic() + done.wrap_up_in_ms / 1000
        for contact, agent in done.pairs:
            log.debug("center %s: assigned contact %s to agent %s", name, contact, agent)
        if len(done.pairs) >= self.batch:
            self._mark(name)

    async def _pass(self) -> None:
        names = list(self._ready)
        self._ready.clear()
        gate = asyncio.Semaphore(self.parallel)

        async def one(name: str) -> None:
            async with gate:
                try:
                    await self._round(name)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - one bad round never stops the rest
                    errors.report(f"center {name}", exc)

        await asyncio.gather(*(one(n) for n in names))

    def _block_ms(self) -> int | None:
        """How long a wait may block: not at all when a center has work, else ``idle_ms``
        or until the first pending wrap-up ends, whichever is sooner."""
        if self._ready:
            return None
        if not self._wrap_up_due:
            return self.idle_ms
        soonest = min(self._wrap_up_due.values()) - time.monotonic()
        return max(1, min(self.idle_ms, math.ceil(soonest * 1000)))

    def _mark_wrap_ups_due(self) -> None:
        now = time.monotonic()
        for name, due in list(self._wrap_up_due.items()):
            if due <= now:
                del self._wrap_up_due[name]
                self._mark(name)

    async def _wait(self) -> None:
        """Until some center has news (or ``idle_ms``, or a wrap-up's end); only looks if
        some already has."""
        try:
            await self._wait_for_news(self._block_ms())
        finally:
            self._mark_wrap_ups_due()

    async def _wait_for_news(self, block: int | None) -> None:
        if self._one_xread:
            try:
                if block is None and not self._read.pending:  # only a look
                    news = await self._watch.read(self.redis, None, self.NEWS_COUNT)
                else:
                    # The wait may end before the read does (see acd.wrap_up.PendingRead)
                    timer = 0 if block is None else (block if block < self.idle_ms else None)
                    done, got = await self._read.wait(lambda: self._watch.read(
                        self.redis, self.idle_ms, self.NEWS_COUNT), timer)
                    if not done or got is None:
                        return
                    news = got
            except ResponseError as exc:
                if "CROSSSLOT" not in str(exc):
                    raise
                self._one_xread = False
                log.warning("one XREAD cannot watch centers in several hash slots here: "
                            "every center gets a round each %d ms instead", self.idle_ms // 10)
            else:
                for key, entries in news.items():
                    if key == CENTERS_STREAM:
                        for _, fields in entries:
                            self._add(fields.get("center"))
                    elif key in self._by_wake:
                        self._mark(self._by_wake[key])
                    else:
                        continue
                    # The center's round then moves its id on to the newest it saw.
                    self._watch.set(key, entries[-1][0])
                return
        if block is not None:
            await asyncio.sleep(max(1, self.idle_ms // 10) / 1000)
        for name in self.centers:
            self._mark(name)

    async def _loop(self) -> None:
        # Read the new-centers stream's position before the set: a center registered in
        # between is then seen on the stream.
        self._watch.set(CENTERS_STREAM, await last_stream_id(self.redis, CENTERS_STREAM))
        await self._discover(everyone=True)
        rediscover = time.monotonic() + self.REDISCOVER_S
        try:
            while not self._stop.is_set() and not cancel_requested():
                await self._pass()
                await self._wait()
                if time.monotonic() > rediscover:
                    await self._discover(everyone=False)
                    rediscover = time.monotonic() + self.REDISCOVER_S
        finally:
            self._read.cancel()

    async def run(self) -> None:
        """Run until stop() or cancellation; survives Redis restarts and failovers."""
        await serve("every center", self._loop, self._stop.is_set,
                    lambda: (self.assigned, self.rounds), self.summary_every)
