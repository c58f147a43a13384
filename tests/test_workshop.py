"""Workshop mode (lab/workshop.py): two learners on one lab's Redis, each limited to their
own centers through Redis and through the REST API; ``remove`` undoes everything ``add``
made; learners survive a restart of Redis (the lab's ACL file).

The lab here is a real redis-server with RedisJSON laid out as the embedded lab's (its
home, .env and ACL file where ``python -m lab workshop`` finds them), started for this
module; the commands run as the instructor types them (``lab.__main__.main``)."""

from __future__ import annotations

import asyncio
import os
import re
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from redis.exceptions import NoPermissionError, ResponseError

from acd import Center, ContactState, connect
from acd.all_centers import AllCenters
from acd.api.apikeys import headers, list_keys
from acd.api.app import create_app
from acd.functions import load_library
from acd.keys import CENTERS, CENTERS_STREAM
from acd.settings import Settings
from lab import redis_users
from lab.__main__ import listens_everywhere
from lab.__main__ import main as lab_main
from lab.embedded import EmbeddedRedis, free_port
from lab.envfile import write_env
from lab.learners import KEYS, connection_file, learner_passwords, read_connection
from lab.processes import wait_until


class Lab:
    def __init__(self, home: Path, server: EmbeddedRedis) -> None:
        self.home, self.server = home, server

    def file(self, learner: str) -> Path:
        return connection_file(self.home, learner)

    def conn(self, learner: str) -> dict[str, str]:
        return read_connection(self.file(learner))

    def client(self, learner: str) -> redis.Redis:
        return redis.Redis.from_url(self.conn(learner)["REDIS_URL"], decode_responses=True,
                                    socket_timeout=5)

    def admin(self) -> redis.Redis:
        return redis.Redis.from_url(self.server.url, decode_responses=True, socket_timeout=5)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A lab's Redis and .env as ./start.sh leaves them, and two learners added by the
    instructor's commands: alice and bob."""
    home = tmp_path_factory.mktemp("workshop") / "home"
    port = free_port()
    pw = redis_users.passwords({})
    server = EmbeddedRedis(home, port, users=pw, learners=lambda: learner_passwords(home))
    env_file = home.parent / "lab.env"
    write_env(env_file, {"ACD_ENV": "embedded", "API_URL": "http://127.0.0.1:8000",
                         **redis_users.env_entries(pw, "127.0.0.1", port)})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAB_HOME", str(home))
        mp.setenv("LAB_ENV_FILE", str(env_file))
        mp.setenv("LAB_REDIS_PORT", str(port))
        server.start()
        try:
            asyncio.run(_load(server.url_for("deployer")))
            for learner in ("alice", "bob"):
                assert lab_main(["workshop", "add", learner]) == 0
            yield Lab(home, server)
        finally:
            server.stop()


async def _load(url: str) -> None:
    client = connect(url)
    await load_library(client)
    await client.aclose()


@pytest.fixture
async def bob_center(lab: Lab) -> AsyncIterator[Center]:
    """Bob's center with an agent and a waiting contact, written as bob."""
    client = connect(lab.conn("bob")["REDIS_URL"])
    center = Center(client, "bob.nb02")
    await center.create_agent("b1", "Bo", "B", ["English"])
    await center.create_contact(["English"], contact_id="bc1")
    yield center
    await center.wipe()
    await client.aclose()


def test_the_connection_file_holds_the_learners_own_settings_only(lab: Lab) -> None:
    path = lab.file("alice")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    values = lab.conn("alice")
    assert list(values) == list(KEYS) and values["ACD_LEARNER"] == "alice"
    assert values["REDIS_URL"].startswith("redis://learner-alice:")
    text = path.read_text()
    for role in redis_users.EMBEDDED_ROLES:  # no role's password, the admin's least
        assert lab.server.users[role] not in text, role
    with lab.client("alice") as r:
        assert r.execute_command("ACL", "WHOAMI") == "learner-alice"


