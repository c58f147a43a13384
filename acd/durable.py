"""Writes confirmed only once a replica has them: the write and its WAIT on one connection.

WAIT counts the replicas that acknowledged everything *this connection* wrote (its last
propagated write). Sent on another connection of the pool, it waits for that connection's
writes instead, and on a connection that never wrote (a fresh one after a reconnect, or a
retry whose call found the contact already there and wrote nothing) it returns at once:
a confirmation the replicas never gave. After a failover that confirmation is a lost
contact. So the call, a marker write and WAIT go in one pipeline on one connection: they
reach the same server in order, and a replica that acknowledged the marker holds
everything that server had before it, the call's write or the copy found there.
A broken connection fails the pipeline as a whole; redis-py's retry sends all of it again
on a new connection (to whichever server is primary by then), never WAIT alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from acd.errors import NotDurable
from acd.functions import missing_library, raise_mapped, reload_library

# The marker: a counter in the center's meta hash (its hash slot, deleted with it).
MARKER_FIELD = "replication_checks"


async def replicated_calls(redis: Redis, commands: Sequence[Sequence[Any]], marker_key: str,
                           replicas: int, timeout_ms: int) -> tuple[list[Any], int]:
    """Send ``commands``, HINCRBY ``marker_key``, then WAIT ``replicas`` ``timeout_ms``, in
    one pipeline. Returns the commands' replies (an exception in place of an error reply)
    and how many replicas acknowledged them all."""
    async with redis.pipeline(transaction=False) as pipe:
        for args in commands:
            pipe.execute_command(*args)
        pipe.execute_command("HINCRBY", marker_key, MARKER_FIELD, 1)
        pipe.execute_command("WAIT", replicas, timeout_ms)
        replies = await pipe.execute(raise_on_error=False)
    *results, marker, acked = replies
    for reply in (marker, acked):
        if isinstance(reply, Exception):
            raise reply
    return results, int(acked)


async def replicated_fcall(redis: Redis, call: tuple[str, list[str], list[Any]],
                           marker_key: str, replicas: int, timeout_ms: int) -> tuple[Any, int]:
    """FCALL ``call`` (function, keys, args) as :func:`replicated_calls` sends commands;
    its reply (the library's error replies raised as acd exceptions) and the replicas'
    count. A server that does not know the library gets it, and the call again."""
    name, keys, args = call
    for attempt in (1, 2):
        (reply,), acked = await replicated_calls(
            redis, [("FCALL", name, len(keys), *keys, *args)], marker_key, replicas,
            timeout_ms)
        if not isinstance(reply, Exception):
            return reply, acked
        if attempt == 1 and missing_library(reply):
            await reload_library(redis, name)
            continue
        if isinstance(reply, ResponseError):
            raise_mapped(reply)
        raise reply
    raise AssertionError("unreachable")


def require(what: str, acked: int, wanted: int) -> None:
    """NotDurable unless ``wanted`` replicas acknowledged ``what``."""
    if acked < wanted:
        raise NotDurable(f"{what}: {acked} of {wanted} replicas acknowledged it; retry "
                         "with the same id")
