"""``python -m lab apikey add|list|revoke``: the REST API's keys (acd/api/apikeys.py) in the
lab's Redis; and the lab's own admin key, created once by start.sh and kept in ``.env`` as
ACD_API_KEY, which every client of the project sends (settings.acd_api_key; lab.api_key()).

    python -m lab apikey add --center team3 --label "learner 3"   # prints the key once
    python -m lab apikey add --learner alice --label "a new key for alice"
    python -m lab apikey add --admin
    python -m lab apikey list
    python -m lab apikey revoke 1f2e3d4c5b6a
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from acd.api import apikeys
from acd.connection import connect
from acd.settings import get_settings

T = TypeVar("T")


def _on_redis(url: str, work: Callable[[Redis], Awaitable[T]]) -> T:
    async def run() -> T:
        client = connect(url)
        try:
            return await work(client)
        finally:
            await client.aclose()
    return asyncio.run(run())


def new_key(redis_url: str, center: str | None = None, label: str = "",
            learner: str | None = None) -> str:
    """A new key in the Redis at ``redis_url``: admin, or scoped to ``center``, or to a
    workshop learner's centers (``learner``; lab.workshop makes one per learner)."""
    return _on_redis(redis_url, lambda r: apikeys.create(r, center, label, learner))


LAB_KEY_LABEL = "lab admin (start.sh, ACD_API_KEY in .env)"


def lab_key(redis_url: str, current: str | None) -> str:
    """The lab's admin key: ``current`` (from .env) while Redis still has it, else a new
    one (first start, purged data, or revoked)."""
    async def keep_or_create(redis: Redis) -> str:
        if current and await apikeys.valid(redis, current):
            return current
        # A new lab key replaces the old one (python -m lab rotate forgot it): revoked.
        for old in await apikeys.list_keys(redis):
            if old.label == LAB_KEY_LABEL:
                await apikeys.revoke(redis, old.id)
        return await apikeys.create(redis, None, LAB_KEY_LABEL)
    return _on_redis(redis_url, keep_or_create)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("apikey", help="add, list or revoke REST API keys")
    p.add_argument("--redis-url", help="default: REDIS_URL from .env")
    keys = p.add_subparsers(dest="action", required=True)
    add = keys.add_parser("add", help="create a key and print it (only this once)")
    scope = add.add_mutually_exclusive_group(required=True)
    scope.add_argument("--center", help="the one center the key may use (a learner's)")
    scope.add_argument("--learner", help="a workshop learner's centers: <learner> and "
                                         "<learner>.<anything>")
    scope.add_argument("--admin", action="store_true", help="every center")
    add.add_argument("--label", default="", help="who or what the key is for")
    keys.add_parser("list", help="ids, scopes and labels (never the keys)")
    revoke = keys.add_parser("revoke", help="delete a key: refused from the next request")
    revoke.add_argument("id", help="the key's id (or the whole key)")


def run(args: argparse.Namespace) -> int:
    url = args.redis_url or get_settings().redis_url
    try:
        if args.action == "add":
            key = new_key(url, args.center, args.label, args.learner)
            print(key)
            print("Keep it: only its hash is stored, it cannot be shown again.",
                  file=sys.stderr)
        elif args.action == "list":
            for k in _on_redis(url, apikeys.list_keys):
                created = time.strftime("%Y-%m-%d %H:%M", time.gmtime(k.created_ms / 1000))
                print(f"{k.id}  {k.scope:<24} {created} UTC  {k.label}")
        elif not _on_redis(url, lambda r: apikeys.revoke(r, args.id)):
            print(f"no API key with id {args.id}", file=sys.stderr)
            return 1
    except (ValueError, apikeys.KeyRejected) as exc:  # a bad center name or key
        print(exc, file=sys.stderr)
        return 2
    except (RedisError, OSError) as exc:
        print(f"Redis at REDIS_URL did not answer: {exc} (is the lab running?)",
              file=sys.stderr)
        return 1
    return 0
