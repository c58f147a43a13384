"""Raw Redis commands with honest types.

redis-py types ``execute_command`` loosely (untyped) and its RedisJSON helpers wrap
results; the package sends the commands it teaches (JSON.GET, FCALL, XREAD) as they are.
"""

from __future__ import annotations

import json
from typing import Any, cast

from redis.asyncio import Redis


async def command(redis: Redis, *args: Any) -> Any:
    """Send one command as written; the reply as redis-py decodes it."""
    return await cast(Any, redis).execute_command(*args)


async def json_get(redis: Redis, key: str, path: str = ".") -> Any:
    """JSON.GET decoded to Python, or None when the key does not exist."""
    raw = await command(redis, "JSON.GET", key, path)
    return None if raw is None else json.loads(raw)


async def json_get_raw(redis: Redis, key: str, path: str = ".") -> str | None:
    """JSON.GET as the JSON text Redis returns (for pydantic's model_validate_json)."""
    raw = await command(redis, "JSON.GET", key, path)
    return None if raw is None else str(raw)


async def json_set(redis: Redis, key: str, path: str, value: Any) -> None:
    await command(redis, "JSON.SET", key, path, json.dumps(value))


async def xread(redis: Redis, streams: dict[str, str], block_ms: int | None = None,
                count: int | None = None) -> list[tuple[str, list[tuple[str, dict[str, str]]]]]:
    """XREAD with str stream names and ids; ``block_ms`` None never blocks."""
    reply = await cast(Any, redis).xread(streams, count=count, block=block_ms)
    return cast(list[tuple[str, list[tuple[str, dict[str, str]]]]], reply or [])
