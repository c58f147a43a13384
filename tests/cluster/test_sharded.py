"""The ACD on a sharded database: a 3-primary Redis OSS Cluster (tests/cluster/conftest.py)
with a cluster-aware client (redis.asyncio.cluster.RedisCluster).

A sharded database requires every key of one command, script or function to be in one
hash slot. The acd library's functions declare only some of their keys and derive the rest from the
center's tag: Redis Enterprise does not check the undeclared ones and may not report a
violation, but an OSS Cluster node refuses any key a function touches that is not in the
slot of the keys it was given (test_an_undeclared_key_of_another_slot_is_refused proves
that it checks). So every acd function that runs here, for centers on every primary, is
proven to stay in its center's slot; and afterwards every key of each center is found on
the primary that owns its slot, and none elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from acd_invariants import check_invariants, wait_for
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ClusterCrossSlotError, RedisClusterException, ResponseError
from shards import center_names
from test_model import run_model

from acd import Center, InvalidState
from acd.all_centers import AllCenters
from acd.stats import combinations
from lab.cluster import LocalCluster, slot


async def story(center: Center) -> None:
    """Every acd function at least once, with the outcomes the rules give."""
    await center.create_agent("a1", "A", "One", ["en", "billing"], available=True)
    await center.create_agent("a2", "A", "Two", ["en"], available=True)
    await center.create_agent("a3", "A", "Three", ["fr"])
    await center.update_agent("a3", "Anne", "Three")
    await center.set_seconds_per_point(3600)
    billing = await center.create_contact(["billing", "en"])
    # Nobody available has fr: parked. Its priority reads the center's point.
    french = await center.create_contact(["fr"], priority=1)
    assert french.head_start_ms == 3_600_000
    english = await center.create_contact(["en"])
    done = {(a.contact, a.agent) for a in await center.dispatch()}
    assert done == {(billing.id, "a1"), (english.id, "a2")}
    await center.set_unavailable("a1")  # not ready after this contact
    assert (await center.get_agent("a1")).next_state == "unavailable"
    await center.add_skill("a3", "en")
    await center.add_skill("a2", "fr")
    await center.remove_skill("a2", "fr")
    assert await center.open() == 1  # a3; the busy ones keep their contacts
    assert [(a.contact, a.agent) for a in await center.dispatch()] == [(french.id, "a3")]
    await center.complete_contact(billing.id)
    assert (await center.get_agent("a1")).state == "available"  # open cancelled "after"
    late = await center.create_contact(["de"])
    with pytest.raises(InvalidState):
        await center.delete_skill("de")
    assert (await center.delete_skill("de", force=True)).abandoned == 1
    assert (await center.get_contact(late.id)).state == "abandoned"
    gone = await center.create_contact(["billing"])
    await center.abandon_contact(gone.id)
    await center.set_dispatch_mode("manual")
    assert (await center.dispatch_round(service=True)).pairs == []
    await center.close()
    await center.complete_contact(english.id)
    assert (await center.get_agent("a2")).state == "unavailable"  # closed meanwhile
    await center.delete_agent("a2")
    counters = await center.counters()
    assert (counters["offered"], counters["assigned"], counters["abandoned"]) == (5, 3, 2)
    await check_invariants(center)


async def keys_by_node(cluster: LocalCluster, center: Center) -> dict[int, list[str]]:
    """Every key of ``center`` on each primary, asked of that primary alone."""
    found = {}
    for node in cluster.nodes:
        client = node.async_client()
        try:
            found[node.port] = sorted([str(k) async for k in client.scan_iter(
                match=center.keys.pattern(), count=1000)])
        finally:
            await client.aclose()
    return found


async def test_centers_on_every_primary_keep_their_keys_in_their_slot(
        cluster: LocalCluster, shard_centers: list[Center]) -> None:
    owners = {cluster.node_for(c.keys.queue).port for c in shard_centers}
    assert owners == {node.port for node in cluster.nodes}, "one center on each primary"
    await asyncio.gather(*(story(c) for c in shard_centers))
    for center in shard_centers:
        owner = cluster.node_for(center.keys.queue)
        found = await keys_by_node(cluster, center)
        assert all(not keys for port, keys in found.items() if port != owner.port), found
        keys = found[owner.port]
        assert len(keys) >= 10, keys  # documents, sets, queue, index, streams, stats
        assert {slot(k) for k in keys} == {slot(center.keys.queue)}
        client = owner.async_client()
        try:
            count = await client.execute_command(  # type: ignore[no-untyped-call]
                "CLUSTER", "COUNTKEYSINSLOT", slot(center.keys.queue))
        finally:
            await client.aclose()
        assert count == len(keys), "the slot holds this center's keys and nothing else"


async def test_a_function_given_keys_of_two_slots_fails_with_crossslot(
        cluster: LocalCluster, shard_centers: list[Center],
        cluster_client: RedisCluster) -> None:
    here, there = shard_centers[0], shard_centers[1]
    await here.create_agent("a", "A", "B", ["en"])
    keys = [here.keys.agent("a"), there.keys.agent("a")]
    node = cluster.node_for(keys[0]).async_client()
    try:
        # redis-py turns the CROSSSLOT reply into this class (and strips the code)
        with pytest.raises(ClusterCrossSlotError, match="don't hash to the same slot"):
            await node.fcall("acd_agent_state", 2, *keys, "a", "available")  # type: ignore[misc]
    finally:
        await node.aclose()
    with pytest.raises(RedisClusterException, match="same key slot"):
        await cluster_client.fcall("acd_agent_state", 2, *keys, "a", "available")  # type: ignore[misc]
    assert (await here.get_agent("a")).state == "unavailable", "nothing was written"


PROBE = """#!lua name=acdprobe
redis.register_function('acdprobe_touch', function(keys, args)
  redis.call('GET', keys[1])
  return redis.call('EXISTS', args[1])
end)
"""


async def test_an_undeclared_key_of_another_slot_is_refused(
        cluster: LocalCluster, shard_centers: list[Center]) -> None:
    """What makes the runs above a proof: a node refuses a key a function derives itself
    (not declared in KEYS) when it is in another slot than the declared ones, even another
    slot of the same node; the same key in the declared slot is allowed."""
    here = shard_centers[0]
    owner = cluster.node_for(here.keys.queue)
    same_node_other_slot = next(
        name for name in center_names(cluster, per_primary=3)
        if cluster.node_for("{acd:" + name + "}").port == owner.port
        and slot("{acd:" + name + "}") != slot(here.keys.queue))
    other = Center(here.redis, same_node_other_slot)
    node = owner.async_client()
    try:
        await node.execute_command("FUNCTION", "LOAD", "REPLACE", PROBE)  # type: ignore[no-untyped-call]
        assert await node.fcall(  # type: ignore[misc]
            "acdprobe_touch", 1, here.keys.queue, here.keys.meta) == 0
        with pytest.raises(ResponseError, match="do not hash to the same slot"):
            await node.fcall("acdprobe_touch", 1, here.keys.queue, other.keys.meta)  # type: ignore[misc]
    finally:
        await node.execute_command("FUNCTION", "DELETE", "acdprobe")  # type: ignore[no-untyped-call]
        await node.aclose()


@pytest.mark.timeout(120)
def test_the_acd_agrees_with_its_model_on_a_cluster(cluster: LocalCluster) -> None:
    run_model(cluster.async_client, examples=10, steps=25)


async def test_one_dispatcher_serves_centers_on_every_primary(
        shard_centers: list[Center], cluster_client: RedisCluster,
        caplog: pytest.LogCaptureFixture) -> None:
    """acd.all_centers on a cluster: one XREAD cannot watch wake streams in several slots
    (a cluster-aware client refuses it before sending), so it falls back to a round for
    each center every idle_ms / 10, and serves every center."""
    for center in shard_centers:
        await center.create_agent("a", "A", "B", ["en"], available=True)
    dispatcher = AllCenters(cluster_client, idle_ms=100, summary_every=60)
    task = asyncio.create_task(dispatcher.run())
    try:
        contacts = [await c.create_contact(["en"]) for c in shard_centers]

        async def all_assigned() -> bool:
            states: list[Any] = [(await c.get_contact(x.id)).state
                                 for c, x in zip(shard_centers, contacts, strict=True)]
            return states == ["assigned"] * len(contacts)

        await wait_for(all_assigned, 5, "the dispatcher to serve a center on every primary")
        failures = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert failures == [], "the fallback is taken without failing first"
    finally:
        dispatcher.stop()
        await asyncio.wait_for(task, 10)
    for center in shard_centers:
        await check_invariants(center)


async def test_statistics_and_the_queue_view_on_a_cluster(shard_centers: list[Center]) -> None:
    """Center.stats and queue_view read the queue, counters and the server's clock; a
    cluster pipeline refuses TIME (it has no key), so the clock is read on its own."""
    center = shard_centers[2]
    await center.create_agent("a", "A", "B", ["en"], available=True)
    waiting = await center.create_contact(["fr"])
    view = await center.queue_view()
    assert (view.length, [cid for cid, _ in view.oldest]) == (1, [waiting.id])
    stats = await center.stats()
    assert (stats.waiting, stats.offered, stats.agents["available"]) == (1, 1, 1)
    assert 0 <= stats.oldest_wait_ms < 60_000


async def test_waiting_per_combination_on_a_cluster(shard_centers: list[Center]) -> None:
    """acd.stats reads only keys of the center's slot (a cluster pipeline would refuse
    others), SINTERCARD and ZINTERCARD over several skills' sets included."""
    for center in shard_centers:
        await center.create_agent("a", "A", "B", ["en", "fr"], available=True)
        await center.create_contact(["de", "en"])
        await center.create_contact(["en", "fr"])
        view = await combinations(center)
        assert [(c.skills, c.state.value, c.eligible, c.available)
                for c in view.combinations] == [(["de", "en"], "parked", 0, 0),
                                                (["en", "fr"], "ready", 1, 1)]
