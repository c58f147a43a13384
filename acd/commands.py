"""Raw Redis commands with honest types.

redis-py types ``execute_command`` loosely (untyped) and its RedisJSON helpers wrap
results; the package sends the commands it teaches (JSON.GET, FCALL, XREAD) as they are.
Stream reads and the server clock are parsed here, once, for every caller.
"""

from __future__ import annotations

import json
from typing import Any, cast

from redis.asyncio import Redis


async def command(redis: Redis, *args: Any) -> Any:
    """Send one command as written; the reply as redis-py decodes it, except that JSON.GET
    and JSON.MGET replies are always JSON text (see json_text)."""
    reply = await cast(Any, redis).execute_command(*args)
    name = str(args[0]).upper()
    if name == "JSON.GET" and reply is not None:
        return json_text(reply)
    if name == "JSON.MGET" and isinstance(reply, list):
        return [None if item is None else json_text(item) for item in reply]
    return reply


def json_text(reply: Any) -> str:
    """A JSON.GET (or JSON.MGET item) reply as JSON text. A client on which redis-py's
    ``.json()`` was ever called decodes these replies itself (that call registers response
    callbacks on the client: a notebook's ``r.json().get(...)`` does), so the reply may be
    Python already."""
    if isinstance(reply, bytes):
        return reply.decode()
    return reply if isinstance(reply, str) else json.dumps(reply)


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


StreamEntry = tuple[str, dict[str, str]]
"""One stream entry: its id and its fields."""


def stream_entries(reply: Any, key: str) -> list[StreamEntry]:
    """The entries of ``key`` in XREAD's reply, RESP2 (``[[key, entries]]``) or RESP3
    (``{key: [entries]}``) form, with str ids and fields."""
    if not reply:
        return []
    if isinstance(reply, dict):
        rows = reply.get(key) or []
        # redis-py wraps RESP3's entry list in one more list.
        if rows and isinstance(rows[0], list):
            rows = rows[0]
    else:
        rows = next((entries for name, entries in reply if name == key), [])
    return [(str(eid), {str(k): str(v) for k, v in dict(fields).items()})
            for eid, fields in rows]


async def xread(redis: Redis, key: str, after: str, block_ms: int | None = None,
                count: int | None = None) -> list[StreamEntry]:
    """XREAD of one stream after the id ``after``; waits up to ``block_ms`` for an entry
    (None: does not wait). A wait without a deadline is refused: XREAD's BLOCK 0 would
    wait for ever."""
    if block_ms is not None and block_ms <= 0:
        raise ValueError(f"block_ms must be positive or None, not {block_ms}")
    reply = await cast(Any, redis).xread({key: after}, count=count, block=block_ms)
    return stream_entries(reply, key)


async def xread_many(redis: Redis, after: dict[str, str], block_ms: int | None = None,
                     count: int | None = None) -> dict[str, list[StreamEntry]]:
    """XREAD of several streams at once (each after its own id): the streams that have
    entries, with them. One blocking call watches them all (on one server: the streams of
    different centers are in different hash slots, which a cluster refuses here)."""
    if block_ms is not None and block_ms <= 0:
        raise ValueError(f"block_ms must be positive or None, not {block_ms}")
    reply = await cast(Any, redis).xread(after, count=count, block=block_ms)
    if not reply:
        return {}
    names = reply.keys() if isinstance(reply, dict) else [name for name, _ in reply]
    found = {str(name): stream_entries(reply, name) for name in names}
    return {name: entries for name, entries in found.items() if entries}


async def xrevrange(redis: Redis, key: str, count: int, before: str = "+"
                    ) -> list[StreamEntry]:
    """The newest ``count`` entries up to the id ``before`` (inclusive), newest first."""
    rows = await cast(Any, redis).xrevrange(key, max=before, count=count)
    return [(str(eid), {str(k): str(v) for k, v in dict(fields).items()})
            for eid, fields in rows]


async def last_stream_id(redis: Redis, key: str) -> str:
    """The id of the newest entry of a stream, "0-0" if it is empty or missing: reading
    after it misses nothing from now on."""
    newest = await xrevrange(redis, key, 1)
    return newest[0][0] if newest else "0-0"


