"""lab.notebook on a real Redis: setup, the Lua shown and run from acd/lua/ itself,
the REST API run in the kernel, a real cluster node, recorded data and version checks."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from redis.exceptions import ClusterCrossSlotError

from acd import Center, DispatchMode
from acd.api import apikeys
from acd.functions import LIBRARY, LIBRARY_FILES
from acd.settings import get_settings
from lab.embedded import free_port
from lab.notebook import (
    Lab,
    LabSetupError,
    api_client,
    check_widget_versions,
    cluster_node,
    in_kernel,
    lua_chunk,
    lua_source,
    masked_url,
    recorded,
    setup,
    shard_of,
    slot,
)
from lab.notebook.lua import parse, show_lua


@pytest.fixture
def lab_redis(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """REDIS_URL of the kernel pointed at the test server (settings are cached)."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    get_settings.cache_clear()
    yield redis_url
    get_settings.cache_clear()


async def test_setup_gives_the_notebook_an_emptied_center(
        lab_redis: str, capsys: pytest.CaptureFixture[str]) -> None:
    name = f"t-{uuid.uuid4().hex[:10]}"
    first = await setup(name, dispatch="manual")
    try:
        await first.center.create_agent("a1", "A", "One", ["en"], available=True)
        assert await first.center.dispatch_mode() is DispatchMode.MANUAL
    finally:
        await first.redis.aclose()
    lab = await setup(name)
    try:
        assert await lab.center.list_agents() == [], "a fresh setup empties the center"
        assert await lab.center.dispatch_mode() is DispatchMode.AUTOMATIC
        out = capsys.readouterr().out
        assert f"center: {name}" in out and "RedisJSON: loaded" in out
        assert "test-pw" not in out and ":***@" in out, "the password is never printed"
    finally:
        await lab.center.wipe()
        await lab.redis.aclose()


async def test_setup_says_how_to_reach_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    get_settings.cache_clear()
    try:
        with pytest.raises(LabSetupError, match=r"Cannot reach Redis .*\./start\.sh"):
            await setup("nobody", timeout=5)
    finally:
        get_settings.cache_clear()


def test_masked_url() -> None:
    assert masked_url("redis://u:secret@h:6380/0") == "redis://u:***@h:6380/0"
    assert masked_url("redis://h:6379/0") == "redis://h:6379/0"


def test_every_function_of_the_library_is_found_whole() -> None:
    text = LIBRARY
    functions = re.findall(r"^local function (\w+)\(", text, re.M)
    found = parse(text)
    assert [name for name in found if name in functions] == functions, "all, in order"
    for name in functions:
        code = found[name].code
        assert code.startswith(f"local function {name}(") and code.rstrip().endswith("end")
        assert code.count("local function ") == 1, f"{name} swallowed the next function"
    assert lua_source("dispatch").startswith("--[[ acd_dispatch")  # its doc block
    assert lua_source("first_in_all").startswith("-- The longest available agent")
    assert lua_source() == text
    # The library is its files in name order; a function shown names its file.
    assert text.startswith(LIBRARY_FILES[0].read_text()) and "00_library" in LIBRARY_FILES[0].name
    assert lua_source("dispatch") in (LIBRARY_FILES[0].parent / "09_dispatch.lua").read_text()
    assert "From `acd/lua/09_dispatch.lua`" in show_lua("dispatch").data
    with pytest.raises(KeyError, match="no top-level local 'nope'"):
        lua_source("nope")


def test_a_chunk_holds_what_the_function_uses_and_nothing_else() -> None:
    chunk = lua_chunk("longest_available")
    assert "local function k_avail(" in chunk and "local function claim(" not in chunk
    assert chunk.rstrip().endswith("end") and lua_source("longest_available") in chunk
    dispatch = lua_chunk("dispatch")
    for needed in ("claim", "unqueue", "longest_available", "event", "now_ms"):
        assert f"local function {needed}(" in dispatch  # claim needs unqueue, and so on
    assert "EVENTS_MAXLEN" in dispatch  # event() trims the stream to it


