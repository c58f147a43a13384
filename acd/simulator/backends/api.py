"""The simulator through the REST API with httpx: the /v1 routes (:class:`ApiBackend`) or
the original demo's routes (:class:`DemoApiBackend`); assignments from the long-poll
``GET /v1/centers/{center}/events`` route. Every call has a deadline.

Each HTTP attempt (a call retried three times is three attempts) can be reported to an
``on_attempt`` hook as the client saw it: a failover drill counts errors and measures
outages from these."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_delay,
    wait_exponential_jitter,
)

from acd.api import apikeys
from acd.models import AgentChoice, Contact
from acd.settings import get_settings
from acd.simulator.backends.base import Backend, Event

REQUEST_TIMEOUT = 10.0  # seconds, every API call (the long poll adds its block time)
RETRY_FOR = 20.0  # seconds of retrying a call through connection errors and 5xx
BACKOFF_MAX = 2.0  # seconds, the longest wait between two attempts of a call


def _transient(exc: BaseException) -> bool:
    # 401 and 403 are not retried: a key does not become valid by waiting.
    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code >= 500


class ApiError(RuntimeError):
    """The API answered with an error the simulator cannot handle; names the call."""


@dataclass(frozen=True)
class HttpAttempt:
    """One HTTP attempt as the client saw it."""

    method: str
    url: str  # the path under the API's base URL
    start: float  # time.monotonic() when it was sent
    end: float  # when its answer, or its error, came
    status: int | None  # None: no answer
    error: str | None = None  # the exception's kind when there was no answer

    @property
    def failed(self) -> bool:
        """No answer, or a 5xx ("not now"): what the backend retries."""
        return self.status is None or self.status >= 500

    @property
    def outcome(self) -> str:
        """"HTTP 201", "HTTP 503", "ConnectError", ..."""
        return f"HTTP {self.status}" if self.status is not None else str(self.error)


AttemptHook = Callable[[HttpAttempt], None]


class ApiBackend(Backend):
    """Through the REST API (``/v1/centers/{center}/...``) with httpx."""

    name = "api"

    def __init__(self, center: str, api_url: str, retry_for: float = RETRY_FOR, *,
                 request_timeout: float = REQUEST_TIMEOUT, connect_timeout: float | None = None,
                 backoff_max: float = BACKOFF_MAX, on_attempt: AttemptHook | None = None,
                 api_key: str | None = None) -> None:
        """``retry_for``: seconds one call is retried, waiting up to ``backoff_max`` s
        between attempts; ``request_timeout``: seconds one attempt may take
        (``connect_timeout`` of them to connect); ``on_attempt``: called on the event loop
        with every attempt (it must not block or raise); ``api_key``: the key sent with
        every call (default: ACD_API_KEY, settings.acd_api_key)."""
        self.center = center
        self.base = f"/v1/centers/{center}"
        self.retry_for = retry_for
        self.request_timeout = request_timeout
        self.connect_timeout = request_timeout if connect_timeout is None else connect_timeout
        self.backoff_max = backoff_max
        self.on_attempt = on_attempt
        key = get_settings().acd_api_key if api_key is None else api_key
        self.http = httpx.AsyncClient(
            base_url=api_url.rstrip("/"), timeout=self._timeout(request_timeout),
            headers=apikeys.headers(key),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=100))

    def _timeout(self, seconds: float) -> httpx.Timeout:
        return httpx.Timeout(seconds, connect=min(self.connect_timeout, seconds))

    async def _call(self, method: str, path: str, ok: tuple[int, ...] = (200, 201),
                    json_body: Any = None, params: dict[str, Any] | None = None,
                    timeout: float | None = None) -> httpx.Response:
        """A call of the center's /v1 routes (see _request)."""
        return await self._request(method, self.base + path, ok, json_body, params, timeout)

    async def _request(self, method: str, url: str, ok: tuple[int, ...] = (200, 201),
                       json_body: Any = None, params: dict[str, Any] | None = None,
                       timeout: float | None = None) -> httpx.Response:
        """One call, retried with backoff on connection errors and 5xx; returns any status
        in ``ok``, raises ApiError on other statuses. ``timeout``: seconds per attempt
        (default ``request_timeout``)."""
        limit = self._timeout(self.request_timeout if timeout is None else timeout)
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(_transient),
            wait=wait_exponential_jitter(multiplier=0.05, max=self.backoff_max, jitter=0.05),
            stop=stop_after_delay(self.retry_for), reraise=True,
        ):
            with attempt:
                response = await self._attempt(method, url, json_body, params, limit)
                if response.status_code >= 500:
                    response.raise_for_status()
        if response.status_code not in ok:
            raise ApiError(f"{method} {url} -> {response.status_code}: "
                           f"{response.text[:300]}")
        return response

    async def _attempt(self, method: str, url: str, json_body: Any,
                       params: dict[str, Any] | None, timeout: httpx.Timeout
                       ) -> httpx.Response:
        """One HTTP attempt, reported to ``on_attempt``."""
        start = time.monotonic()
        try:
            response = await self.http.request(method, url, json=json_body, params=params,
                                               timeout=timeout)
        except httpx.TransportError as exc:
            if self.on_attempt is not None:
                self.on_attempt(HttpAttempt(method, url, start, time.monotonic(), None,
                                            type(exc).__name__))
            raise
        if self.on_attempt is not None:
            self.on_attempt(HttpAttempt(method, url, start, time.monotonic(),
                                        response.status_code))
        return response

    async def start(self) -> None:
        """Wait (``retry_for`` at most) until the API answers (/health/live 200). Not
        /health: a run may bring its own in-process dispatchers, started after this."""
        await self._request("GET", "/health/live", ok=(200,))

    async def close(self) -> None:
        await self.http.aclose()

    async def reset(self) -> None:
        """A fresh center for the run: DELETE /v1/centers/{center} (nothing to delete is
        fine). ApiError naming them while contacts of an earlier run are assigned: end them
        first (the API never drops a contact an agent holds)."""
        await self._call("DELETE", "", ok=(200, 404))

    async def create_agent(self, agent_id: str, skills: list[str],
                           levels: dict[str, int] | None = None) -> bool:
        body = {"id": agent_id, "fname": "Sim", "lname": agent_id, "skills": skills,
                "available": False, **({"levels": levels} if levels else {})}
        response = await self._call("POST", "/agents", ok=(201, 409), json_body=body)
        return response.status_code == 201

    async def set_agent_available(self, agent_id: str, available: bool) -> None:
        await self._call("PUT", f"/agents/{agent_id}/state",
                         json_body={"state": "available" if available else "unavailable"})

    async def set_open(self, is_open: bool) -> None:
        await self._call("PUT", "/state", json_body={"open": is_open})

    async def set_wrap_up(self, seconds: float) -> None:
        await self._call("PUT", "/wrap-up", json_body={"wrap_up_seconds": seconds})

    async def set_agent_choice(self, choice: AgentChoice) -> None:
        await self._call("PUT", "/agent-choice", json_body={"choice": choice.value})

    async def create_contact(self, contact_id: str, skills: list[str], priority: int = 0,
                             min_levels: dict[str, int] | None = None) -> Contact:
        response = await self._call("POST", "/contacts", json_body={
            "skills": skills, "id": contact_id, "priority": priority,
            **({"min_levels": min_levels} if min_levels else {})})
        return Contact.model_validate(response.json())

    async def set_seconds_per_point(self, seconds: float) -> None:
        await self._call("PUT", "/priority", json_body={"seconds_per_point": seconds})

    async def set_default_steps(self, skills: list[str], steps: list[dict[str, Any]]) -> None:
        await self._call("PUT", f"/relaxation/{','.join(sorted(skills))}",
                         json_body={"steps": steps})

    async def set_offers(self, timeout_s: float) -> None:
        await self._call("PUT", "/offers", json_body={"timeout_s": timeout_s})

    async def accept_offer(self, agent_id: str, contact_id: str) -> bool:
        response = await self._call("POST", f"/contacts/{contact_id}/offer/accept",
                                    ok=(200, 409))
        return response.status_code == 200

    async def complete(self, contact_id: str, agent_id: str | None = None) -> Contact:
        response = await self._call("POST", f"/contacts/{contact_id}/complete")
        return Contact.model_validate(response.json())

    async def abandon(self, contact_id: str) -> Contact | None:
        response = await self._call("POST", f"/contacts/{contact_id}/abandon", ok=(200, 409))
        return None if response.status_code == 409 else Contact.model_validate(
            response.json())

    async def get_contact(self, contact_id: str) -> Contact:
        response = await self._call("GET", f"/contacts/{contact_id}")
        return Contact.model_validate(response.json())

    async def events_tail(self) -> str:
        last_id, events = await self.read_events("$", 1, 1)
        if events:
            return events[-1].id
        return last_id if last_id and last_id != "$" else "0-0"

    async def read_events(self, after: str, block_ms: int, count: int
                          ) -> tuple[str, list[Event]]:
        block_ms = min(max(block_ms, 1), 5000)
        response = await self._call(
            "GET", "/events", params={"after": after, "block_ms": block_ms, "count": count},
            timeout=self.request_timeout + block_ms / 1000.0)
        doc = response.json()
        events = [Event(str(e["id"]), str(e.get("type", "")),
                        {k: str(v) for k, v in e.items()}) for e in doc.get("events", [])]
        last = str(doc.get("last_id") or (events[-1].id if events else after))
        return last, events

    async def store_kpis(self, kpis: dict[str, Any]) -> None:
        await self._call("PUT", "/kpis", ok=(200, 201, 204), json_body=kpis)