def time_us(reply: Any) -> int:
    """TIME's reply (seconds, microseconds) as microseconds."""
    seconds, micros = reply
    return int(seconds) * 1_000_000 + int(micros)


async def server_time_us(redis: Redis) -> int:
    """The server's clock in microseconds (TIME)."""
    return time_us(await cast(Any, redis).time())


def _bulk(value: str) -> bytes:
    data = value.encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


def _fields(raw: Any) -> dict[str, str]:
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    items = list(raw or [])
    return {str(k): str(v) for k, v in zip(items[::2], items[1::2], strict=True)}


def _xread_reply(reply: Any) -> dict[str, list[StreamEntry]]:
    """XREAD's raw reply (RESP2 list or RESP3 map, no redis-py callback) by stream."""
    if not reply:
        return {}
    pairs = reply.items() if isinstance(reply, dict) else reply
    found = {str(name): [(str(eid), _fields(fields)) for eid, fields in rows or []]
             for name, rows in pairs}
    return {name: entries for name, entries in found.items() if entries}


class StreamWatch:
    """One XREAD over many streams, each after its own id, kept encoded between calls.

    redis-py encodes every argument of every call anew: for 2,000 streams (4,000
    arguments) that cost about 8 ms of Python per XREAD, paid on every wake-up by every
    dispatcher. Here a call re-encodes only the ids that moved since the last one."""

    def __init__(self) -> None:
        self._at: dict[str, int] = {}  # stream -> its place in the command
        self._keys: list[bytes] = []
        self._ids: list[bytes] = []
        self._after: list[str] = []
        self._keys_joined = b""

    def __len__(self) -> int:
        return len(self._at)

    def after(self, key: str) -> str:
        """The id the next read of ``key`` starts after."""
        return self._after[self._at[key]]

    def set(self, key: str, after: str) -> None:
        """Watch ``key`` from ``after`` on (added if new)."""
        at = self._at.get(key)
        if at is None:
            self._at[key] = len(self._keys)
            self._keys.append(_bulk(key))
            self._ids.append(_bulk(after))
            self._after.append(after)
            self._keys_joined = b""
        elif self._after[at] != after:
            self._ids[at] = _bulk(after)
            self._after[at] = after

    def remove(self, key: str) -> None:
        at = self._at.pop(key, None)
        if at is None:
            return
        del self._keys[at], self._ids[at], self._after[at]
        self._at = {k: i for i, k in enumerate(self._at)}  # rare (a center deleted)
        self._keys_joined = b""

    def packed(self, block_ms: int | None, count: int | None) -> bytes:
        """The XREAD command as RESP, ready for the socket."""
        head = ["XREAD"]
        if count is not None:
            head += ["COUNT", str(count)]
        if block_ms is not None:
            head += ["BLOCK", str(block_ms)]
        head.append("STREAMS")
        if not self._keys_joined:
            self._keys_joined = b"".join(self._keys)
        size = len(head) + 2 * len(self._keys)
        return b"".join([b"*%d\r\n" % size, *map(_bulk, head), self._keys_joined,
                         *self._ids])

    async def read(self, redis: Redis, block_ms: int | None = None, count: int | None = None
                   ) -> dict[str, list[StreamEntry]]:
        """XREAD of every watched stream after its id; waits up to ``block_ms`` (None: does
        not wait) for an entry. The streams that have entries, with them (the ids to
        read after are not moved: the caller does that with set())."""
        if block_ms is not None and block_ms <= 0:
            raise ValueError(f"block_ms must be positive or None, not {block_ms}")
        if not self._at:
            raise ValueError("StreamWatch.read: no stream to watch")
        packed = self.packed(block_ms, count)
        pool = cast(Any, redis.connection_pool)
        conn = await pool.get_connection()

        async def once() -> Any:
            await conn.send_packed_command(packed)
            return await conn.read_response()

        async def drop(_: Exception) -> None:
            await conn.disconnect()  # a pooled connection gone stale: retried on a new one

        try:
            return _xread_reply(await conn.retry.call_with_retry(once, drop))
        except BaseException:
            # Cancelled or failed mid-reply: the late reply would confuse the next user.
            await conn.disconnect()
            raise
        finally:
            await pool.release(conn)
