"""The drill's contacts probe: callers and agents through the REST API with the
simulator's :class:`~acd.simulator.backends.api.ApiBackend`, every HTTP attempt recorded
through its hook, and afterwards every contact checked in Redis.

Agents are created available. A caller posts a contact with its own id, polls it until it
is assigned, holds it briefly, then completes it (its agent becomes available again). The
backend retries every call with backoff on connection errors and 5xx; a retried POST
carries the same id, so the API returns the existing contact (200), never a second one.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass

import httpx

from acd import Center, connect
from acd.invariants import violations
from acd.keys import Keys
from acd.simulator.backends.api import ApiBackend, ApiError, HttpAttempt
from lab.ha import HATopology
from lab.processes import wait_until

from .figures import Attempt, Sent

SKILLS = ["support"]
REQUEST_TIMEOUT = 5.0  # seconds per attempt
CONNECT_TIMEOUT = 1.0  # a balancer that is gone: fail fast, and retry
RETRY_FOR = 60.0  # seconds a client keeps retrying one call
BACKOFF_MAX = 1.0  # seconds between two attempts at most: the outage is seen to 1 s
ANSWERED = ("assigned", "completed")


class ContactTraffic:
    """Callers and agents of center ``center`` through the API at ``api_url``."""

    def __init__(self, api_url: str, center: str, rate: float, agents: int,
                 handle_s: float, api_key: str) -> None:
        self.center = center
        self.rate = rate
        self.agents = agents
        self.handle_s = handle_s
        self.attempts: list[Attempt] = []
        self.sent: dict[str, Sent] = {}  # by contact id
        self.gave_up: dict[str, str] = {}  # contact id -> why its caller gave up
        self.api = ApiBackend(center, api_url, retry_for=RETRY_FOR,
                              request_timeout=REQUEST_TIMEOUT, connect_timeout=CONNECT_TIMEOUT,
                              backoff_max=BACKOFF_MAX, on_attempt=self._record,
                              api_key=api_key)
        self._offering = False
        self._feeder: asyncio.Task[None] | None = None
        self._callers: set[asyncio.Task[None]] = set()

    def _record(self, attempt: HttpAttempt) -> None:
        kind = attempt.outcome if attempt.failed else "ok"
        self.attempts.append(Attempt(attempt.start, attempt.end, attempt.failed, kind))

    async def setup(self) -> None:
        for i in range(self.agents):
            agent = f"agent{i:03d}"
            await self.api.create_agent(agent, SKILLS)
            await self.api.set_agent_available(agent, True)

    def start(self) -> None:
        """Start a caller every 1/rate s until :meth:`stop`."""
        self._offering = True
        self._feeder = asyncio.create_task(self._offer())

    async def _offer(self) -> None:
        period = 1.0 / self.rate
        next_at = time.monotonic()
        while self._offering:
            task = asyncio.create_task(self._caller())
            self._callers.add(task)
            task.add_done_callback(self._callers.discard)
            next_at += period
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def _caller(self) -> None:
        sent = Sent(uuid.uuid4().hex[:16], time.monotonic())
        self.sent[sent.key] = sent
        try:
            contact = await self.api.create_contact(sent.key, SKILLS)
        except (httpx.HTTPError, ApiError) as exc:
            self.gave_up[sent.key] = f"POST: {type(exc).__name__}: {exc}"
            return
        sent.acked_at = time.monotonic()
        state, deadline = contact.state, time.monotonic() + RETRY_FOR
        while state == "queued" and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            try:
                state = (await self.api.get_contact(sent.key)).state
            except (httpx.HTTPError, ApiError):
                continue
        if state not in ANSWERED:
            self.gave_up[sent.key] = f"not assigned within {RETRY_FOR:.0f} s (state {state})"
            return
        await asyncio.sleep(self.handle_s)
        try:
            await self.api.complete(sent.key)
        except (httpx.HTTPError, ApiError) as exc:
            self.gave_up[sent.key] = f"complete: {type(exc).__name__}: {exc}"

    async def stop(self, timeout: float = RETRY_FOR) -> None:
        """Stop offering; give the callers under way ``timeout`` s to finish."""
        self._offering = False
        if self._feeder is not None:
            self._feeder.cancel()
        deadline = time.monotonic() + timeout
        while self._callers and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        for task in list(self._callers):
            task.cancel()

    async def close(self) -> None:
        await self.stop(timeout=0)
        await self.api.close()


@dataclass(frozen=True)
class ContactCheck:
    """The center's contacts as Redis has them after the drill."""

    states: dict[str, str | None]  # contact id -> state (None: no such contact)
    offered_counter: int  # the center's count of contacts ever created
    foreign: int  # contact documents of the center that no caller asked for

    def kept(self) -> set[str]:
        return {cid for cid, state in self.states.items() if state in ANSWERED}

    @property
    def duplicates(self) -> int:
        """Contacts created more than once (the counter says more than exist) or by nobody."""
        created = sum(1 for state in self.states.values() if state is not None)
        return max(0, self.offered_counter - created) + self.foreign


def check_contacts(topo: HATopology, center: str, ids: list[str],
                   timeout: float = 30.0) -> ContactCheck:
    """Each contact's state read from Redis through the VIP, the center's offered counter,
    and the contact documents of the center no caller asked for."""
    keys = Keys(center)
    found: list[ContactCheck] = []

    def read() -> bool:
        with topo.client(socket_timeout=5) as r:
            pipe = r.pipeline(transaction=False)
            for cid in ids:
                pipe.execute_command("JSON.GET", keys.contact(cid), "$.state")
            raw = pipe.execute()
            prefix, known = keys.contact(""), set(ids)
            foreign = sum(1 for k in r.scan_iter(match=keys.pattern(), count=1000)
                          if str(k).startswith(prefix) and str(k)[len(prefix):] not in known)
            found.append(ContactCheck(
                states={cid: (json.loads(v)[0] if v else None)
                        for cid, v in zip(ids, raw, strict=True)},
                offered_counter=int(r.hget(keys.stats, "offered") or 0),
                foreign=foreign))
        return True

    wait_until(read, timeout, f"the contacts of center {center} read through the VIP",
               interval=0.5)
    return found[-1]


async def invariant_violations(topo: HATopology, center: str) -> list[str]:
    """acd.invariants through the VIP. Read twice a second apart: a completion still in
    flight when the traffic stopped can make one read see half of it."""
    client = connect(topo.redis_url)
    try:
        found = await violations(Center(client, center))
        if found:
            await asyncio.sleep(1.0)
            found = await violations(Center(client, center))
        return found
    finally:
        await client.aclose()
