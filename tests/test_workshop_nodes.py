"""Workshop mode with several Redis servers holding the learners' users (lab.workshop's
``node_urls``: the HA lab's nodes, lab.ha.workshop), which do not replicate ACL users:
``add`` sets the user on each server and in each one's ACL file, a server that does not
answer is named and skipped, ``list`` says NO for a user one server lacks, ``remove``
takes it off each; a Redis that lost the learners' keys and centers (the HA lab's data
starts empty at each start) gets them back from their files. Two embedded Redis servers
stand in for the nodes here (seconds); the HA lab itself: tests/ha/test_ha_start_drill.py."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from acd import connect
from acd.api.apikeys import ApiKey, verify
from acd.keys import API_KEYS, CENTERS
from lab import redis_users
from lab.embedded import EmbeddedRedis, free_port
from lab.learners import (
    connection_file,
    learner_passwords,
    read_connection,
    restore_learners,
    write_connection,
)
from lab.workshop import Workshop


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[EmbeddedRedis]]:
    pw = redis_users.passwords({})
    home = tmp_path / "home"
    servers = [EmbeddedRedis(tmp_path / name, free_port(), users=pw,
                             learners=lambda: learner_passwords(home)) for name in ("n1", "n2")]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


def _as_learner_on(url: str, server: EmbeddedRedis) -> redis.Redis:
    """The learner's URL, pointed at ``server`` (a node the VIP may lead to later)."""
    return redis.Redis.from_url(url.replace(":" + url.rsplit(":", 1)[1],
                                            f":{server.port}/0"),
                                decode_responses=True, socket_timeout=5)


def test_every_server_gets_the_learner_and_loses_her_on_remove(
        nodes: list[EmbeddedRedis], tmp_path: Path) -> None:
    home = tmp_path / "home"
    down = redis_users.role_url("admin", nodes[0].users["admin"], "127.0.0.2", free_port())

    def write_acl() -> None:
        for server in nodes:
            server.write_acl_file()

    shop = Workshop(home, nodes[0].url, "http://127.0.0.1:8000", write_acl,
                    node_urls=[n.url for n in nodes] + [down])
    path = shop.add("dora")
    assert set(shop.unreachable) == {"127.0.0.2"}
    url = read_connection(path)["REDIS_URL"]
    for server in nodes:
        assert "user learner-dora " in server.acl_file.read_text(), server.port
        with _as_learner_on(url, server) as dora:
            assert dora.execute_command("ACL", "WHOAMI") == "learner-dora"
            dora.set("{acd:dora}:x", "1")
            with pytest.raises(redis.exceptions.NoPermissionError):
                dora.get("{acd:bob}:x")
    assert [(one.name, one.user) for one in shop.learners()] == [("dora", True)]
    with nodes[1].client() as r:  # a node that lost her (restarted from an old file)
        r.execute_command("ACL", "DELUSER", "learner-dora")
    assert [(one.name, one.user) for one in shop.learners()] == [("dora", False)]
    done = shop.remove("dora")
    assert done["user"] == 1 and done["file"] == 1 and done["redis keys"] == 1, done
    for server in nodes:
        assert "learner-dora" not in server.acl_file.read_text()
        with server.client() as r:
            assert r.acl_getuser("learner-dora") is None
    assert not path.exists()


async def _verify(url: str, key: str) -> ApiKey:
    client = connect(url)
    try:
        return await verify(client, key)
    finally:
        await client.aclose()


def test_restore_learners_gives_back_the_keys_and_first_centers_redis_lost(
        nodes: list[EmbeddedRedis], tmp_path: Path) -> None:
    home, server = tmp_path / "home", nodes[0]
    shop = Workshop(home, server.url, "http://127.0.0.1:8000", server.write_acl_file)
    key = read_connection(shop.add("erin"))["ACD_API_KEY"]
    write_connection(connection_file(home, "junk"), {  # edited by hand: skipped, no error
        "REDIS_URL": "redis://learner-junk:pw@127.0.0.1:1/0", "API_URL": "http://x",
        "ACD_API_KEY": "not a key", "ACD_LEARNER": "junk"})
    with server.client() as r:
        r.delete(API_KEYS, CENTERS)  # what a fresh start of the HA lab has not
    assert restore_learners(server.url, home) == ["erin"]
    assert restore_learners(server.url, home) == []  # Redis has it: nothing to do
    restored = asyncio.run(_verify(server.url, key))
    assert restored.learner == "erin" and restored.center is None
    with server.client() as r:
        assert r.smembers(CENTERS) == {"erin"}
