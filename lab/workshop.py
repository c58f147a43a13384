"""Workshop mode: ``python -m lab workshop add|list|remove``, one Redis user, one API key and
one connection file per learner, each limited to that learner's centers.

    python -m lab workshop add alice [--host 192.168.1.20]   # prints the file it wrote
    python -m lab workshop list
    python -m lab workshop remove alice

A learner ``alice`` owns the centers ``alice`` and ``alice.<anything>`` (acd.keys
.learner_owns); the lessons' ``setup("nb02")`` gives her ``alice.nb02`` (lab.notebook
.session). What ``add`` makes:

- her first center, ``alice``, registered (the dispatchers serve it);
- the Redis user ``learner-alice`` (lab.redis_users.learner_rules): the lessons' commands on
  her keys alone, none that lists others' keys or commands. Applied at once with ACL SETUSER
  and written to the lab's ACL file, which every start rewrites from the connection files,
  so learners survive a restart (and the supervisor's restart of Redis). On the HA lab,
  on every node and into every node's ACL file (ACL users are not replicated:
  lab.ha.workshop);
- an API key scoped to her centers (acd.api.apikeys, scope ``learner alice``);
- ``<lab home>/workshop/alice.env`` (lab.learners): REDIS_URL, API_URL, ACD_API_KEY and
  ACD_LEARNER, which her notebook 00 reads with ``notebook.use_connection(path)``.

``remove`` undoes all of it: the user (ACL DELUSER also closes her connections), her keys,
every key of her centers (SCAN as admin: also what she wrote around the Functions), her
centers in the registry, the file.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from acd.api import apikeys
from acd.center import Center
from acd.connection import connect
from acd.keys import CENTERS, check_learner, learner_owns
from acd.settings import get_settings
from lab import learners as files
from lab import redis_users

T = TypeVar("T")
SCAN_COUNT = 1000


class WorkshopError(Exception):
    """What the instructor asked cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class Learner:
    """One learner as the lab sees it."""

    name: str
    file: Path
    user: bool  # the Redis user exists
    key_ids: list[str] = field(default_factory=list)
    centers: list[str] = field(default_factory=list)


def learner_url(url: str, host: str | None) -> str:
    """``url`` with its host replaced by ``host`` (the instructor's LAN address)."""
    if not host:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")
    port = f":{parts.port}" if parts.port else ""
    shown = f"[{host}]" if ":" in host else host
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}{netloc[1]}{shown}{port}"))