async def test_learner_a_cannot_read_write_scan_or_dispatch_b_through_redis(
        lab: Lab, bob_center: Center) -> None:
    theirs = bob_center.keys
    with lab.client("alice") as a:
        refused: list[tuple[Any, ...]] = [
            ("GET", theirs.meta), ("JSON.GET", theirs.agent("b1")),
            ("SET", theirs.meta, "x"), ("DEL", theirs.queue), ("ZADD", theirs.queue, 1, "x"),
            ("HGETALL", theirs.stats), ("EXISTS", theirs.agent("b1")),
            ("XREAD", "STREAMS", theirs.events, "0"), ("SET", "{acd:alicea}:x", "1"),
            ("SCAN", "0"), ("KEYS", "*"), ("RANDOMKEY",), ("CLIENT", "LIST"),
            ("SLOWLOG", "GET"), ("PUBSUB", "CHANNELS"), ("MONITOR",),
            ("SMEMBERS", CENTERS), ("SREM", CENTERS, "bob.nb02"),
            ("XRANGE", CENTERS_STREAM, "-", "+"), ("HSET", "acd:apikeys", "x", "y"),
            ("FCALL", "acd_dispatch", 3, theirs.meta, theirs.queue, theirs.wake, 25, 200, 0),
            ("FCALL", "acd_contact_end", 1, theirs.contact("bc1"), "abandon", 60),
            ("EVAL", "return redis.call('GET', KEYS[1])", 1, theirs.meta),
            ("FLUSHALL",), ("ACL", "LIST"),
        ]
        for command in refused:
            with pytest.raises((NoPermissionError, ResponseError)) as caught:
                a.execute_command(*command)
            assert "permission" in str(caught.value).lower(), (command, caught.value)
        with pytest.raises(ResponseError, match="ACL failure in script"):
            a.eval(f"return redis.call('GET', '{theirs.meta}')", 0)
        with pytest.raises(NoPermissionError):  # redis-py's own SCAN loop
            next(a.scan_iter())
    # Bob's center is as bob left it.
    assert (await bob_center.get_contact("bc1")).state is ContactState.QUEUED
    assert [a.id for a in await bob_center.list_agents()] == ["b1"]


async def test_a_learners_own_center_works_end_to_end_and_the_dispatchers_serve_it(
        lab: Lab) -> None:
    client = connect(lab.conn("alice")["REDIS_URL"])
    dispatcher = connect(lab.server.url_for("dispatcher"))
    service = AllCenters(dispatcher, idle_ms=100)
    task = asyncio.create_task(service.run())
    mine = Center(client, "alice.nb04")
    try:
        # A learner may write junk in the registry: the dispatchers go on serving.
        await client.sadd(CENTERS, "not a center!")
        await client.xadd(CENTERS_STREAM, {"junk": "1"})
        await client.xadd(CENTERS_STREAM, {"center": "{acd:bad}"})
        await mine.create_agent("a1", "Al", "Ice", ["English"], available=True)
        contact = await mine.create_contact(["English"], contact_id="c1")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while (contact := await mine.get_contact("c1")).state is ContactState.QUEUED:
            assert loop.time() < deadline, "the dispatchers never assigned alice's contact"
            await asyncio.sleep(0.02)
        assert contact.agent == "a1" and not task.done()
        await mine.complete_contact("c1")
        await mine.set_dispatch_mode("manual")  # and a round by hand, as lessons 04-05 do
        await mine.create_contact(["English"], contact_id="c2")
        assert [(x.contact, x.agent) for x in await mine.dispatch()] == [("c2", "a1")]
        assert await mine.wipe() > 0
        assert await mine.key_names() == []
        with lab.admin() as admin:  # the admin's SCAN: nothing of the center is left
            assert list(admin.scan_iter(match=mine.keys.pattern())) == []
    finally:
        service.stop()
        await asyncio.wait_for(task, 10)
        with lab.admin() as admin:
            admin.srem(CENTERS, "not a center!")
        await client.aclose()
        await dispatcher.aclose()


