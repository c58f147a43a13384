"""A contact's stored document holds no string of its own (contact_json in
acd/lua/08_contacts.lua): its id
is in its key only, so creating contacts never adds strings to RedisJSON's server-wide
string table, whose doubling made one create take 23-29 ms (README, Performance). Callers
still see the id: the functions' replies and Center's reads put it back from the key."""

from __future__ import annotations

import json
from typing import Any

from acd import Center


def strings_in(value: Any) -> set[str]:
    """Every string of a JSON value: member names and string values."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set(value) | {s for v in value.values() for s in strings_in(v)}
    if isinstance(value, list):
        return {s for v in value for s in strings_in(v)}
    return set()


async def stored(center: Center, cid: str) -> dict[str, Any]:
    raw = await center.redis.execute_command("JSON.GET", center.keys.contact(cid), ".")
    doc = json.loads(raw)
    assert isinstance(doc, dict)
    return doc


async def test_no_stored_contact_has_a_string_of_its_own(center: Center) -> None:
    await center.create_agent("ann", "Ann", "Lee", ["en", "fr"], available=True)
    await center.set_dispatch_mode("manual")
    ids = [(await center.create_contact(["en", "fr"], priority=p)).id for p in (0, 3)]
    ids.append((await center.create_contact(["fr"], contact_id="chosen-by-caller")).id)
    docs = [await stored(center, cid) for cid in ids]  # queued
    [served] = await center.dispatch(most=1)
    docs.append(await stored(center, served.contact))  # assigned
    await center.complete_contact(served.contact)
    await center.abandon_contact(ids[2])
    docs += [await stored(center, served.contact), await stored(center, ids[2])]  # ended
    # Shared by every contact: member names, skills, states, the agent's id.
    shared = {"skills", "state", "priority", "head_start_ms", "agent", "queued_at",
              "assigned_at", "ended_at", "en", "fr", "queued", "assigned", "completed",
              "abandoned", "ann"}
    for doc in docs:
        assert strings_in(doc) <= shared, doc
    for cid in ids:
        assert cid not in json.dumps(docs)


async def test_every_read_and_reply_still_names_the_contact(center: Center) -> None:
    created = await center.create_contact(["en"], contact_id="c1")
    assert created.id == "c1"
    assert (await center.get_contact("c1")).id == "c1"
    assert [c and c.id for c in await center.get_contacts(["c1", "gone", "c1"])] == [
        "c1", None, "c1"]
    assert (await center.get_contact_replicated("c1")).id == "c1"  # type: ignore[union-attr]
    assert (await center.abandon_contact("c1")).id == "c1"
    assert (await center.abandon_contact("c1")).id == "c1"  # ended already: read back
    raw = await center.redis.execute_command(
        "FCALL", "acd_contact_end", 4, center.keys.contact("c1"), center.keys.queue,
        center.keys.waiting_sigs, center.keys.stats, "c1", "complete", 60)
    assert json.loads(raw)["id"] == "c1"


async def test_a_document_stored_with_its_id_still_reads(center: Center) -> None:
    """Documents written before the id left them (an upgraded server) still work."""
    await center.create_agent("ann", "Ann", "Lee", ["en"], available=True)
    await center.set_dispatch_mode("manual")
    await center.create_contact(["en"], contact_id="old")
    await center.redis.execute_command("JSON.SET", center.keys.contact("old"), "$.id", '"old"')
    assert (await center.get_contact("old")).id == "old"
    [served] = await center.dispatch(most=1)
    assert served.contact == "old"
    ended = await center.complete_contact("old")
    assert (ended.id, ended.state) == ("old", "completed")


async def test_reads_survive_a_client_that_redis_py_json_decodes(center: Center) -> None:
    # Calling redis-py's .json() registers response callbacks on the client that decode
    # JSON.GET and JSON.MGET replies (a notebook does it); the package's reads still work.
    await center.create_agent("a", "A", "B", ["en"], available=True)
    await center.create_contact(["en"], "c1")
    assert await center.redis.json().get(center.keys.contact("c1"), "$.state") == ["queued"]
    assert (await center.get_contact("c1")).id == "c1"
    assert [c.id for c in await center.get_contacts(["c1"]) if c] == ["c1"]
    assert (await center.get_agent("a")).skills == ["en"]
    assert [a.id for a in await center.get_agents(["a"]) if a] == ["a"]