def _escaped(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\{}" else c for c in text)


class Workshop:
    """The learners of one lab: its Redis (as admin), its home (the connection files) and
    ``write_acl`` (rewrites the lab's ACL files from the files; None: no file to keep).

    ``node_urls``: the admin URL of every server that must hold the learners' users, when
    ``admin_url`` does not reach them all (the HA lab: ACL users are not replicated, so
    each node gets them, lab.ha.workshop). Empty: ``admin_url``'s server alone.
    ``host_note``: what ``add --host`` should tell the instructor about reaching the lab."""

    def __init__(self, home: Path, admin_url: str, api_url: str,
                 write_acl: Callable[[], object] | None = None,
                 node_urls: Sequence[str] = (), host_note: str | None = None) -> None:
        self.home, self.admin_url, self.api_url = home, admin_url, api_url
        self.write_acl = write_acl
        self.node_urls = list(node_urls)
        self.host_note = host_note or (
            "Learners reach {host} only if the lab listens there: start it with "
            "LAB_BIND=0.0.0.0 ./start.sh (Redis and the REST API on every interface; each "
            "user and key still needs its password).")
        self.unreachable: list[str] = []  # nodes the last ACL command could not reach

    def _run(self, work: Callable[[Redis], Awaitable[T]]) -> T:
        self.unreachable = []

        async def run() -> T:
            client = connect(self.admin_url)
            try:
                return await work(client)
            finally:
                await client.aclose()
        return asyncio.run(run())

    async def _acl(self, redis: Redis, *command: str) -> list[Any]:
        """``ACL <command>`` on every server holding the users: each reply. A node that
        does not answer (down, or being restarted by the supervisor) is skipped and named
        in ``unreachable``: it reads the learners from its ACL file, written first, when
        it starts. None answering is an error."""
        if not self.node_urls:
            return [await redis.execute_command("ACL", *command)]  # type: ignore[no-untyped-call]
        replies: list[Any] = []
        for url in self.node_urls:
            node = Redis.from_url(url, decode_responses=True, socket_timeout=2,
                                  socket_connect_timeout=2)
            try:
                replies.append(await node.execute_command("ACL", *command))  # type: ignore[no-untyped-call]
            except (RedisConnectionError, RedisTimeoutError, OSError):
                self.unreachable.append(urlsplit(url).hostname or url)
            finally:
                await node.aclose()
        if not replies:
            raise RedisConnectionError(f"no Redis node answered ACL {command[0]}")
        return replies

    # -- add ----------------------------------------------------------------------------
    def add(self, learner: str, host: str | None = None) -> Path:
        """Create the learner's user, key and connection file; returns the file."""
        check_learner(learner)
        path = files.connection_file(self.home, learner)
        if path.exists():
            raise WorkshopError(f"learner {learner} exists already ({path}): remove it "
                                f"first (python -m lab workshop remove {learner})")
        password = secrets.token_urlsafe(24)
        redis_url = urlsplit(self.admin_url)
        url = redis_users.role_url(redis_users.learner_user(learner), password,
                                   redis_url.hostname or "127.0.0.1", redis_url.port or 6379)
        return self._run(lambda r: self._add(r, learner, password, path, learner_url(url, host),
                                             learner_url(self.api_url, host)))

    async def _add(self, redis: Redis, learner: str, password: str, path: Path,
                   url: str, api_url: str) -> Path:
        user = redis_users.learner_user(learner)
        if any(await self._acl(redis, "GETUSER", user)):
            raise WorkshopError(f"Redis has a user {user} already: python -m lab workshop "
                                f"remove {learner} first")
        # The learner would own these centers (someone else's data, or the API's default
        # center, which the original demo's routes serve): refused, not taken over.
        taken = sorted(str(c) for c in await cast(Any, redis).smembers(CENTERS)
                       if learner_owns(learner, str(c)))
        if taken or learner_owns(learner, get_settings().acd_center):
            raise WorkshopError(f"learner {learner} would own existing centers "
                                f"({', '.join(taken) or get_settings().acd_center}): choose "
                                "another name")
        key = await apikeys.create(redis, label=f"workshop learner {learner}", learner=learner)
        try:
            files.write_connection(path, {"REDIS_URL": url, "API_URL": api_url,
                                          "ACD_API_KEY": key, "ACD_LEARNER": learner})
            # The file before the live users: a node restarting meanwhile still gets her.
            self._write_acl()
            await self._acl(redis, "SETUSER", user,
                            *redis_users.learner_rule_args(learner, password))
            await Center(redis, learner).register()  # her first center, served at once
        except BaseException:
            await cast(Any, redis).srem(CENTERS, learner)
            path.unlink(missing_ok=True)
            self._write_acl()
            await self._acl(redis, "DELUSER", user)
            await apikeys.revoke(redis, key)
            raise
        return path

    def _write_acl(self) -> None:
        if self.write_acl is not None:
            self.write_acl()

    # -- list ---------------------------------------------------------------------------
    def learners(self) -> list[Learner]:
        """Every learner: by connection file, Redis user or API key (a half-removed one
        shows too)."""
        return self._run(self._list)

    async def _list(self, redis: Redis) -> list[Learner]:
        r = cast(Any, redis)
        # A user counts only where every node has it: a node without it shows as NO.
        users = set.intersection(*({str(u) for u in found}
                                   for found in await self._acl(redis, "USERS")))
        keys = [k for k in await apikeys.list_keys(redis) if k.learner is not None]
        centers = sorted(str(c) for c in await r.smembers(CENTERS))
        names = {p.stem for p in files.folder(self.home).glob("*.env")}
        names |= {u.removeprefix(redis_users.LEARNER_PREFIX) for u in users
                  if u.startswith(redis_users.LEARNER_PREFIX)}
        names |= {str(k.learner) for k in keys}
        return [Learner(name=n, file=files.connection_file(self.home, n),
                        user=redis_users.learner_user(n) in users,
                        key_ids=[k.id for k in keys if k.learner == n],
                        centers=[c for c in centers if learner_owns(n, c)])
                for n in sorted(names)]

    # -- remove -------------------------------------------------------------------------
    def remove(self, learner: str) -> dict[str, int]:
        """Undo what ``add`` made and delete the learner's data; what was removed."""
        check_learner(learner)
        path = files.connection_file(self.home, learner)
        existed = path.exists()
        # The file first, then the ACL files: a node restarting meanwhile forgets her too.
        path.unlink(missing_ok=True)
        self._write_acl()
        done = self._run(lambda r: self._remove(r, learner))
        done["file"] = int(existed)
        return done

    async def _remove(self, redis: Redis, learner: str) -> dict[str, int]:
        r = cast(Any, redis)
        # The user first: nothing of hers writes while her data goes. Counted per server
        # that had it (the HA lab: each node).
        user = sum(int(n) for n in await self._acl(redis, "DELUSER",
                                                   redis_users.learner_user(learner)))
        keys = 0
        for key in await apikeys.list_keys(redis):
            if key.learner == learner:
                keys += await apikeys.revoke(redis, key.id)
        centers = [str(c) for c in await r.smembers(CENTERS) if learner_owns(learner, str(c))]
        deleted = 0
        # {acd:alice}... and {acd:alice.<anything>}...; never {acd:alicea}... (a learner
        # name has no '.', acd.keys.check_learner).
        for prefix in ("{acd:" + learner + "}", "{acd:" + learner + "."):
            batch: list[str] = []
            async for name in r.scan_iter(match=_escaped(prefix) + "*", count=SCAN_COUNT):
                batch.append(name)
                if len(batch) >= 500:
                    deleted += await r.unlink(*batch)
                    batch = []
            if batch:
                deleted += await r.unlink(*batch)
        if centers:
            await r.srem(CENTERS, *centers)
        return {"user": user, "api keys": keys, "centers": len(centers), "redis keys": deleted}


# -- the command line -------------------------------------------------------------------
def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("workshop", help="learners: each a Redis user, an API key and a "
                                        "connection file limited to their own centers")
    actions = p.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="create a learner and write their connection file")
    add.add_argument("learner", help="the learner's name: their centers are <name> and "
                                     "<name>.<anything>")
    add.add_argument("--host", help="the address learners reach the lab at (your LAN "
                                    "address; default: the lab's, 127.0.0.1)")
    actions.add_parser("list", help="learners, their Redis user, API key ids and centers")
    remove = actions.add_parser("remove", help="delete a learner: user, keys, data, file")
    remove.add_argument("learner")


