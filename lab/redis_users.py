"""Who may do what on the lab's Redis: one ACL user per role, the default user off.

Every environment (the embedded lab, the HA lab, the tests' throw-away Redis) writes the
same users into an ACL file (0600, passwords stored as SHA-256) that redis-server reads
with ``aclfile``: no password is ever on a command line. Each component connects with its
own user, through ``REDIS_URL`` in its environment (acd.settings):

- ``lab``: the learner (notebooks, widgets; ``.env``'s REDIS_URL): data commands, FCALL,
  EVAL (the lessons write scripts), INFO/CONFIG GET/CLIENT LIST to look, on the acd keys
  only: no FLUSHALL, CONFIG SET, ACL, FUNCTION LOAD, SHUTDOWN, no API keys.
- ``api``: FCALL of the acd Functions and the reads the REST API makes; reads the API keys.
- ``dispatcher``: FCALL, XREAD (wake streams), its heartbeat; no API keys.
- ``deployer``: FUNCTION LOAD of the acd library, and the API keys (write).
- ``health``: PING, INFO, ROLE; no key at all (HAProxy's check).
- ``replication`` / ``sentinel``: the HA lab's replicas and Sentinels.
- ``admin``: everything; the instructor's (and the lab's own start, stop and checks).
- ``learner-<name>`` (workshop mode, lab.workshop): the ``lab`` role's data commands on
  that learner's centers alone, and nothing that shows other learners' key names or
  commands (no SCAN, CLIENT LIST, SLOWLOG, pub/sub).

The HA lab's Sentinels have users of their own (SENTINEL_ROLES, in each sentinel.conf):
``sentinel_admin`` for every client of a Sentinel (the lab, the supervisor, the drill, the
instructor), ``sentinel_peer`` for the Sentinels among themselves.

Redis checks a script's and a Function's commands against the user that runs it, so every
role that calls FCALL is also granted the commands acd/lua/ issues, on its keys.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

from acd.keys import LEARNER_USER_PREFIX
from lab.processes import write_private

# Keys (acd/keys.py): a center's keys carry the hash tag {acd:<center>}; a few are global.
CENTER_KEYS = "~{acd:*"
GLOBAL_KEYS = "~acd:centers ~acd:centers:new ~acd:dispatchers"
APIKEYS = "acd:apikeys"

# A client's own connection: redis-py's handshake, its name (CLIENT LIST shows dispatchers).
_CONNECTION = ("+ping +hello +auth +select +echo +client|setname +client|getname "
               "+client|setinfo +client|id")
# What the acd Functions call inside Redis (grep redis.call acd/lua/), RedisJSON's
# commands named one by one: a role with them has no other module command.
FUNCTION_BODY = (
    "+del +unlink +exists +expire +time "
    "+hget +hmget +hset +hdel +hexists +hincrby +hkeys +hvals +hlen +hgetall "
    "+rpush +lpop +lindex +lset +llen "
    "+sadd +srem +scard +smembers +srandmember +sismember +sscan +sdiff "
    "+zadd +zrem +zcard +zrange +zscore +zmscore +zintercard "
    "+xadd +xrevrange +xrange "
    "+json.get +json.mget +json.set +json.mset +json.merge +json.del "
    "+json.arrappend +json.arrindex +json.arrpop")
_FCALL = "+fcall +fcall_ro +function|list"
# The API and the dispatchers read their keys freely (every read command but the
# dangerous ones: KEYS, ...); their writes outside the Functions are named: the heartbeat,
# the center registry, the learners' BZPOPMIN-style pops, and WAIT for the HA lab.
_APP_COMMANDS = ("+@read -@dangerous +zremrangebyscore +bzpopmin +zpopmin +wait +info "
                 "+role +time")

ROLES: dict[str, str] = {
    "admin": "~* &* +@all",
    "deployer": f"resetchannels -@all +@read +@write +@keyspace -@dangerous -@scripting "
                f"{_CONNECTION} +function|load +function|list +function|delete +info "
                f"~{APIKEYS}",
    "api": f"resetchannels -@all {_CONNECTION} {_FCALL} {FUNCTION_BODY} {_APP_COMMANDS} "
           f"{CENTER_KEYS} {GLOBAL_KEYS} %R~{APIKEYS}",
    "dispatcher": f"resetchannels -@all {_CONNECTION} {_FCALL} {FUNCTION_BODY} "
                  f"{_APP_COMMANDS} {CENTER_KEYS} {GLOBAL_KEYS}",
    # The learner: every data command of the lessons, looking at the server, scripts run
    # as this user (so on these keys only); nothing that changes the server or its code.
    # The API keys read only: a lesson runs the REST API's app in its kernel, which checks
    # the lab's key as this user; the hashes of 256-bit secrets give nobody a key, and
    # writing there would (a key of one's own).
    "lab": f"resetchannels +@all -@dangerous -@admin -function|load -function|delete "
           f"-function|flush -function|restore -script|flush -script|kill -function|kill "
           f"-client|unblock +info +role +client|list +client|info +config|get "
           f"+slowlog|get +slowlog|len +command|info +command|docs +command|count "
           f"+latency|latest {CENTER_KEYS} {GLOBAL_KEYS} ~lab:* %R~{APIKEYS}",
    "health": "resetchannels resetkeys -@all +ping +info +role +auth +hello",
    "replication": "resetchannels resetkeys -@all +psync +replconf +ping +auth",
    # What Sentinel sends to the Redis nodes (the Redis Sentinel documentation's list).
    "sentinel": "allchannels resetkeys -@all +multi +exec +slaveof +replicaof +ping +auth "
                "+subscribe +publish +config|rewrite +role +info +client|setname "
                "+client|kill +script|kill +hello",
}

# A workshop learner (lab.workshop): the lab role's commands but those that show what is
# not the learner's. Key patterns do not filter SCAN/KEYS/RANDOMKEY (they return every
# name), CLIENT LIST and SLOWLOG GET show others' commands with their arguments, PUBSUB
# CHANNELS others' channels, CLIENT TRACKING BCAST others' key names as they change.
_LEARNER_COMMANDS = (
    "resetchannels +@all -@dangerous -@admin -function|load -function|delete "
    "-function|flush -function|restore -script|flush -script|kill -function|kill "
    "-client|unblock -scan -randomkey -pubsub -client|list -client|tracking "
    "-client|trackinginfo -client|caching -client|getredir -slowlog +info +role "
    "+client|info +config|get +command|info +command|docs +command|count +latency|latest")
LEARNER_PREFIX = LEARNER_USER_PREFIX


def learner_user(learner: str) -> str:
    """The Redis user of a workshop learner: ``learner-alice``."""
    return LEARNER_PREFIX + learner


def learner_rules(learner: str) -> list[str]:
    """A learner's ACL rules, one argument each (a selector is one). Keys: the learner's
    centers, ``{acd:alice}...`` and ``{acd:alice.<anything>}...`` (acd.keys.learner_owns;
    a learner name has no glob character, check_learner). Registering a center
    (Center.register) writes two global keys: each is a selector with its one command, so
    the learner cannot read or remove other learners' centers there. Reads of the
    dispatchers' heartbeats (/health of the API run in the kernel) and of the API keys'
    hashes (that app checks the learner's key as this user; hashes of 256-bit secrets give
    nobody a key; the labels and scopes name the learners)."""
    return [*_LEARNER_COMMANDS.split(), f"~{{acd:{learner}}}*", f"~{{acd:{learner}.*",
            f"%R~{APIKEYS}", "%R~acd:dispatchers",
            "(~acd:centers resetchannels -@all +sadd)",
            "(~acd:centers:new resetchannels -@all +xadd)"]


def learner_rule_args(learner: str, password: str) -> list[str]:
    """ACL SETUSER's arguments after the user's name: the same user as the ACL file's."""
    return ["reset", "on", f"#{_digest(password)}", *learner_rules(learner)]


