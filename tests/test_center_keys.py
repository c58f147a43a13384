"""The keys of a center without SCAN (acd/center_keys.py: what a workshop learner's wipe
deletes) are exactly the keys SCAN finds, whatever the center went through."""

from __future__ import annotations

from acd import Center
from acd.center_keys import indexed_key_names, key_names


async def test_the_indexes_name_every_key_scan_finds(center: Center) -> None:
    c = center
    await c.create_agent("a1", "A", "One", ["English", "Billing"], available=True)
    await c.create_agent("a2", "A", "Two", ["Spanish"])
    await c.create_agent("gone", "G", "One", ["Dutch"])
    await c.delete_agent("gone")
    served = await c.create_contact(["English"], contact_id="served")
    await c.dispatch()
    await c.complete_contact(served.id)                    # ended: only events name it
    await c.create_contact(["English", "Billing"], contact_id="assigned")
    await c.dispatch()                                     # on a1
    await c.create_contact(["French"], contact_id="parked")  # nobody can serve it
    await c.create_contact(["Spanish"], contact_id="waiting")  # a2 unavailable
    await c.create_contact(["German"], contact_id="dropped")
    await c.abandon_contact("dropped")
    await c.add_skill("a2", "Support")
    await c.remove_skill("a2", "Support")
    await c.store_kpis({"asa": 1.5})
    await c.close()
    scanned = sorted(await key_names(c.redis, c.keys))
    assert len(scanned) > 15
    assert sorted(await indexed_key_names(c.redis, c.keys)) == scanned
    assert await c.wipe() == len(scanned)
    assert await key_names(c.redis, c.keys) == []
