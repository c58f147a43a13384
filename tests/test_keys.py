"""acd/keys.py is the one schema of key names: the Lua library builds the same names from
a center's tag, every key lives in the center's hash slot, and SCAN patterns find exactly
one center's keys (or one kind of them)."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from acd import Center
from acd.keys import Keys, check_name


async def keys_of(center: Center, kind: str = "") -> list[str]:
    return sorted([k async for k in center.redis.scan_iter(match=center.keys.pattern(kind))])


async def test_lua_and_python_agree_on_key_names(center: Center) -> None:
    k = center.keys
    await center.create_agent("a", "A", "B", ["en", "fr"], available=True)
    contact = await center.create_contact(["de"])
    served = await center.create_contact(["en"])
    assert {k.avail("en"), k.avail("fr")} <= set(await keys_of(center))
    await center.dispatch()  # the agent leaves both availability sets: they are gone
    known = {k.agent("a"), k.contact(contact.id), k.contact(served.id),
             k.skill_agents("en"), k.skill_agents("fr"), k.queue, k.agents, k.skills,
             k.waiting_sigs, k.combo("de"), k.parked("de"), k.parked_on,  # nobody has de
             k.meta, k.stats, k.events, k.wake}
    assert set(await keys_of(center)) == known
    waiting = await center.create_contact(["en"])  # a is busy: parked as it arrives
    known |= {k.contact(waiting.id), k.combo("en"), k.parked("en")}
    assert set(await keys_of(center)) == known
    await center.create_agent("b", "B", "C", ["en"], available=True)  # can serve it
    known = (known - {k.parked("en")}) | {k.agent("b"), k.avail("en"), k.ready}
    assert set(await keys_of(center)) == known
    assert {key_slot(key.encode()) for key in known} == {key_slot(k.tag.encode())}
    assert await keys_of(center, "contact") == sorted(
        k.contact(c.id) for c in (contact, served, waiting))


async def test_patterns_never_match_another_center(center: Center) -> None:
    other = Center(center.redis, center.name + "x")  # its name starts with ours
    try:
        await other.create_contact(["en"], contact_id="c1")
        await center.create_contact(["en"], contact_id="c1")
        assert await keys_of(center, "contact") == [center.keys.contact("c1")]
    finally:
        await other.wipe()


@pytest.mark.parametrize("bad", ["", "a b", "a:b", "{x}", "-a", "a" * 65, "é"])
def test_names_that_would_break_a_key_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="is not valid"):
        check_name("center", bad)
    with pytest.raises(ValueError):
        Keys(bad)