async def test_learner_a_gets_403_for_b_and_200_for_her_own_through_the_api(
        lab: Lab, bob_center: Center) -> None:
    alice_key = lab.conn("alice")["ACD_API_KEY"]
    key_id = alice_key.split("_")[1]
    app = create_app(Settings(redis_url=lab.server.url_for("api"), acd_center="default"))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1",
                          headers=headers(alice_key), timeout=10) as api,
    ):
        for center in ("bob.nb02", "bob", "alicea", "default"):
            r = await api.get(f"/v1/centers/{center}/agents")
            assert r.status_code == 403, (center, r.text)
            assert key_id in r.json()["detail"] and "learner alice" in r.json()["detail"]
        r = await api.post("/v1/centers/bob.nb02/contacts", json={"skills": ["English"]})
        assert r.status_code == 403
        assert (await api.get("/contact/contact:bc1")).status_code == 403  # demo: default
        for center in ("alice", "alice.nb06"):
            r = await api.get(f"/v1/centers/{center}/agents")
            assert r.status_code == 200, (center, r.text)
    assert len(await bob_center.queue()) == 1


async def test_remove_leaves_no_user_no_key_and_no_key_of_the_learners_centers(
        lab: Lab) -> None:
    assert await asyncio.to_thread(lab_main, ["workshop", "add", "carol"]) == 0
    url = lab.conn("carol")["REDIS_URL"]
    client = connect(url)
    for name in ("carol", "carol.nb01", "carol.nb02"):
        c = Center(client, name)
        await c.create_agent("a", "C", "C", ["English"])
        await c.create_contact(["Spanish"])
    await client.set("{acd:carol.x}:scratch", "1")  # around the functions
    await client.aclose()
    with lab.admin() as admin:
        admin.set("{acd:carola}:keep", "1")  # another learner's name that starts alike
        still = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)
        still.ping()
        assert await asyncio.to_thread(lab_main, ["workshop", "remove", "carol"]) == 0
        assert admin.acl_getuser("learner-carol") is None
        with pytest.raises(redis.RedisError):  # her open connection was closed
            still.ping()
        assert not [k for k in await _keys(lab) if k.learner == "carol"]
        left = [k for k in admin.scan_iter(match="*carol*")]
        assert left == ["{acd:carola}:keep"], left
        assert not [c for c in admin.smembers(CENTERS) if c.startswith("carol")]
        assert admin.get("{acd:carola}:keep") == "1"
        admin.delete("{acd:carola}:keep")
    assert not lab.file("carol").exists()
    assert "learner-carol" not in lab.server.acl_file.read_text()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis.from_url(url, socket_timeout=5).ping()


async def _keys(lab: Lab) -> list[Any]:
    client = connect(lab.server.url)
    try:
        return await list_keys(client)
    finally:
        await client.aclose()


