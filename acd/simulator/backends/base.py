"""What the simulator needs from an ACD (:class:`Backend`), the events it reads, and the
clock mapping between the ACD and this process."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Any

from acd.models import AgentChoice, CenterEvent, Contact

Event = CenterEvent  # the name the API backend (acd/simulator/backends/api.py) imports


class Backend(ABC):
    """The operations the simulator needs from an ACD."""

    name: str
    center: str

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Connect; check the ACD is reachable."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def reset(self) -> None:
        """A fresh center for the run: the center's agents, contacts and events deleted."""

    @abstractmethod
    async def create_agent(self, agent_id: str, skills: list[str],
                           levels: dict[str, int] | None = None) -> bool:
        """Create an unavailable agent (``levels``: skill -> 1-5 for some of its skills,
        acd.levels); False if an agent with that id exists already."""

    @abstractmethod
    async def set_agent_available(self, agent_id: str, available: bool) -> None: ...

    @abstractmethod
    async def set_open(self, is_open: bool) -> None: ...

    @abstractmethod
    async def set_wrap_up(self, seconds: float) -> None:
        """The center's wrap-up time, in real seconds (0: none)."""

    @abstractmethod
    async def set_agent_choice(self, choice: AgentChoice) -> None:
        """Which qualified available agent a contact gets (acd.agent_choice)."""

    @abstractmethod
    async def create_contact(self, contact_id: str, skills: list[str], priority: int = 0,
                             min_levels: dict[str, int] | None = None) -> Contact:
        """Queue a contact (``min_levels``: skill -> lowest level, acd.levels); a retry
        with the same id returns the contact, never a second."""

    async def set_seconds_per_point(self, seconds: float) -> None:
        """The center's priority setting (acd.priority), in the ACD's real seconds."""
        raise NotImplementedError(f"the {self.name} backend cannot set priorities")

    async def set_default_steps(self, skills: list[str], steps: list[dict[str, Any]]) -> None:
        """A combination's default steps by waiting time (acd.steps), real seconds."""
        raise NotImplementedError(f"the {self.name} backend cannot set steps by waiting time")

    async def set_offers(self, timeout_s: float) -> None:
        """The center's offer timeout (acd.offers), in real seconds; 0: off."""
        raise NotImplementedError(f"the {self.name} backend cannot set offers")

    async def accept_offer(self, agent_id: str, contact_id: str) -> bool:
        """The agent accepts its offer of the contact; False when it is over already."""
        raise NotImplementedError(f"the {self.name} backend cannot answer offers")

    @abstractmethod
    async def complete(self, contact_id: str, agent_id: str | None = None) -> Contact:
        """End an assigned contact (``agent_id``: the agent it was assigned to)."""

    @abstractmethod
    async def abandon(self, contact_id: str) -> Contact | None:
        """The caller hangs up; None if the contact was assigned meanwhile (answered)."""

    @abstractmethod
    async def get_contact(self, contact_id: str) -> Contact: ...

    @abstractmethod
    async def events_tail(self) -> str:
        """The id of the last event so far: read after it to miss nothing from now on."""

    @abstractmethod
    async def read_events(self, after: str, block_ms: int, count: int
                          ) -> tuple[str, list[CenterEvent]]:
        """Events after ``after``, waiting up to ``block_ms``; returns (last id, events)."""

    @abstractmethod
    async def store_kpis(self, kpis: dict[str, Any]) -> None: ...

    async def server_time_ms(self) -> float | None:
        """The ACD's clock, if this backend can read it; else None."""
        return None


class ClockSync:
    """Maps the ACD's clock (ms) to this process's monotonic clock.

    Each contact creation gives a sample: the server's ``queued_at`` against the middle of
    the request; the sample with the shortest round trip wins.
    """

    def __init__(self) -> None:
        self.offset_ms = 0.0  # server ms - local wall ms
        self.rtt = float("inf")
        self._mono0 = time.monotonic()
        self._wall0 = time.time()

    def sample(self, server_ms: float, t0_wall: float, t1_wall: float) -> None:
        rtt = t1_wall - t0_wall
        if rtt < self.rtt:
            self.rtt = rtt
            self.offset_ms = server_ms - (t0_wall + t1_wall) * 500.0

    def local(self, server_ms: float) -> float:
        """The monotonic time at which the server's clock reads ``server_ms``."""
        return self._mono0 + (server_ms - self.offset_ms) / 1000.0 - self._wall0

    def server_now(self) -> float:
        return (time.time()) * 1000.0 + self.offset_ms
