"""ApiBackend reports every HTTP attempt to its ``on_attempt`` hook as the client saw it:
answers (2xx, 4xx in the call's ok set, 5xx retried), and connection errors without an
answer. Against the real REST API, a real HTTP server answering 503, and a closed port."""

from __future__ import annotations

import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from acd import Center, connect
from acd.simulator.backends.api import ApiBackend, HttpAttempt
from lab.embedded import free_port


async def test_every_attempt_against_the_api_is_reported(api_url: str, redis_url: str,
                                                          api_key: str) -> None:
    seen: list[HttpAttempt] = []
    center = f"hook-{uuid.uuid4().hex[:8]}"
    backend = ApiBackend(center, api_url, on_attempt=seen.append, api_key=api_key)
    before = time.monotonic()
    try:
        await backend.start()
        assert await backend.create_agent("a1", ["x"]) is True
        assert await backend.create_agent("a1", ["x"]) is False  # 409: in the call's ok set
        await backend.create_contact("c1", ["x"])
        await backend.create_contact("c1", ["x"])  # a retry: the same contact, 200
    finally:
        await backend.close()
        redis = connect(redis_url)
        await Center(redis, center).wipe()
        await redis.aclose()
    after = time.monotonic()
    base = f"/v1/centers/{center}"
    assert [(a.method, a.url, a.status) for a in seen] == [
        ("GET", "/health/live", 200),
        ("POST", f"{base}/agents", 201),
        ("POST", f"{base}/agents", 409),
        ("POST", f"{base}/contacts", 201),
        ("POST", f"{base}/contacts", 200),
    ]
    assert all(before <= a.start <= a.end <= after for a in seen)
    assert [a.start for a in seen] == sorted(a.start for a in seen)
    assert not any(a.failed for a in seen) and seen[2].outcome == "HTTP 409"


class _UnavailableTwice(BaseHTTPRequestHandler):
    """Answers 503 to the first two requests, then 200: an API whose Redis fails over."""

    answered = 0

    def do_GET(self) -> None:
        type(self).answered += 1
        status = 503 if type(self).answered <= 2 else 200
        body = b'{"status": "ok"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


async def test_a_5xx_is_reported_then_retried() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _UnavailableTwice)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    seen: list[HttpAttempt] = []
    backend = ApiBackend("c", f"http://127.0.0.1:{server.server_address[1]}", retry_for=10,
                         on_attempt=seen.append)
    try:
        await backend.start()
    finally:
        await backend.close()
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()
    assert [a.status for a in seen] == [503, 503, 200]
    assert [a.failed for a in seen] == [True, True, False]
    assert seen[0].outcome == "HTTP 503" and seen[0].error is None


async def test_connection_errors_are_reported_without_a_status() -> None:
    seen: list[HttpAttempt] = []
    backend = ApiBackend("c", f"http://127.0.0.1:{free_port()}", retry_for=0.5,
                         on_attempt=seen.append)
    started = time.monotonic()
    try:
        with pytest.raises(httpx.ConnectError):
            await backend.start()
    finally:
        await backend.close()
    assert time.monotonic() - started < 5  # retry_for bounds the retries
    assert len(seen) >= 2, seen
    assert all(a.status is None and a.error == "ConnectError" and a.failed for a in seen)
    assert seen[0].outcome == "ConnectError"
