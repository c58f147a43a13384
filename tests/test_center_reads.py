"""What one asks of a center: its events (after an id, blocking or not, on RESP2 and
RESP3 clients), the KPI document, the server's clock, the queue at one instant, dispatch
rounds and the wake id they return."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from acd import Center, InvalidInput, connect
from acd.commands import stream_entries, xread


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
async def on_protocol(request: pytest.FixtureRequest, center: Center, redis_url: str
                      ) -> AsyncIterator[Center]:
    """The test's center, through a client speaking RESP2 or RESP3."""
    redis = Redis.from_url(redis_url, protocol=request.param, decode_responses=True,
                           socket_timeout=10)
    yield Center(redis, center.name)
    await redis.aclose()


async def test_events_after_an_id_page_by_page(on_protocol: Center) -> None:
    center = on_protocol
    assert await center.events() == ("0-0", []), "an empty center: nothing, from 0-0"
    assert await center.last_event_id() == "0-0"
    await center.create_agent("a", "A", "B", ["en"])
    await center.create_contact(["en"], contact_id="c1")
    last, events = await center.events("0-0")
    assert [e.type for e in events] == ["agent_created", "contact_queued"]
    assert events[1].fields["contact"] == "c1" and events[1].fields["type"] == "contact_queued"
    assert last == events[-1].id == await center.last_event_id()
    assert abs(events[0].ms - time.time() * 1000) < 5000, "ids carry the server's ms"
    first, [one] = await center.events("0-0", count=1)
    assert one == events[0] and first == one.id
    assert (await center.events(first)).events == events[1:]
    assert await center.events(last) == (last, []), "nothing new: the same id back"
    assert await center.events("$") == (last, []), "$: from the newest, only new ones"


async def test_latest_events_oldest_first_up_to_an_id(center: Center) -> None:
    assert await center.latest_events(5) == []
    for i in range(4):
        await center.create_contact(["en"], contact_id=f"c{i}")
    every = (await center.events("0-0")).events
    assert await center.latest_events(2) == every[-2:]
    assert await center.latest_events(2, before=every[1].id) == every[:2]


async def test_events_wait_for_the_first_one_until_a_deadline(center: Center) -> None:
    start = await center.last_event_id()

    async def later() -> None:
        await asyncio.sleep(0.3)
        await center.create_contact(["en"], contact_id="late")

    writer = asyncio.create_task(later())
    t0 = time.monotonic()
    last, [event] = await center.events(start, block_ms=4000)
    waited = time.monotonic() - t0
    await asyncio.wait_for(writer, 5)
    assert 0.2 < waited < 3.0, waited
    assert event.fields["contact"] == "late" and last == event.id
    t0 = time.monotonic()
    assert await center.events(last, block_ms=200) == (last, [])
    assert 0.15 < time.monotonic() - t0 < 2.0, "an empty wait ends at its deadline"
    t0 = time.monotonic()
    assert await center.events(last, block_ms=0) == (last, [])
    assert time.monotonic() - t0 < 0.5, "block_ms=0 does not wait"
    with pytest.raises(ValueError, match="block_ms"):
        await xread(center.redis, center.keys.events, last, block_ms=0)  # BLOCK 0: for ever


async def test_events_wait_on_the_client_given(center: Center, redis_url: str) -> None:
    blocking = connect(redis_url, client_name="t-waits-here", block_ms=3000)
    try:
        reader = asyncio.create_task(center.events("$", block_ms=3000, via=blocking))
        deadline = time.monotonic() + 3
        while not any(c.get("name") == "t-waits-here" and c.get("cmd") == "xread"
                      for c in await center.redis.client_list()):
            assert time.monotonic() < deadline, "the wait never reached the client given"
            await asyncio.sleep(0.01)
        await center.create_contact(["en"], contact_id="seen")
        _, [event] = await asyncio.wait_for(reader, 5)
        assert event.fields["contact"] == "seen"
    finally:
        await blocking.aclose()


def test_xread_replies_of_both_protocols_parse_alike() -> None:
    entries = [("1-0", {"type": "x"}), ("1-1", {"type": "y"})]
    assert stream_entries([["k", entries]], "k") == entries
    assert stream_entries({"k": [entries]}, "k") == entries
    assert stream_entries([["other", entries]], "k") == []
    assert stream_entries({}, "k") == stream_entries(None, "k") == []


