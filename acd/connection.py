"""Redis clients with deadlines and retries, from one URL."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import (
    ConnectionError,
    MaxConnectionsError,
    ReadOnlyError,
    ResponseError,
    TimeoutError,
)

from acd.settings import Settings, get_settings

# Error replies that mean "not now" rather than "never": a failover under way, too few
# replicas for min-replicas-to-write, a server loading its data or busy with a script.
TRANSIENT_REPLIES = ("READONLY", "NOREPLICAS", "LOADING", "MASTERDOWN", "TRYAGAIN",
                     "CLUSTERDOWN", "BUSY ")


def is_transient(exc: BaseException) -> bool:
    """True for errors a client should retry after a pause: Redis is away or failing over."""
    # redis-py turns some codes into classes and strips them from the message.
    if isinstance(exc, ConnectionError | TimeoutError | OSError | ReadOnlyError):
        return True
    return isinstance(exc, ResponseError) and str(exc).startswith(TRANSIENT_REPLIES)


class PoolExhausted(ConnectionError):
    """Every connection of the pool stayed busy for the whole wait: the process is over
    its stated limit (redis_max_connections), Redis itself may be fine."""


class WaitingConnectionPool(ConnectionPool):
    """A ConnectionPool that, when all its connections are busy, waits up to
    ``wait_timeout`` seconds for one instead of failing at once (MaxConnectionsError).

    It polls (1 ms doubling to 20 ms) rather than using redis-py's BlockingConnectionPool:
    with it, cancelling a task that was sending commands left the event loop spinning
    (redis-py 8.1, Python 3.11)."""

    def __init__(self, *args: Any, wait_timeout: float = 5.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.wait_timeout = wait_timeout

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        deadline, pause = time.monotonic() + self.wait_timeout, 0.001
        while True:
            try:
                return await cast(Any, super()).get_connection(*args, **kwargs)
            except MaxConnectionsError:
                if time.monotonic() >= deadline:
                    raise PoolExhausted(
                        f"all {self.max_connections} connections stayed busy for "
                        f"{self.wait_timeout} s") from None
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.02)


def connect(url: str | None = None, settings: Settings | None = None,
            client_name: str | None = None, block_ms: int = 0) -> Redis:
    """An asyncio client that retries a failed command three times with backoff.

    Its pool holds at most ``redis_max_connections``; a command that finds them all busy
    waits up to ``redis_pool_timeout`` for one (then PoolExhausted), so a burst of
    concurrent calls queues instead of failing.
    ``client_name`` shows in CLIENT LIST, which is how the lab sees its dispatchers.
    ``block_ms``: the longest blocking command the client will send (XREAD BLOCK); its
    socket timeout is that much longer, so only a dead connection times out.
    """
    settings = settings or get_settings()
    pool = WaitingConnectionPool.from_url(
        url or settings.redis_url,
        max_connections=settings.redis_max_connections,
        wait_timeout=settings.redis_pool_timeout,
        client_name=client_name,
        decode_responses=True,
        socket_timeout=settings.redis_socket_timeout + block_ms / 1000,
        socket_connect_timeout=settings.redis_connect_timeout,
        health_check_interval=10,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), 3),
        retry_on_error=[ConnectionError, TimeoutError],
    )
    return Redis(connection_pool=pool)