async def test_every_chunk_compiles_and_runs_in_redis(center: Center) -> None:
    for name in parse(LIBRARY):
        reply = await center.redis.eval(lua_chunk(name) + f"\nreturn type({name})", 0)
        assert reply in ("function", "number", "string"), name


async def test_the_library_walk_run_from_its_source(center: Center) -> None:
    await center.create_agent("b", "B", "B", ["en", "fr"], available=True)
    await center.create_agent("a", "A", "A", ["en", "fr"], available=True)
    await center.create_agent("c", "C", "C", ["en"], available=True)
    walk = lua_chunk("longest_available") + (
        "\nreturn longest_available(ARGV[1], {unpack(ARGV, 2)}, {}) or false")
    keys = [center.keys.avail(s) for s in ("en", "fr")]
    assert await center.redis.eval(walk, 2, *keys, center.keys.tag, "en", "fr") == "b"
    assert await center.redis.eval(walk, 1, keys[0], center.keys.tag, "de") is None


async def test_api_client_runs_the_app_in_the_kernel(center: Center, lab_redis: str) -> None:
    lab = Lab(redis=center.redis, center=center, env="test", url=lab_redis,
              server_version="test")
    async with api_client(lab, live=False) as api:
        assert in_kernel(api)
        assert (await api.get("/health/live")).json() == {"status": "ok", "redis": "ok"}
        created = await api.post(f"/v1/centers/{center.name}/agents",
                                 json={"id": "a1", "fname": "A", "lname": "B",
                                       "skills": ["en"]})
        assert created.status_code == 201
        # No lab key on this Redis: the client got a key of the notebook's center alone,
        # revoked once it closes.
        other = await api.get(f"/v1/centers/{center.name}-other/agents")
        assert other.status_code == 403, other.text
        kernel_keys = [k.id for k in await apikeys.list_keys(center.redis)
                       if k.center == center.name]
        assert len(kernel_keys) == 1
    assert (await center.get_agent("a1")).skills == ["en"]
    assert kernel_keys[0] not in [k.id for k in await apikeys.list_keys(center.redis)]
    with pytest.raises(LabSetupError, match="No lab API answers"):  # none on this Redis
        async with api_client(lab, live=True):
            pass


async def test_cluster_node_refuses_keys_of_two_slots() -> None:
    async with cluster_node(timeout=15) as cluster:
        for key in ("{acd:x}:queue", "avail:en", "{acd:y}:avail:en"):
            assert await cluster.execute_command("CLUSTER", "KEYSLOT", key) == slot(key)
        await cluster.zadd("{acd:x}:avail:en", {"a": 1})
        await cluster.zadd("{acd:x}:avail:fr", {"a": 1})
        assert await cluster.zinter(["{acd:x}:avail:en", "{acd:x}:avail:fr"]) == ["a"]
        with pytest.raises(ClusterCrossSlotError, match="same slot"):
            await cluster.zinter(["{acd:x}:avail:en", "{acd:y}:avail:en"])
    assert [shard_of(s) for s in (0, 5461, 5462, 10923, 16383)] == [0, 0, 1, 2, 2]


def test_recorded_runs_are_committed() -> None:
    assert recorded("bench.json")["records"] and recorded("drill.json")


def test_widget_versions_must_pair(capsys: pytest.CaptureFixture[str]) -> None:
    assert check_widget_versions({"ipywidgets": "8.1.5", "jupyterlab_widgets": "3.0.13"})
    assert not check_widget_versions({"ipywidgets": "8.1.5", "jupyterlab_widgets": "1.1.0"})
    assert "model not found" in capsys.readouterr().out
    assert not check_widget_versions({"ipywidgets": "not installed",
                                      "jupyterlab_widgets": "3.0.13"})
