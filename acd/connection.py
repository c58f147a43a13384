"""Redis clients with deadlines and retries, from one URL."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError, ReadOnlyError, ResponseError, TimeoutError

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


def connect(url: str | None = None, settings: Settings | None = None,
            client_name: str | None = None, block_ms: int = 0) -> Redis:
    """An asyncio client that retries a failed command three times with backoff.

    Its pool holds at most ``redis_max_connections``; a command that finds them all busy
    waits up to ``redis_pool_timeout`` for one (then ConnectionError "No connection
    available."), so a burst of concurrent calls queues instead of failing.
    ``client_name`` shows in CLIENT LIST, which is how the lab sees its dispatchers.
    ``block_ms``: the longest blocking command the client will send (XREAD BLOCK); its
    socket timeout is that much longer, so only a dead connection times out.
    """
    settings = settings or get_settings()
    pool = BlockingConnectionPool.from_url(
        url or settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_pool_timeout,
        client_name=client_name,
        decode_responses=True,
        socket_timeout=settings.redis_socket_timeout + block_ms / 1000,
        socket_connect_timeout=settings.redis_connect_timeout,
        health_check_interval=10,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), 3),
        retry_on_error=[ConnectionError, TimeoutError],
    )
    return Redis(connection_pool=pool)