# Off, no password: no client can be the default user. Its commands and keys stay all:
# redis-server replays the AOF as the default user and, before Redis 8.4, re-checks its
# ACL at each EXEC there (redis/redis#14541), so a default user without them would drop
# every FCALL's writes (replayed as MULTI/EXEC) at the next start: silent data loss.
DEFAULT_USER = "off resetpass ~* &* +@all"

# The Sentinels' own users: a Sentinel is a server of its own with its own ACL, so these
# are not users of the Redis nodes (the nodes' ``sentinel`` user is how Sentinel talks to
# them). Anyone who reached an open Sentinel could fail the primary over, point the
# Sentinels at another "primary" (SENTINEL SET/MONITOR) or remove it.
SENTINEL_ADMIN = "sentinel_admin"
SENTINEL_PEER = "sentinel_peer"
SENTINEL_USERS: dict[str, str] = {
    # The lab's start, status, supervisor and drill, and the instructor: every command.
    SENTINEL_ADMIN: "allchannels +@all",
    # What one Sentinel sends another (Redis' sentinel.c): its connection's name, PING,
    # the hello message (PUBLISH on __sentinel__:hello) and the vote on a primary's
    # failure. No SENTINEL FAILOVER, SET, MONITOR or REMOVE: its password is in clear in
    # every sentinel.conf (sentinel-pass), so it gets nothing an admin would.
    SENTINEL_PEER: "resetchannels &__sentinel__:hello -@all +ping +publish "
                   "+client|setname +sentinel|is-master-down-by-addr",
}
# No client is the default user: it is the one a client gets without AUTH.
SENTINEL_DEFAULT_USER = "off resetpass resetchannels -@all"