def run(args: argparse.Namespace, find: Callable[[], Workshop]) -> int:
    """``python -m lab workshop ...`` on the workshop ``find`` gives (the running lab's:
    lab.__main__ chooses the embedded or the HA lab)."""
    try:
        shop = find()
        if args.action == "add":
            path = shop.add(args.learner, args.host)
            print(f"Learner {args.learner}: Redis user {redis_users.learner_user(args.learner)}"
                  f", centers {args.learner} and {args.learner}.*\n"
                  f"Connection file: {path}\n"
                  f"Give it to {args.learner} (it holds their password and API key); in "
                  "notebook 00 they run notebook.use_connection('<path to the file>').")
            if args.host:
                print(shop.host_note.format(host=args.host))
        elif args.action == "list":
            learners = shop.learners()
            if not learners:
                print("No learners: python -m lab workshop add <name>")
            for one in learners:
                print(f"{one.name:<16} user {'yes' if one.user else 'NO '}  "
                      f"API keys {', '.join(one.key_ids) or '-'}  "
                      f"file {one.file if one.file.exists() else '-'}\n"
                      f"{'':<16} centers {', '.join(one.centers) or '-'}")
        else:
            done = shop.remove(args.learner)
            print(f"Removed learner {args.learner}: "
                  + ", ".join(f"{k} {v}" for k, v in done.items()))
        if shop.unreachable:
            print(f"Redis node(s) {', '.join(sorted(set(shop.unreachable)))} did not answer: "
                  "each reads the learners from its ACL file when it starts again.")
    except (WorkshopError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 2
    except (RedisError, OSError) as exc:
        print(f"The lab's Redis did not answer: {exc} (is the lab running? ./start.sh)",
              file=sys.stderr)
        return 1
    return 0
