"""The simulator in-process: acd.Center on a Redis connection; assignments from XREAD on
the center's events stream."""

from __future__ import annotations

from typing import Any

from acd.center import Center
from acd.connection import connect
from acd.errors import AlreadyExists, InvalidState
from acd.models import AgentChoice, CenterEvent, Contact
from acd.simulator.backends.base import Backend


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

    async def reset(self) -> None:
        """A fresh center for the run: every key of the center deleted, whatever its state
        (a run interrupted with contacts assigned leaves nothing stuck)."""
        await self.acd.wipe()

    async def create_agent(self, agent_id: str, skills: list[str],
                           levels: dict[str, int] | None = None) -> bool:
        try:
            await self.acd.create_agent(agent_id, "Sim", agent_id, skills, available=False,
                                        levels=levels)
        except AlreadyExists:
            return False
        return True

    async def set_agent_available(self, agent_id: str, available: bool) -> None:
        await self.acd.set_agent_state(agent_id, "available" if available else "unavailable")

    async def set_open(self, is_open: bool) -> None:
        await (self.acd.open() if is_open else self.acd.close())

    async def set_wrap_up(self, seconds: float) -> None:
        await self.acd.set_wrap_up(seconds)

    async def set_agent_choice(self, choice: AgentChoice) -> None:
        await self.acd.set_agent_choice(choice)

    async def create_contact(self, contact_id: str, skills: list[str], priority: int = 0,
                             min_levels: dict[str, int] | None = None) -> Contact:
        try:
            return await self.acd.create_contact(skills, contact_id, priority,
                                                 min_levels=min_levels)
        except AlreadyExists:  # a retried call that had succeeded
            return await self.acd.get_contact(contact_id)

    async def set_seconds_per_point(self, seconds: float) -> None:
        await self.acd.set_seconds_per_point(seconds)

    async def set_default_steps(self, skills: list[str], steps: list[dict[str, Any]]) -> None:
        await self.acd.set_default_steps(skills, steps)

    async def set_offers(self, timeout_s: float) -> None:
        await self.acd.set_offers(timeout_s)

    async def accept_offer(self, agent_id: str, contact_id: str) -> bool:
        try:
            await self.acd.accept_offer(agent_id, contact_id)
        except InvalidState:  # timed out just before
            return False
        return True

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
        return await self.acd.last_event_id()

    async def read_events(self, after: str, block_ms: int, count: int
                          ) -> tuple[str, list[CenterEvent]]:
        return await self.acd.events(after, max(1, block_ms), count)

    async def store_kpis(self, kpis: dict[str, Any]) -> None:
        await self.acd.store_kpis(kpis)

    async def server_time_ms(self) -> float | None:
        return await self.acd.server_us() / 1000.0