EMBEDDED_ROLES = ("admin", "deployer", "api", "dispatcher", "lab", "health")
HA_ROLES = (*EMBEDDED_ROLES, "replication", "sentinel")
"""The users of the HA lab's Redis nodes."""
SENTINEL_ROLES = tuple(SENTINEL_USERS)
CLIENT_ROLES = ("admin", "deployer", "api", "dispatcher")
"""Roles whose URL .env holds besides REDIS_URL (the lab role's)."""


def password_key(role: str) -> str:
    """The .env key of a role's password: REDIS_PASSWORD for the learner's (what REDIS_URL
    holds), REDIS_<ROLE>_PASSWORD for the others."""
    return "REDIS_PASSWORD" if role == "lab" else f"REDIS_{role.upper()}_PASSWORD"


def url_key(role: str) -> str:
    return "REDIS_URL" if role == "lab" else f"REDIS_{role.upper()}_URL"


def passwords(env: Mapping[str, str], roles: Iterable[str] = EMBEDDED_ROLES
              ) -> dict[str, str]:
    """Each role's password: kept from ``env`` (the .env file), else a new random one."""
    return {role: env.get(password_key(role)) or secrets.token_urlsafe(24) for role in roles}


def role_url(role: str, password: str, host: str, port: int) -> str:
    return f"redis://{role}:{password}@{host}:{port}/0"


def env_entries(pw: Mapping[str, str], host: str, port: int) -> dict[str, str]:
    """What .env holds about Redis: every role's password, and the URL of the learner
    (REDIS_URL) and of each client role (REDIS_API_URL, ...)."""
    entries = {password_key(role): value for role, value in pw.items()}
    for role in ("lab", *CLIENT_ROLES):
        if role in pw:
            entries[url_key(role)] = role_url(role, pw[role], host, port)
    return entries


def _digest(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def learner_line(learner: str, password: str) -> str:
    """A learner's user as an ACL file line (``ACL SETUSER`` takes the same rules)."""
    return " ".join(["user", learner_user(learner), *learner_rule_args(learner, password)])


def acl_text(pw: Mapping[str, str], learners: Mapping[str, str] | None = None) -> str:
    """The ACL file: the default user off with no password, then one user per role, then
    one per workshop learner (name -> password)."""
    lines = [f"user default {DEFAULT_USER}"]
    for role, value in pw.items():
        if role not in ROLES:
            raise ValueError(f"no Redis role {role!r}: the roles are {', '.join(ROLES)}")
        lines.append(f"user {role} reset on #{_digest(value)} {ROLES[role]}")
    lines += [learner_line(name, value) for name, value in sorted((learners or {}).items())]
    return "\n".join(lines) + "\n"


def sentinel_acl_lines(pw: Mapping[str, str]) -> list[str]:
    """The ``user`` lines of a sentinel.conf (passwords as SHA-256 hashes): the default
    user off, then each of SENTINEL_USERS with its password from ``pw``."""
    lines = [f"user default {SENTINEL_DEFAULT_USER}"]
    for role, rules in SENTINEL_USERS.items():
        lines.append(f"user {role} reset on #{_digest(pw[role])} {rules}")
    return lines


def write_acl_file(path: Path, pw: Mapping[str, str],
                   learners: Mapping[str, str] | None = None) -> Path:
    """Write the ACL file only its owner may read (it holds password hashes)."""
    return write_private(path, acl_text(pw, learners))
