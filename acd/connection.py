"""Redis clients with deadlines and retries, from one URL."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError, TimeoutError

from acd.settings import Settings, get_settings


def connect(url: str | None = None, settings: Settings | None = None,
            client_name: str | None = None) -> Redis:
    """An asyncio client that retries a failed command three times with backoff.

    ``client_name`` shows in CLIENT LIST, which is how the lab sees its dispatchers.
    """
    settings = settings or get_settings()
    return Redis.from_url(
        url or settings.redis_url,
        client_name=client_name,
        decode_responses=True,
        socket_timeout=settings.redis_socket_timeout,
        socket_connect_timeout=settings.redis_connect_timeout,
        health_check_interval=10,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), 3),
        retry_on_error=[ConnectionError, TimeoutError],
    )
