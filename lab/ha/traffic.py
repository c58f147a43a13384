"""Traffic for the contact failover drill (lab.drill): callers and agents through the REST
API, every HTTP attempt recorded, so errors are counted as clients see them.

Every call is retried with backoff (tenacity) on connection errors and 5xx; a retried POST
of a contact carries the same client-generated id, so the API returns the existing contact
(200) instead of queueing a second one.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_exponential_jitter

SKILLS = ["support"]
REQUEST_TIMEOUT = 5.0  # seconds per attempt
RETRY_FOR = 60.0  # seconds a client keeps retrying one call


@dataclass
class Attempt:
    start: float
    end: float
    ok: bool
    kind: str  # "ok", "HTTP 503", "ConnectError", ...


@dataclass
class ContactRecord:
    id: str
    first_try: float
    acked_at: float | None = None
    status: int | None = None  # the 2xx that acknowledged it
    assigned_seen: bool = False
    completed: bool = False
    gave_up: str | None = None


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code >= 500


class Traffic:
    """Callers and agents through the REST API, every attempt recorded."""

    def __init__(
        self, api_url: str, center: str, rate: float, agents: int, handle_s: float
    ) -> None:
        self.center = center
        self.base = f"/v1/centers/{center}"
        self.rate = rate
        self.agents = agents
        self.handle_s = handle_s
        self.http = httpx.AsyncClient(
            base_url=api_url,
            timeout=httpx.Timeout(REQUEST_TIMEOUT, connect=1.0),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=50),
        )
        self.attempts: list[Attempt] = []
        self.contacts: dict[str, ContactRecord] = {}
        self.offering = True
        self.tasks: set[asyncio.Task[None]] = set()

    async def call(
        self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201)
    ) -> httpx.Response:
        """One logical call, retried with backoff on connection errors and 5xx."""
        response: httpx.Response | None = None
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(_transient),
            wait=wait_exponential_jitter(multiplier=0.05, max=1.0, jitter=0.1),
            stop=stop_after_delay(RETRY_FOR),
            reraise=True,
        ):
            with attempt:
                t0 = time.monotonic()
                try:
                    response = await self.http.request(method, self.base + path, json=body)
                except httpx.TransportError as exc:
                    self.attempts.append(Attempt(t0, time.monotonic(), False, type(exc).__name__))
                    raise
                good = response.status_code < 500 and response.status_code in ok
                self.attempts.append(
                    Attempt(
                        t0, time.monotonic(), good, "ok" if good else f"HTTP {response.status_code}"
                    )
                )
                if response.status_code >= 500:
                    response.raise_for_status()
        assert response is not None
        return response

    async def setup(self) -> None:
        for i in range(self.agents):
            body = {
                "id": f"agent{i:03d}",
                "fname": "Drill",
                "lname": f"Agent {i}",
                "skills": SKILLS,
                "available": True,
            }
            await self.call("POST", "/agents", body, ok=(201, 409))

    async def callers(self) -> None:
        """Start a caller every 1/rate s until told to stop."""
        period = 1.0 / self.rate
        next_at = time.monotonic()
        while self.offering:
            task = asyncio.create_task(self.caller())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            next_at += period
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def caller(self) -> None:
        rec = ContactRecord(uuid.uuid4().hex[:16], time.monotonic())
        self.contacts[rec.id] = rec
        try:
            response = await self.call("POST", "/contacts", {"skills": SKILLS, "id": rec.id})
        except (httpx.HTTPError, RuntimeError) as exc:
            rec.gave_up = f"POST: {type(exc).__name__}: {exc}"
            return
        if response.status_code not in (200, 201):
            rec.gave_up = f"POST -> {response.status_code}: {response.text[:200]}"
            return
        rec.acked_at, rec.status = time.monotonic(), response.status_code
        deadline = time.monotonic() + RETRY_FOR
        state = response.json().get("state")
        while state == "queued" and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            try:
                got = await self.call("GET", f"/contacts/{rec.id}", ok=(200,))
            except (httpx.HTTPError, RuntimeError):
                continue
            if got.status_code == 200:
                state = got.json().get("state")
        if state not in ("assigned", "completed"):
            rec.gave_up = f"not assigned within {RETRY_FOR:.0f} s (state {state})"
            return
        rec.assigned_seen = True
        await asyncio.sleep(self.handle_s)
        try:
            await self.call("POST", f"/contacts/{rec.id}/complete", ok=(200,))
            rec.completed = True
        except (httpx.HTTPError, RuntimeError) as exc:
            rec.gave_up = f"complete: {type(exc).__name__}: {exc}"

    async def drain(self, timeout: float) -> None:
        self.offering = False
        deadline = time.monotonic() + timeout
        while self.tasks and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        for task in list(self.tasks):
            task.cancel()

    def recovered_since(self, t: float, settle: float) -> bool:
        """A call that started after ``t`` succeeded, and no call failed for ``settle`` s."""
        now = time.monotonic()
        recent = [a for a in self.attempts[-2000:] if a.end >= t]
        if any(not a.ok and a.end > now - settle for a in recent):
            return False
        return any(a.ok and a.start >= t for a in recent) and now - t >= settle

    async def close(self) -> None:
        await self.http.aclose()