class DemoApiBackend(ApiBackend):
    """Through the original demo's routes, as its clients use them: contacts are created
    with ``POST /contact`` (the API chooses the id: no retry-safe creation) and finished
    in two calls, ``PATCH /contact/<key>`` then ``PATCH /agent/<key>/state {"state": 1}``.

    The demo's routes serve the API's default center (its ACD_CENTER), which must be
    ``center``; events, contact reads and KPIs go through the /v1 routes of that center.
    """

    name = "demo"

    async def create_agent(self, agent_id: str, skills: list[str],
                           levels: dict[str, int] | None = None) -> bool:
        if levels:
            raise NotImplementedError("the demo's routes know no levels: use via='api'")
        body = {"fname": "Sim", "lname": agent_id, "skills": skills}
        created = await self._request("POST", f"/agent/agent:{agent_id}", (201, 409), body)
        if (await self.http.get(f"{self.base}/agents/{agent_id}")).status_code == 404:
            raise ApiError(f"the API's demo routes do not serve center {self.center}: start "
                           f"the API with ACD_CENTER={self.center}")
        return created.status_code == 201

    async def set_agent_available(self, agent_id: str, available: bool) -> None:
        await self._request("PATCH", f"/agent/agent:{agent_id}/state",
                            json_body={"state": 1 if available else 0})

    async def set_open(self, is_open: bool) -> None:
        await self._request("POST", "/acd", json_body={"state": 1 if is_open else 0})

    async def create_contact(self, contact_id: str, skills: list[str], priority: int = 0,
                             min_levels: dict[str, int] | None = None) -> Contact:
        """Queues a contact whose id the API chooses (the returned contact's id); the
        demo's route knows no priority (the engine refuses a priority mix here) nor
        minimum levels."""
        if min_levels:
            raise NotImplementedError("the demo's routes know no levels: use via='api'")
        created = await self._request("POST", "/contact", json_body={"skills": skills})
        key = created.json()["contact_key"]
        return await self.get_contact(key.partition(":")[2])

    async def set_seconds_per_point(self, seconds: float) -> None:
        raise NotImplementedError("the demo's routes know no priority: use via='api'")

    async def complete(self, contact_id: str, agent_id: str | None = None) -> Contact:
        await self._request("PATCH", f"/contact/contact:{contact_id}")
        if agent_id is not None:
            await self.set_agent_available(agent_id, True)
        return await self.get_contact(contact_id)

    async def abandon(self, contact_id: str) -> Contact | None:
        contact = await self.get_contact(contact_id)
        if contact.state != "queued":
            return None
        await self._request("PATCH", f"/contact/contact:{contact_id}")  # queued: abandoned
        contact = await self.get_contact(contact_id)
        return contact if contact.state == "abandoned" else None
