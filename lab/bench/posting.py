"""Contacts POSTed to the REST API by concurrent clients: the one poster of the
benchmarks (``python -m lab.bench.api``, and the API path of ``python -m lab.bench``).

Each client has its own httpx.AsyncClient, so its own keep-alive connection, as separate
callers would; they take the next contact to send from one shared list.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from acd.api import apikeys

REQUEST_TIMEOUT = 10.0  # seconds, each POST


@dataclass
class Posted:
    """What the clients sent and how the API answered."""

    sent: int
    seconds: float
    latencies: list[float] = field(default_factory=list)  # s per request, sorted
    errors: dict[str, int] = field(default_factory=dict)  # status or exception -> count
    first_error: str | None = None  # the first refusal, with its body

    @property
    def created(self) -> int:
        return self.sent - sum(self.errors.values())

    @property
    def rate(self) -> float:
        """Contacts created per second."""
        return self.created / self.seconds if self.seconds > 0 else 0.0

    def percentile_ms(self, p: float) -> float:
        """The ``p`` (0..1) quantile of the request latencies, in ms."""
        if not self.latencies:
            return 0.0
        return self.latencies[min(len(self.latencies) - 1, int(p * len(self.latencies)))] * 1000


async def post_contacts(api_url: str, center: str, skills: Sequence[list[str]],
                        clients: int, timeout_s: float, api_key: str) -> Posted:
    """POST ``/v1/centers/<center>/contacts`` once per skill list in ``skills``, from
    ``clients`` concurrent clients, sending ``api_key``; the whole run fails with
    TimeoutError after ``timeout_s``. A 201 is a contact created; anything else is counted
    as an error."""
    todo = iter(skills)
    posted = Posted(len(skills), 0.0)

    async def client() -> None:
        async with httpx.AsyncClient(base_url=api_url, timeout=REQUEST_TIMEOUT,
                                     headers=apikeys.headers(api_key)) as http:
            for contact_skills in todo:
                t0 = time.perf_counter()
                try:
                    r = await http.post(f"/v1/centers/{center}/contacts",
                                        json={"skills": contact_skills})
                    status, detail = str(r.status_code), r.text[:200]
                except httpx.HTTPError as exc:
                    status, detail = type(exc).__name__, str(exc)[:200]
                posted.latencies.append(time.perf_counter() - t0)
                if status != "201":
                    posted.errors[status] = posted.errors.get(status, 0) + 1
                    posted.first_error = posted.first_error or f"{status} {detail}"

    t0 = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(client() for _ in range(clients))), timeout_s)
    posted.seconds = time.perf_counter() - t0
    posted.latencies.sort()
    return posted
