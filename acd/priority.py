"""Priority as virtual age: a center's seconds per priority point.

A contact of priority p is served as if it had arrived p x seconds_per_point earlier
(acd_contact_create files it at that virtual arrival). Its virtual age still grows like
everyone's, so nobody starves: a contact of priority 0 that has waited longer than that
head start is served before the newer contact of priority p. The setting is the center's
(its meta hash), read by acd_contact_create only for a contact with a priority: 0 seconds
per point, the default, makes every priority 0. :class:`CenterPriority` is part of
:class:`acd.center.Center`.
"""

from __future__ import annotations

from typing import Any, cast

from acd.center_part import CenterPart
from acd.models import whole_ms

# A point worth more than a day of waiting would be a separate queue, not an age.
MAX_SECONDS_PER_POINT = 86_400


class CenterPriority(CenterPart):
    """A center's priority setting (see the module)."""

    async def set_seconds_per_point(self, seconds: float) -> float:
        """How many seconds of waiting one priority point is worth for contacts queued
        from now on (those waiting keep their head start); 0 turns priorities off.
        Returns the previous value."""
        ms = whole_ms("seconds_per_point", seconds, MAX_SECONDS_PER_POINT)
        await self.register()
        return await self._fn.priority_ms(ms) / 1000

    async def seconds_per_point(self) -> float:
        raw = await cast(Any, self.redis.hget(self.keys.meta, "priority_ms"))
        return int(raw or 0) / 1000


def virtual_arrival(queue_score: float, head_start_ms: float | None) -> float:
    """A queued contact's score in its combination's FIFO, as virtual_score in
    acd/lua/02_queue_index.lua computes it (the same formatting, so the same double)."""
    if not head_start_ms:
        return queue_score
    return float(f"{queue_score - head_start_ms:.3f}")
