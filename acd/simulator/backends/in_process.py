"""The simulator in-process: acd.Center on a Redis connection; assignments from XREAD on
the center's events stream."""

from __future__ import annotations

import json
from typing import Any, cast

from acd.center import Center
from acd.connection import connect
from acd.errors import AlreadyExists, InvalidState
from acd.models import Contact
from acd.simulator.backends.base import Backend, Event


class RedisBackend(Backend):
    """In-process: acd.Center on a Redis connection."""

    name = "redis"

    def __init__(self, center: str, redis_url: str | None = None) -> None:
        self.redis = connect(redis_url)
        self.acd = Center(self.redis, center)
        self.center = self.acd.name

    async def start(self) -> None:
        await self.redis.ping()

    async def close(self) -> None:
        await self.redis.aclose()

    async def reset(self) -> int:
        """Delete every key of the center (a fresh center for the run)."""
        return await self.acd.delete()

    async def create_agent(self, agent_id: str, skills: list[str]) -> bool:
        try:
            await self.acd.create_agent(agent_id, "Sim", agent_id, skills, available=False)
        except AlreadyExists:
            return False
        return True

    async def set_agent_available(self, agent_id: str, available: bool) -> None:
        await self.acd.set_agent_state(agent_id, "available" if available else "unavailable")

    async def set_open(self, is_open: bool) -> None:
        await (self.acd.open() if is_open else self.acd.close())

    async def create_contact(self, contact_id: str, skills: list[str]) -> Contact:
        try:
            return await self.acd.create_contact(skills, contact_id)
        except AlreadyExists:  # a retried call that had succeeded
            return await self.acd.get_contact(contact_id)

    async def complete(self, contact_id: str, agent_id: str | None = None) -> Contact:
        return await self.acd.complete_contact(contact_id)

    async def abandon(self, contact_id: str) -> Contact | None:
        try:
            return await self.acd.abandon_contact(contact_id)
        except InvalidState:
            return None

    async def get_contact(self, contact_id: str) -> Contact:
        return await self.acd.get_contact(contact_id)

    async def events_tail(self) -> str:
        last = await cast(Any, self.redis.xrevrange(self.acd.keys.events, "+", "-", count=1))
        return str(last[0][0]) if last else "0-0"

    async def read_events(self, after: str, block_ms: int, count: int
                          ) -> tuple[str, list[Event]]:
        reply = await cast(Any, self.redis.xread({self.acd.keys.events: after}, count=count,
                                                 block=max(1, block_ms)))
        events: list[Event] = []
        for _, entries in reply or []:
            for entry_id, fields in entries:
                events.append(Event(str(entry_id), str(fields.get("type", "")), dict(fields)))
        return (events[-1].id if events else after), events

    async def store_kpis(self, kpis: dict[str, Any]) -> None:
        await cast(Any, self.redis).execute_command(
            "JSON.SET", self.acd.keys.kpis, "$", json.dumps(kpis))

    async def server_time_ms(self) -> float | None:
        seconds, micros = await self.redis.time()
        return seconds * 1000.0 + micros / 1000.0
