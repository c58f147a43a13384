"""The Redis users per role (lab/redis_users.py) on the tests' Redis, which has the lab's
ACL file: what each role does in the ACD, and what it is refused (NOPERM)."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from acd import Center, connect
from acd.functions import LIBRARY, load_library
from lab import redis_users
from lab.embedded import EmbeddedRedis, free_port
from lab.envfile import forget_secrets, read_env, write_env
from lab.redis_users import EMBEDDED_ROLES, ROLES, acl_text, passwords

CENTER = f"roles-{uuid.uuid4().hex[:8]}"
MINE = "{acd:" + CENTER + "}"


@pytest.fixture
def as_role(redis_server: EmbeddedRedis) -> Iterator[Any]:
    opened: list[redis.Redis] = []

    def client(role: str) -> redis.Redis:
        r = redis.Redis.from_url(redis_server.url_for(role), decode_responses=True,
                                 socket_timeout=5)
        opened.append(r)
        return r

    yield client
    for r in opened:
        r.close()
    with redis.Redis.from_url(redis_server.url, socket_timeout=5) as admin:
        keys = list(admin.scan_iter(match=MINE.replace("{", "\\{").replace("}", "\\}") + "*"))
        admin.delete("acd:apikeys", "other:key", *keys)
        if admin.function_list(library="evil"):
            admin.function_delete("evil")  # a role loaded it: this test fails anyway


# Every role but the admin is refused these: they change or empty the server, its users,
# its code; and a key outside the acd key space.
FORBIDDEN: list[tuple[str, ...]] = [
    ("FLUSHALL",), ("FLUSHDB",), ("CONFIG", "SET", "maxmemory", "0"),
    ("ACL", "SETUSER", "intruder", "on", ">pw", "+@all", "~*"), ("ACL", "LIST"),
    ("FUNCTION", "LOAD", "REPLACE", "#!lua name=evil\nredis.register_function('e', "
     "function() return 1 end)"),
    ("FUNCTION", "FLUSH"), ("SHUTDOWN", "NOSAVE"),
    ("REPLICAOF", "127.0.0.1", "1"), ("MODULE", "LIST"), ("KEYS", "*"),
    ("CLIENT", "KILL", "TYPE", "normal"), ("SET", "other:key", "x"), ("GET", "other:key"),
]
EXTRA_FORBIDDEN: dict[str, list[tuple[str, ...]]] = {
    "api": [("EVAL", "return 1", "0"), ("HSET", "acd:apikeys", "k", "v")],
    "dispatcher": [("EVAL", "return 1", "0"), ("HGETALL", "acd:apikeys")],
    "lab": [("HSET", "acd:apikeys", "k", "v"), ("DEL", "acd:apikeys"),
            # a script runs as its caller: the learner's cannot reach past its keys
            ("EVAL", "return redis.call('GET', KEYS[1])", "1", "other:key")],
    "deployer": [("EVAL", "return 1", "0"), ("GET", f"{MINE}:meta"),
                 ("FCALL", "acd_dispatch_mode", "1", f"{MINE}:meta", "manual")],
    "health": [("GET", f"{MINE}:meta"), ("EVAL", "return 1", "0"), ("SCAN", "0"),
               ("HGETALL", "acd:apikeys"), ("CLIENT", "LIST")],
}


@pytest.mark.parametrize("role", [r for r in EMBEDDED_ROLES if r != "admin"])
def test_each_role_is_refused_what_it_does_not_need(as_role: Any, role: str) -> None:
    r = as_role(role)
    for command in FORBIDDEN + EXTRA_FORBIDDEN.get(role, []):
        if role == "deployer" and command[:2] == ("FUNCTION", "LOAD"):
            continue  # its job (test_the_deployer_loads_the_functions_and_the_api_keys)
        with pytest.raises(redis.exceptions.NoPermissionError):
            r.execute_command(*command)
            pytest.fail(f"{role} may {' '.join(command)[:60]}")


def test_the_default_user_is_off(redis_server: EmbeddedRedis) -> None:
    once = Retry(NoBackoff(), 0)  # an AuthenticationError is a ConnectionError: no retries
    with (redis.Redis(port=redis_server.port, socket_timeout=5, retry=once) as anonymous,
          pytest.raises(redis.AuthenticationError)):
        anonymous.ping()
    with (redis.Redis(port=redis_server.port, username="default", password="test-pw",
                      socket_timeout=5, retry=once) as default,
          pytest.raises(redis.AuthenticationError)):
        default.ping()
    assert "user default off resetpass " in acl_text({})


async def test_what_the_roles_wrote_comes_back_after_a_restart(tmp_path: Path) -> None:
    """The AOF replays the Functions' writes (MULTI/EXEC) with the default user off."""
    server = EmbeddedRedis(tmp_path, free_port(), users=passwords({}))
    server.start()
    try:
        with redis.Redis.from_url(server.url_for("deployer")) as deployer:
            deployer.execute_command("FUNCTION", "LOAD", LIBRARY)
        api = connect(server.url_for("api"))
        try:
            await Center(api, "restart").create_agent("a1", "A", "B", ["en"], available=True)
        finally:
            await api.aclose()
        server.stop()
        server.start()
        api = connect(server.url_for("api"))
        try:
            assert (await Center(api, "restart").get_agent("a1")).skills == ["en"]
        finally:
            await api.aclose()
    finally:
        server.stop()


