"""What a center tells over time: its events stream, its wake stream and the server clock
that stamps them. :class:`CenterStreams` is part of :class:`acd.center.Center`.

Every wait has a deadline: XREAD's BLOCK 0 (wait for ever) is never sent.
"""

from __future__ import annotations

from redis.asyncio import Redis

from acd.center_part import CenterPart
from acd.commands import last_stream_id, server_time_us, xread, xrevrange
from acd.models import CenterEvent, EventPage


class CenterStreams(CenterPart):
    """The events and wake streams of one center, and the server's clock."""

    async def events(self, after: str = "$", block_ms: int = 0, count: int = 100,
                     via: Redis | None = None) -> EventPage:
        """Up to ``count`` events after the stream id ``after`` ("$": only those to come),
        oldest first, and the id to read after next time (``after`` when none came).

        ``block_ms`` > 0 waits that long for a first event; 0 does not wait (a wait
        always has a deadline). ``via``: the client to wait on, one whose socket timeout
        outlasts the wait (acd.connect(block_ms=...)); by default this center's.
        """
        start = await self.last_event_id() if after == "$" else after
        client = via if via is not None and block_ms > 0 else self.redis
        entries = await xread(client, self.keys.events, start,
                              block_ms if block_ms > 0 else None, count)
        events = [CenterEvent(eid, fields.get("type", ""), fields) for eid, fields in entries]
        return EventPage(events[-1].id if events else start, events)

    async def last_event_id(self) -> str:
        """The id of the newest event ("0-0" if none): read after it to miss nothing."""
        return await last_stream_id(self.redis, self.keys.events)

    async def latest_events(self, count: int, before: str = "+") -> list[CenterEvent]:
        """The newest ``count`` events up to the id ``before`` (inclusive), oldest first."""
        rows = await xrevrange(self.redis, self.keys.events, count, before)
        return [CenterEvent(eid, f.get("type", ""), f) for eid, f in reversed(rows)]

    async def wait_for_wake(self, after: str, block_ms: int) -> None:
        """Wait up to ``block_ms`` for a wake-up (a contact queued, an agent available)
        newer than the wake id ``after``; returns at once if one came meanwhile."""
        await xread(self.redis, self.keys.wake, after, block_ms, count=1)

    async def server_ms(self) -> int:
        """The server's clock in whole ms, as the Functions stamp times: ages computed
        against it agree with theirs."""
        return await server_time_us(self.redis) // 1000

    async def server_us(self) -> int:
        """The server's clock in µs, for mapping it to a local clock finely."""
        return await server_time_us(self.redis)