def test_list_shows_learners_their_keys_and_centers(lab: Lab,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    with lab.client("alice") as a:
        a.sadd(CENTERS, "alice.nb09")
    assert lab_main(["workshop", "list"]) == 0
    out = capsys.readouterr().out
    alice_id = lab.conn("alice")["ACD_API_KEY"].split("_")[1]
    assert "alice" in out and "bob" in out and alice_id in out and "alice.nb09" in out
    assert re.search(r"centers alice, (\S+, )*alice\.nb09", out), out  # alice: by add


def test_add_refuses_a_bad_name_an_existing_learner_or_existing_centers(
        lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("al.ice", "al ice", "", "a" * 33, "ali*"):
        assert lab_main(["workshop", "add", name]) == 2, name
    assert lab_main(["workshop", "add", "alice"]) == 2
    with lab.admin() as admin:
        admin.sadd(CENTERS, "team3.north")
        try:
            capsys.readouterr()
            assert lab_main(["workshop", "add", "team3"]) == 2
            assert "would own existing centers (team3.north)" in capsys.readouterr().err
            assert lab_main(["workshop", "add", "default"]) == 2  # the demo routes' center
            assert admin.acl_getuser("learner-team3") is None
            assert not lab.file("team3").exists()
        finally:
            admin.srem(CENTERS, "team3.north")


def test_learners_survive_a_restart_of_redis(lab: Lab) -> None:
    with lab.client("alice") as a:
        a.set("{acd:alice.r}:x", "kept")
    lab.server.stop()
    # What start writes (lab.stack: every learner of the home's connection files).
    os.remove(lab.server.acl_file)
    lab.server.start()
    wait_until(lambda: lab.server.ping(), 10, "Redis to answer after the restart")
    with lab.client("alice") as a:
        assert a.get("{acd:alice.r}:x") == "kept"
        a.delete("{acd:alice.r}:x")
        with pytest.raises(NoPermissionError):
            a.get("{acd:bob}:meta")
    with lab.client("bob") as b:
        assert b.execute_command("ACL", "WHOAMI") == "learner-bob"


async def test_a_lesson_runs_as_the_learner_from_her_connection_file(
        lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from acd.settings import get_settings
    from lab.notebook import exercises, setup, use_connection

    copied = tmp_path / "nb" / ".connection.env"
    monkeypatch.setenv("ACD_CONNECTION_FILE", str(copied))
    for key in KEYS:  # recorded, so that the test's end restores them
        monkeypatch.setenv(key, "")
    get_settings.cache_clear()
    try:
        assert use_connection(lab.file("alice")) == "alice"
        assert "Connected as learner alice: Redis user learner-alice" in capsys.readouterr().out
        assert stat.S_IMODE(copied.stat().st_mode) == 0o600
        assert get_settings().redis_url == lab.conn("alice")["REDIS_URL"]
        nb = await setup("nb02")
        try:
            assert nb.center.name == "alice.nb02" and nb.keys.tag == "{acd:alice.nb02}"
            await nb.center.create_agent("a1", "A", "B", ["English"], available=True)
            await nb.center.create_contact(["English"], contact_id="c1")
            assert await nb.center.dispatch()
            assert await nb.center.wipe() > 0 and await nb.center.key_names() == []
        finally:
            await nb.redis.aclose()
        assert exercises.check_key_name("{acd:alice.nb00}:agent:a7", "nb00", "a7")
        assert not exercises.check_key_name("{acd:nb00}:agent:a7", "nb00", "a7")
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_host_puts_the_instructors_lan_address_in_the_file(
        lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    assert not listens_everywhere(lab.server.url)
    assert lab_main(["workshop", "add", "dave", "--host", "10.1.2.3"]) == 0
    assert "start it with LAB_BIND=0.0.0.0" in capsys.readouterr().out
    try:
        values = lab.conn("dave")
        assert values["REDIS_URL"].startswith("redis://learner-dave:")
        assert values["REDIS_URL"].endswith(f"@10.1.2.3:{lab.server.port}/0")
        assert values["API_URL"] == "http://10.1.2.3:8000"
    finally:
        assert lab_main(["workshop", "remove", "dave"]) == 0
    from lab.workshop import learner_url
    assert learner_url("redis://u:p@127.0.0.1:1/0", "fe80::1") == "redis://u:p@[fe80::1]:1/0"


def test_lab_bind_listens_on_every_interface_or_this_machine_only(tmp_path: Path) -> None:
    from lab.stack import listen_address

    assert listen_address("0.0.0.0") == "0.0.0.0"
    with pytest.raises(ValueError, match="LAB_BIND"):
        listen_address("10.1.2.3")
    server = EmbeddedRedis(tmp_path, free_port(), password="pw", bind="0.0.0.0")
    assert server.argv[server.argv.index("--bind") + 1] == "0.0.0.0"
    server.start()
    try:
        with server.client() as r:
            assert r.config_get("bind")["bind"] == "0.0.0.0"
        # what python -m lab workshop add --host asks to word its hint
        assert listens_everywhere(server.url)
    finally:
        server.stop()
    assert not listens_everywhere(server.url)  # not answering: no claim


async def test_the_widgets_count_a_learners_dispatchers_by_heartbeat(lab: Lab) -> None:
    from lab.widgets._follow import dispatchers_connected

    client = connect(lab.conn("alice")["REDIS_URL"])
    try:
        with lab.admin() as admin:
            admin.acl_log_reset()
            now_ms = int(admin.time()[0]) * 1000
            admin.zadd("acd:dispatchers", {"host:1": now_ms})
            try:
                assert await dispatchers_connected(client) == 1
                assert admin.acl_log() == []  # CLIENT LIST was not even tried
            finally:
                admin.zrem("acd:dispatchers", "host:1")
    finally:
        await client.aclose()
