"""Center operations: validation, errors that name the problem, nothing half-written."""

from __future__ import annotations

import pytest

from acd import AlreadyExists, Center, InvalidInput, InvalidState, NotDurable, NotFound
from acd.settings import get_settings


async def keys_of(center: Center) -> list[str]:
    return sorted([k async for k in center.redis.scan_iter(match=center.keys.pattern())])


@pytest.mark.parametrize(("call", "message"), [
    (lambda c: c.create_agent("bad id", "A", "B", ["en"]), "agent id 'bad id'"),
    (lambda c: c.create_agent("a", "A", "B", []), "skills"),
    (lambda c: c.create_agent("a", "A", "B", ["en", "en"]), "repeated: en"),
    (lambda c: c.create_agent("a", "A", "B", ["en:x"]), "skills.0"),
    (lambda c: c.create_agent("a", "", "B", ["en"]), "fname"),
    (lambda c: c.create_agent("a", "A" * 101, "B", ["en"]), "fname"),
    (lambda c: c.create_contact([]), "skills"),
    (lambda c: c.create_contact(["en"], contact_id="../x"), "contact id"),
    (lambda c: c.set_agent_state("a", "busy"), "busy"),
    (lambda c: c.set_agent_state("a", "asleep"), "asleep"),
])
async def test_bad_input_is_named_and_writes_nothing(center: Center, call, message) -> None:
    with pytest.raises(InvalidInput, match=message):
        await call(center)
    assert await keys_of(center) == []


async def test_centers_are_isolated_and_in_one_slot(center: Center) -> None:
    from redis.crc import key_slot

    other = Center(center.redis, center.name + "-other")
    await center.create_agent("a", "A", "B", ["en"], available=True)
    await other.create_agent("a", "Other", "Agent", ["fr"], available=True)
    await center.create_contact(["en"])
    assert (await center.get_agent("a")).fname == "A"
    assert await other.queue() == []
    slots = {key_slot(k.encode()) for k in await keys_of(center)}
    assert len(slots) == 1, "every key of a center hashes to one slot"
    await other.wipe()
    assert (await center.get_agent("a")).fname == "A"


async def test_not_found_conflict_and_state_errors(center: Center) -> None:
    with pytest.raises(NotFound, match="agent ghost"):
        await center.set_available("ghost")
    with pytest.raises(NotFound, match="contact nope"):
        await center.complete_contact("nope")
    await center.create_agent("a", "A", "B", ["en"], available=True)
    with pytest.raises(AlreadyExists, match="agent a"):
        await center.create_agent("a", "A", "B", ["fr"])
    with pytest.raises(AlreadyExists, match="skill en of agent a"):
        await center.add_skill("a", "en")
    with pytest.raises(NotFound, match="skill fr of agent a"):
        await center.remove_skill("a", "fr")
    contact = await center.create_contact(["en"])
    await center.dispatch()
    with pytest.raises(InvalidState, match="on a contact"):
        await center.delete_agent("a")
    with pytest.raises(InvalidState, match="assigned"):
        await center.abandon_contact(contact.id)
    assert (await center.get_agent("a")).state == "busy"


async def test_agent_lifecycle_and_skills(center: Center) -> None:
    await center.create_agent("a", "Ann", "Lee", ["en", "billing"])
    assert (await center.get_agent("a")).state == "unavailable"
    agent = await center.set_available("a")
    assert agent.available_since is not None
    assert await center.redis.zscore(center.keys.avail("en"), "a") == agent.available_since
    agent = await center.add_skill("a", "fr")
    assert agent.skills == ["en", "billing", "fr"]
    assert await center.redis.zscore(center.keys.avail("fr"), "a") == agent.available_since
    agent = await center.remove_skill("a", "en")
    assert agent.skills == ["billing", "fr"]
    assert await center.redis.zscore(center.keys.avail("en"), "a") is None
    assert (await center.update_agent("a", "Anne", "Leigh")).fname == "Anne"
    await center.create_agent("b", "B", "B", ["fr", "de"], available=True)
    assert (await center.delete_skill("fr")).agents == 2
    assert (await center.get_agent("b")).skills == ["de"]
    assert await center.list_skills() == ["billing", "de"]
    assert await center.close() == 2
    assert await center.redis.zcard(center.keys.avail("billing")) == 0
    assert await center.open() == 2
    await center.delete_agent("b")
    with pytest.raises(NotFound):
        await center.get_agent("b")
    assert [a.id for a in await center.list_agents()] == ["a"]


async def test_contact_lifecycle(center: Center) -> None:
    await center.create_agent("a", "A", "B", ["en"])
    waiting = await center.create_contact(["en"])
    assert (await center.abandon_contact(waiting.id)).state == "abandoned"
    assert await center.queue() == []
    # Completing a queued contact: it was never answered, so it is abandoned.
    queued = await center.create_contact(["en"])
    assert (await center.complete_contact(queued.id)).state == "abandoned"
    served = await center.create_contact(["en"])
    await center.set_available("a")
    [assignment] = await center.dispatch()
    assert assignment.contact == served.id
    done = await center.complete_contact(served.id)
    assert done.state == "completed" and done.agent == "a" and done.wait_ms is not None
    assert (await center.get_agent("a")).state == "available", "freed by completion"
    assert (await center.complete_contact(served.id)).state == "completed", "idempotent"
    assert 0 < await center.redis.ttl(center.keys.contact(served.id)) <= 3600
    stats = await center.stats()
    assert (stats.offered, stats.assigned, stats.completed, stats.abandoned) == (3, 1, 1, 2)


async def test_contact_not_acknowledged_by_replicas_is_reported(
        center: Center, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = get_settings()
    monkeypatch.setattr(settings, "acd_wait_replicas", 1)
    monkeypatch.setattr(settings, "acd_wait_timeout_ms", 50)
    with pytest.raises(NotDurable, match="0 of 1 replicas"):
        await center.create_contact(["en"], contact_id="c1")
    # It was written on this server; a retry with the same id finds it, nothing doubled.
    assert [cid for cid, _ in await center.queue()] == ["c1"]
