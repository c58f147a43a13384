"""The REST API's keys: created, listed, revoked and checked, stored hashed in Redis.

A key is ``acd_<id>_<secret>``: ``<id>`` (12 hex digits) names it in lists, logs and error
messages; ``<secret>`` is 32 random bytes (``secrets.token_urlsafe``). Redis keeps only the
SHA-256 of the whole key, with its scope, in the hash ``acd:apikeys`` (field: the id), so
every API worker and replica sees a new or revoked key at once, and a reader of Redis (or
of a backup) learns no key.

Why SHA-256 and not a slow KDF (bcrypt, scrypt, Argon2): those exist to make guessing a
*low-entropy* password expensive. A 256-bit random secret cannot be guessed whatever the
hash costs, and a fast hash keeps the check to microseconds on every request.

Scope: ``admin`` (every center, every route), one center (that center's
``/v1/centers/<center>/...`` routes, and the original demo's routes when the API's default
center, ACD_CENTER, is that center), or a workshop learner's centers (``learner alice``:
``alice`` and every ``alice.<anything>``, as acd.keys.learner_owns says; lab.workshop).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass

from redis.asyncio import Redis

from acd.keys import API_KEYS, check_learner, check_name, learner_owns

PREFIX = "acd"
ADMIN = "admin"
_KEY = re.compile(r"^acd_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


class KeyRejected(Exception):
    """The key presented is missing, malformed, unknown or revoked (HTTP 401). The message
    says which, and never contains the secret."""


@dataclass(frozen=True)
class ApiKey:
    """A stored key, without its secret."""

    id: str
    center: str | None  # None (and no learner): admin, every center
    label: str
    created_ms: int
    learner: str | None = None  # a workshop learner's key: that learner's centers

    @property
    def admin(self) -> bool:
        return self.center is None and self.learner is None

    @property
    def scope(self) -> str:
        if self.learner is not None:
            return f"learner {self.learner}"
        return ADMIN if self.center is None else f"center {self.center}"

    def allows(self, center: str) -> bool:
        if self.learner is not None:
            return learner_owns(self.learner, center)
        return self.center is None or self.center == center  # names are not secrets


def headers(key: str) -> dict[str, str]:
    """What a client sends with every request: ``Authorization: Bearer <key>`` (nothing
    for no key: the API then answers 401 saying it is missing)."""
    return {"Authorization": f"Bearer {key}"} if key else {}


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse(key: str) -> tuple[str, str]:
    """The (id, secret) of a key of the form acd_<id>_<secret>, or KeyRejected."""
    match = _KEY.fullmatch(key.strip())
    if match is None:
        raise KeyRejected("the API key is malformed: expected acd_<id>_<secret>, as "
                          "ACD_API_KEY in .env or as printed by python -m lab apikey add")
    return match.group(1), match.group(2)


async def create(redis: Redis, center: str | None = None, label: str = "",
                 learner: str | None = None) -> str:
    """A new key: admin when ``center`` and ``learner`` are None, else scoped to
    ``center``, or to the workshop learner ``learner``'s centers. Returns the key itself,
    the only time it exists outside its holder: only its hash is stored."""
    if center is not None and learner is not None:
        raise ValueError("a key is scoped to one center or to one learner, not both")
    if center is not None:
        check_name("center", center)
    if learner is not None:
        check_learner(learner)
    key_id = secrets.token_hex(6)
    key = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    if not await redis.hsetnx(API_KEYS, key_id, _record(key, center, label, learner)):
        return await create(redis, center, label, learner)  # an id drawn twice (1 in 2^48)
    return key


async def restore(redis: Redis, key: str, label: str = "", learner: str | None = None) -> bool:
    """Store ``key`` again, scoped to ``learner``'s centers (admin without one), when Redis
    lost it while its holder still has it: a workshop learner's key in her connection file,
    after the HA lab started with empty data. False when Redis has that id already."""
    if learner is not None:
        check_learner(learner)
    key_id, _ = parse(key)
    return bool(await redis.hsetnx(API_KEYS, key_id, _record(key.strip(), None, label,
                                                              learner)))


def _record(key: str, center: str | None, label: str, learner: str | None) -> str:
    record: dict[str, object] = {"sha256": _digest(key), "center": center, "label": label,
                                 "created_ms": int(time.time() * 1000)}
    if learner is not None:
        record["learner"] = learner
    return json.dumps(record)


async def verify(redis: Redis, key: str) -> ApiKey:
    """The stored key ``key`` is, or KeyRejected (malformed, unknown, revoked, wrong
    secret). The hashes are compared in constant time."""
    key_id, _ = parse(key)
    raw = await redis.hget(API_KEYS, key_id)
    record = json.loads(raw) if raw is not None else None
    if record is None or not hmac.compare_digest(str(record["sha256"]), _digest(key.strip())):
        raise KeyRejected(f"unknown or revoked API key (id {key_id})")
    return _key(key_id, record)


async def valid(redis: Redis, key: str) -> bool:
    """Whether ``key`` is a stored key (the lab keeps its .env key if so)."""
    try:
        await verify(redis, key)
    except KeyRejected:
        return False
    return True


async def list_keys(redis: Redis) -> list[ApiKey]:
    """Every stored key (ids and scopes, no secrets), oldest first."""
    records = await redis.hgetall(API_KEYS)
    keys = [_key(_text(k), json.loads(v)) for k, v in records.items()]
    return sorted(keys, key=lambda k: (k.created_ms, k.id))


async def revoke(redis: Redis, key_id: str) -> bool:
    """Delete the key with id ``key_id`` (or given whole); False when there is none. Every
    worker refuses it from its next request: nothing caches keys."""
    if key_id.startswith(f"{PREFIX}_"):
        key_id = parse(key_id)[0]
    return bool(await redis.hdel(API_KEYS, key_id))


def _key(key_id: str, record: dict[str, object]) -> ApiKey:
    center, learner = record.get("center"), record.get("learner")
    return ApiKey(id=key_id, center=str(center) if center is not None else None,
                  label=str(record.get("label", "")),
                  created_ms=int(str(record.get("created_ms", 0))),
                  learner=str(learner) if learner is not None else None)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
