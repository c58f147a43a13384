"""Wrap-up (after-contact work): a center's wrap-up time, and ending one early.

With a wrap-up time, an agent whose contact is completed is in state ``wrap_up`` (in no
availability set, on no contact) for that long, then available, or unavailable if it
asked for that meanwhile. The timer is Redis's, not a client's: every dispatch round
first ends the wrap-ups that are due ("Wrap-up" in acd/lua/03_agent_states.lua), and tells the
dispatcher when the next one is (``DispatchRound.wrap_up_in_ms``) so it wakes in time.
:class:`CenterWrapUp` is part of :class:`acd.center.Center`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar, cast

from acd.center_part import CenterPart
from acd.functions import fcall
from acd.keys import valid_name
from acd.models import Agent, whole_ms

T = TypeVar("T")

MAX_WRAP_UP_SECONDS = 3600.0
"""An hour: a longer after-contact work is a break, which is 'unavailable'."""


class CenterWrapUp(CenterPart):
    """A center's wrap-up time and its agents' wrap-ups."""

    async def set_wrap_up(self, seconds: float) -> float:
        """Set how long an agent is in wrap-up after each completed contact (0: none, the
        agent is available at once); returns the previous value. Wrap-ups under way keep
        the end they started with."""
        ms = whole_ms("wrap_up_seconds", seconds, MAX_WRAP_UP_SECONDS)
        await self.register()
        before = await fcall(self.redis, "acd_wrap_up_set", [self.keys.meta], [ms])
        return int(before) / 1000

    async def wrap_up_seconds(self) -> float:
        """The center's wrap-up time in seconds (0: none)."""
        ms = await cast(Any, self.redis).hget(self.keys.meta, "wrap_up_ms")
        return int(ms or 0) / 1000

    async def end_wrap_up(self, agent_id: str) -> Agent:
        """End an agent's wrap-up now: it becomes available (or unavailable, if it asked
        for that meanwhile). InvalidState when it is not in wrap-up."""
        valid_name("agent id", agent_id)
        raw = await fcall(self.redis, "acd_wrap_up_end", [self.keys.agent(agent_id)],
                          [agent_id])
        return Agent.model_validate_json(raw)

    async def release_wrap_ups(self) -> int:
        """End every wrap-up that is due, as each dispatch round does first (in calls of
        at most 25): for the reconciler, or a center no dispatcher serves. Returns how
        many it ended."""
        total = 0
        while True:
            ended, wrap_in = await fcall(self.redis, "acd_wrap_up_release",
                                         [self.keys.meta], [])
            total += int(ended)
            if int(wrap_in) != 0:
                return total


class PendingRead(Generic[T]):
    """A blocking read (XREAD BLOCK on wake streams) that may outlive one wait.

    Redis ends a blocked command's timeout on its own clock tick (hz 10: measured 100 ms
    late for a 3-90 ms BLOCK on an idle server), too coarse for a wrap-up that ends in
    40 ms. So a dispatcher times a wrap-up's end itself and races it against its read:
    when the timer wins, the read stays pending for the next wait, which goes on with it.
    A read pending from an earlier wait starts from older stream ids: it may return at
    once with entries a round has seen (one extra round), never miss one."""

    def __init__(self) -> None:
        self._read: asyncio.Future[T] | None = None

    @property
    def pending(self) -> bool:
        return self._read is not None

    async def wait(self, start: Callable[[], Awaitable[T]], timer_ms: int | None
                   ) -> tuple[bool, T | None]:
        """Start a read with ``start`` unless one is pending, then wait for it, or at most
        ``timer_ms`` (None: no timer; 0: take a finished read only). Returns (whether the
        read finished, its result); its error is raised."""
        if self._read is None:
            self._read = asyncio.ensure_future(start())
        if timer_ms is None:
            await asyncio.wait([self._read])
        elif timer_ms > 0:
            await asyncio.wait([self._read], timeout=timer_ms / 1000)
        if not self._read.done():
            return False, None
        read, self._read = self._read, None
        return True, read.result()

    def cancel(self) -> None:
        """Cancel a pending read (the loop that waits on it stops)."""
        if self._read is not None:
            self._read.cancel()
            self._read = None