async def test_kpis_round_trip_and_refusals(center: Center) -> None:
    assert await center.kpis() is None
    doc = {"asa_ms": 812.5, "service_level": {"20s": 0.87}, "runs": [1, 2], "ok": None}
    await center.store_kpis(doc)
    assert await center.kpis() == doc
    with pytest.raises(InvalidInput, match="not storable as JSON"):
        await center.store_kpis({"x": float("nan")})
    deep: dict[str, object] = {}
    node = deep
    for _ in range(200):
        node["n"] = {}
        node = node["n"]  # type: ignore[assignment]
    with pytest.raises(InvalidInput, match="RedisJSON refused"):
        await center.store_kpis(deep)
    assert await center.kpis() == doc, "a refused document changes nothing"


async def test_server_clock_is_monotonic_and_agrees_with_time(center: Center) -> None:
    readings = [await center.server_ms() for _ in range(20)]
    assert readings == sorted(readings)
    seconds, micros = await center.redis.time()
    assert abs(readings[-1] - (seconds * 1000 + micros // 1000)) < 1000
    before, fine, after = (await center.server_ms(), await center.server_us(),
                           await center.server_ms())
    assert before <= fine // 1000 <= after
    agent = await center.create_agent("a", "A", "B", ["en"], available=True)
    assert agent.available_since is not None
    assert before <= agent.available_since <= await center.server_ms(), "the Functions' clock"


async def test_queue_view_at_one_instant(center: Center) -> None:
    view = await center.queue_view()
    assert (view.length, view.oldest, view.open, view.dispatch_mode) == (
        0, [], False, "automatic")
    for i in range(3):
        await center.create_contact(["en"], contact_id=f"c{i}")
    await center.open()
    await center.set_dispatch_mode("manual")
    view = await center.queue_view(limit=2)
    assert view.length == 3 and [c for c, _ in view.oldest] == ["c0", "c1"]
    assert view.open and view.dispatch_mode == "manual"
    assert all(0 <= view.now_ms - t < 5000 for _, t in view.oldest)
    assert view.oldest == (await center.queue(2))
    assert await center.counters() == {"offered": 3}


async def test_dispatch_round_returns_its_wake_id(center: Center) -> None:
    await center.create_agent("a", "A", "B", ["en"], available=True)
    contact = await center.create_contact(["en"])
    done = await center.dispatch_round()
    assert done.pairs == [(contact.id, "a")]
    [newest] = await center.redis.xrevrange(center.keys.wake, count=1)
    assert done.wake_id == newest[0], "the last wake-up the round saw"
    t0 = time.monotonic()
    await center.wait_for_wake(done.wake_id, 200)
    assert 0.15 < time.monotonic() - t0 < 2.0, "no wake-up since: waits to the deadline"
    await center.complete_contact(contact.id)  # the agent is available again: a wake-up
    t0 = time.monotonic()
    await center.wait_for_wake(done.wake_id, 5000)
    assert time.monotonic() - t0 < 1.0, "a wake-up after the id returns at once"
    counters = await center.counters()
    assert (counters["assigned"], counters["completed"]) == (1, 1)


async def test_get_agents_in_order_with_none_for_missing(center: Center) -> None:
    await center.create_agent("a", "A", "B", ["en"])
    await center.create_agent("b", "C", "D", ["fr"])
    found = await center.get_agents(["b", "ghost", "a"])
    assert [a.id if a else None for a in found] == ["b", None, "a"]
    assert await center.get_agents([]) == []
    with pytest.raises(InvalidInput, match="agent id"):
        await center.get_agents(["bad id"])


async def test_get_contacts_in_order_with_none_for_missing(center: Center) -> None:
    await center.create_contact(["en"], contact_id="c1")
    await center.create_contact(["fr"], contact_id="c2")
    found = await center.get_contacts(["c2", "ghost", "c1"])
    assert [(c.id, c.skills) if c else None for c in found] == [
        ("c2", ["fr"]), None, ("c1", ["en"])]
    assert await center.get_contacts([]) == []
    with pytest.raises(InvalidInput, match="contact id"):
        await center.get_contacts(["../x"])