async def test_the_api_and_dispatcher_roles_run_the_acd(redis_server: EmbeddedRedis,
                                                        as_role: Any) -> None:
    api, dispatcher = connect(redis_server.url_for("api")), connect(
        redis_server.url_for("dispatcher"))
    try:
        as_role("deployer").execute_command("FUNCTION", "LOAD", "REPLACE", LIBRARY)
        center = Center(api, CENTER)
        await center.register()
        await center.set_dispatch_mode("manual")
        await center.create_agent("a1", "A", "B", ["en"], available=True)
        contact = await center.create_contact(["en"])
        done = await Center(dispatcher, CENTER).dispatch()
        assert [(a.contact, a.agent) for a in done] == [(contact.id, "a1")]
        assert (await center.get_contact(contact.id)).agent == "a1"
        await dispatcher.zadd("acd:dispatchers", {"test:1": 1})
        await dispatcher.zrem("acd:dispatchers", "test:1")
        assert await api.hgetall("acd:apikeys") == {}  # the API reads the API keys
    finally:
        await api.aclose()
        await dispatcher.aclose()


def test_the_learner_builds_pieces_by_hand(as_role: Any) -> None:
    lab = as_role("lab")
    lab.execute_command("JSON.SET", f"{MINE}:agent:x", "$", '{"skills":["en"]}')
    lab.zadd(f"{MINE}:avail:en", {"x": 1})
    lab.zadd(f"{MINE}:avail:fr", {"x": 1})
    assert lab.zinter([f"{MINE}:avail:en", f"{MINE}:avail:fr"]) == ["x"]
    assert lab.bzpopmin(f"{MINE}:avail:en", timeout=1) == (f"{MINE}:avail:en", "x", 1.0)
    assert lab.eval("return redis.call('ZCARD', KEYS[1])", 1, f"{MINE}:avail:fr") == 1
    assert lab.info("server")["redis_version"]
    assert lab.config_get("maxmemory")
    assert lab.client_list()
    assert lab.function_list(library="acd")


def test_the_deployer_loads_the_functions_and_the_api_keys(as_role: Any) -> None:
    deployer = as_role("deployer")
    deployer.execute_command("FUNCTION", "LOAD", "REPLACE", LIBRARY)
    deployer.hset("acd:apikeys", "k1", "hash")
    assert as_role("api").hget("acd:apikeys", "k1") == "hash"
    assert as_role("lab").hget("acd:apikeys", "k1") == "hash"  # the in-kernel API checks


async def test_load_library_as_the_deployer(redis_server: EmbeddedRedis) -> None:
    deployer = connect(redis_server.url_for("deployer"))
    try:
        await load_library(deployer)
    finally:
        await deployer.aclose()


def test_the_health_check_user_pings_only(as_role: Any) -> None:
    health = as_role("health")
    assert health.ping()
    assert health.info("replication")["role"] == "master"
    assert health.execute_command("ROLE")[0] == "master"


def test_every_role_has_rules_and_no_other_may_be_written() -> None:
    assert set(EMBEDDED_ROLES) <= set(ROLES)
    with pytest.raises(ValueError, match="no Redis role 'root'"):
        acl_text({"root": "pw"})


def test_the_roles_that_call_the_functions_have_every_command_the_library_calls() -> None:
    """Redis checks a Function's commands against its caller's user: a command added to
    acd/lua/ and missing here would be NOPERM for the API and the dispatchers."""
    called = {c.lower() for c in re.findall(r"redis\.p?call\(\s*'([A-Za-z.]+)'", LIBRARY)}
    assert len(called) > 20, called
    body = {rule[1:] for rule in redis_users.FUNCTION_BODY.split()}
    assert called <= body, sorted(called - body)
    for role in ("api", "dispatcher"):
        assert redis_users.FUNCTION_BODY in ROLES[role], role


def test_the_sentinels_users_are_rotated_and_hashed(tmp_path: Path) -> None:
    """The Sentinels' passwords live in .env as REDIS_SENTINEL_<USER>_PASSWORD: python -m
    lab rotate forgets them (by their name); sentinel.conf holds their hashes only."""
    pw = passwords({}, redis_users.SENTINEL_ROLES)
    keys = {redis_users.password_key(role) for role in redis_users.SENTINEL_ROLES}
    assert keys == {"REDIS_SENTINEL_ADMIN_PASSWORD", "REDIS_SENTINEL_PEER_PASSWORD"}
    env = tmp_path / ".env"
    write_env(env, {**redis_users.env_entries(pw, "127.0.0.1", 6379), "ACD_ENV": "ha"})
    assert set(forget_secrets(env)) == keys
    assert read_env(env) == {"ACD_ENV": "ha"}
    lines = redis_users.sentinel_acl_lines(pw)
    assert lines[0].startswith("user default off ")
    assert [line.split()[1] for line in lines[1:]] == list(redis_users.SENTINEL_ROLES)
    for role, value in pw.items():
        assert value not in "\n".join(lines)
        assert f"#{hashlib.sha256(value.encode()).hexdigest()}" in "\n".join(lines), role
