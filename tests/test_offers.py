"""Offers (issue 14, acd.offers): with a center's offer timeout a round offers instead of
assigning; accepted it is an assignment, rejected or timed out a miss (the contact back at
its place, the agent available and not offered it again for the back-off, on a break
after too many misses in a row). Deadlines are Redis's: any round expires due offers.

No sleep and hope: an offer is either long (60 s: it cannot end during the test) or tiny
(a few ms), and then the test waits, with a deadline, until the server's clock has passed
its end, or until a dispatcher has ended it.
"""

from __future__ import annotations

import asyncio
import subprocess
import time

import pytest
from acd_invariants import check_invariants, dispatcher_cmd, wait_for

from acd import Center, InvalidInput, InvalidState
from acd.reconcile import reconcile


async def events(center: Center) -> list[dict[str, str]]:
    return [f for _, f in await center.redis.xrange(center.keys.events)]


async def past(center: Center, ms: float) -> None:
    """Until the server's clock is past ``ms``."""
    deadline = time.monotonic() + 5
    while await center.server_ms() <= ms:
        assert time.monotonic() < deadline, "the server's clock does not move"
        await asyncio.sleep(0.001)


async def offered(center: Center, timeout_s: float = 60, **options: float) -> tuple[str, str]:
    """Agent a (skill en) offered a new contact; returns (contact, its queue score)."""
    await center.set_offers(timeout_s, **options)  # type: ignore[arg-type]
    await center.create_agent("a", "A", "B", ["en"], available=True)
    contact = await center.create_contact(["en"])
    score = await center.redis.zscore(center.keys.queue, contact.id)
    [pair] = await center.dispatch()
    assert (pair.contact, pair.agent) == (contact.id, "a")
    return contact.id, score


async def test_off_by_default_a_round_assigns(center: Center) -> None:
    assert (await center.offer_settings()).timeout_s == 0
    await center.create_agent("a", "A", "B", ["en"], available=True)
    cid = (await center.create_contact(["en"])).id
    round_ = await center.dispatch_round()
    assert round_.pairs == [(cid, "a")] and round_.wrap_up_in_ms is None
    assert (await center.get_contact(cid)).state == "assigned"
    assert not await center.redis.exists(center.keys.offers, center.keys.excluded)
    assert "offer_due" not in await center.redis.hgetall(center.keys.meta)


async def test_a_round_offers_and_reserves_the_agent(center: Center) -> None:
    cid, _ = await offered(center)
    agent, contact = await center.get_agent("a"), await center.get_contact(cid)
    assert (agent.state, agent.contact, contact.state, contact.agent) == (
        "offered", cid, "offered", "a")
    assert agent.offer_until == contact.offer_until and agent.offer_until is not None
    assert await center.redis.zscore(center.keys.avail("en"), "a") is None
    assert await center.redis.zscore(center.keys.offers, f"o|{cid}") == agent.offer_until
    other = await center.create_contact(["en"])
    assert await center.dispatch() == [], "a reserved agent gets no other contact"
    assert (await center.get_contact(other.id)).state == "queued"
    stats = await center.stats()
    assert (stats.agents["offered"], stats.assigned, stats.waiting) == (1, 0, 1)
    assert any(e["type"] == "contact_offered" and e["contact"] == cid
               for e in await events(center))
    await check_invariants(center)


async def test_accepted_an_offer_is_an_assignment(center: Center) -> None:
    cid, _ = await offered(center)
    agent = await center.accept_offer("a")
    contact = await center.get_contact(cid)
    assert (agent.state, agent.contact, agent.offer_until, contact.state) == (
        "busy", cid, None, "assigned")
    assert contact.assigned_at is not None and contact.offer_until is None
    assert not await center.redis.exists(center.keys.offers)
    kinds = [e["type"] for e in await events(center)]
    assert kinds[-2:] == ["offer_accepted", "contact_assigned"]
    assert (await center.counters())["assigned"] == 1
    with pytest.raises(InvalidState, match="no offer"):
        await center.accept_offer("a")
    await center.complete_contact(cid)
    assert (await center.get_agent("a")).state == "available"
    await check_invariants(center)


async def test_rejected_the_contact_keeps_its_place_and_skips_that_agent(
        center: Center) -> None:
    older, score = await offered(center, backoff_s=60)
    newer = await center.create_contact(["en"])
    agent = await center.reject_offer("a", older)
    assert (agent.state, agent.missed_offers, agent.contact) == ("available", 1, None)
    assert await center.redis.zscore(center.keys.queue, older) == score, "it keeps its age"
    assert await center.queue() == [(older, int(score)), (newer.id, int(
        await center.redis.zscore(center.keys.queue, newer.id)))]
    assert await center.dispatch() == [], "the agent is not offered it again yet"
    await center.create_agent("b", "A", "B", ["en"], available=True)
    pairs = [(p.contact, p.agent) for p in await center.dispatch()]
    assert pairs == [(older, "b"), (newer.id, "a")], "the oldest first, to b; a takes the next"
    assert [e["type"] for e in await events(center)].count("offer_rejected") == 1
    await check_invariants(center)


async def test_the_exclusion_ends_after_the_backoff(center: Center) -> None:
    cid, _ = await offered(center, backoff_s=0.005)  # its start: the test above
    await center.reject_offer("a")
    ends = await center.redis.zscore(center.keys.offers, f"x|{cid}|a")
    await past(center, ends)
    [pair] = await center.dispatch()
    assert (pair.contact, pair.agent) == (cid, "a")
    assert not await center.redis.exists(center.keys.excluded)
    await check_invariants(center)


async def test_the_exclusion_ends_for_a_contact_with_a_minimum_level(center: Center) -> None:
    # Its combination is 'en:3' (acd.levels): the exclusion's end finds it there. The
    # back-off must outlast the reject-then-round below even on a loaded machine (5 ms did
    # not: the round found the exclusion over and offered it again).
    await center.set_offers(60, backoff_s=0.5)
    await center.create_agent("a", "A", "B", ["en"], available=True, levels={"en": 3})
    await center.create_agent("b", "A", "B", ["en"], available=True)  # level 1: not enough
    cid = (await center.create_contact(["en"], min_levels={"en": 3})).id
    [pair] = await center.dispatch()
    assert pair.agent == "a"
    await center.reject_offer("a")
    assert await center.dispatch() == [], "a is excluded and b is not qualified: it parks"
    await check_invariants(center)
    await past(center, await center.redis.zscore(center.keys.offers, f"x|{cid}|a"))
    [pair] = await center.dispatch()
    assert (pair.contact, pair.agent) == (cid, "a"), "offered to a again after the back-off"
    await check_invariants(center)


async def test_a_timed_out_offer_is_missed_by_the_next_round(center: Center) -> None:
    cid, _ = await offered(center, timeout_s=0.005)
    ends = (await center.get_agent("a")).offer_until
    assert ends is not None
    await past(center, ends)
    await center.dispatch_round()  # expires it (then offers it again: no back-off)
    timed_out = [e for e in await events(center) if e["type"] == "offer_timed_out"]
    assert timed_out == [{"type": "offer_timed_out", "contact": cid, "agent": "a",
                          "state": "available"}]
    assert (await center.get_agent("a")).missed_offers == 1
    await check_invariants(center)


async def test_too_many_misses_in_a_row_put_the_agent_on_a_break(center: Center) -> None:
    cid, _ = await offered(center, max_misses=2)
    await center.reject_offer("a")
    await center.dispatch()
    agent = await center.reject_offer("a")
    assert (agent.state, agent.reason, agent.missed_offers) == (
        "unavailable", "missed_offers", None)
    assert (await center.get_contact(cid)).state == "queued"
    assert (await center.stats()).breaks == {"missed_offers": 1}
    assert {"type": "offer_rejected", "contact": cid, "agent": "a", "state": "unavailable",
            "reason": "missed_offers"} in await events(center)
    await center.set_available("a")
    await center.dispatch()
    assert (await center.accept_offer("a")).missed_offers is None, "an accept resets it"
    await check_invariants(center)


async def test_a_state_asked_while_offered_applies_at_the_answer(center: Center) -> None:
    await offered(center)
    pending = await center.log_out("a")
    assert (pending.state, pending.next_state) == ("offered", "logged_out")
    out = await center.reject_offer("a")
    assert (out.state, out.missed_offers) == ("logged_out", None)
    await check_invariants(center)


async def test_an_offered_contact_that_hangs_up_is_abandoned(center: Center) -> None:
    cid, _ = await offered(center)
    ended = await center.abandon_contact(cid)
    assert (ended.state, ended.agent, ended.offer_until) == ("abandoned", None, None)
    agent = await center.get_agent("a")
    assert (agent.state, agent.missed_offers) == ("available", None), "not its miss"
    assert not await center.redis.exists(center.keys.offers)
    await check_invariants(center)


async def test_an_offered_agent_is_not_deleted(center: Center) -> None:
    await offered(center)
    with pytest.raises(InvalidState, match="offered contact"):
        await center.delete_agent("a")
    await center.reject_offer("a")
    await center.delete_agent("a")
    await check_invariants(center)


async def test_a_center_with_an_offer_under_way_is_deleted(center: Center) -> None:
    """The offered contact is abandoned with the center (no client answers any more)."""
    cid, _ = await offered(center)
    await center.create_agent("b", "A", "B", ["en"])
    done = await center.delete()
    assert done.agents == 2
    contact = await center.get_contact(cid)  # kept readable until it expires
    assert contact.state == "abandoned"
    assert await center.key_names() == [center.keys.contact(cid)]


async def test_bad_settings_are_refused_naming_them(center: Center) -> None:
    await center.set_offers(10, 3, 5)
    for kwargs, named in (({"timeout_s": -1}, "timeout_s"), ({"timeout_s": 601}, "timeout_s"),
                          ({"timeout_s": 1, "max_misses": -1}, "max_misses"),
                          ({"timeout_s": 1, "max_misses": True}, "max_misses"),
                          ({"timeout_s": 1, "backoff_s": float("nan")}, "backoff_s")):
        with pytest.raises(InvalidInput, match=named):
            await center.set_offers(**kwargs)  # type: ignore[arg-type]
    settings = await center.offer_settings()
    assert (settings.timeout_s, settings.max_misses, settings.backoff_s) == (10, 3, 5)
    with pytest.raises(InvalidInput, match="agent id"):
        await center.accept_offer("no way")


async def test_reconcile_frees_an_agent_whose_offered_contact_is_lost(center: Center) -> None:
    cid, _ = await offered(center)
    await center.redis.delete(center.keys.contact(cid))  # a write around the functions
    await reconcile(center)
    assert (await center.get_agent("a")).state == "available"
    await check_invariants(center)


async def test_reconcile_requeues_a_contact_whose_agent_is_lost(center: Center) -> None:
    cid, score = await offered(center)
    await center.redis.delete(center.keys.agent("a"))
    await reconcile(center)
    assert (await center.get_contact(cid)).state == "queued"
    assert await center.redis.zscore(center.keys.queue, cid) == score
    await check_invariants(center)


async def test_reconcile_restores_a_lost_deadline(center: Center) -> None:
    cid, _ = await offered(center)
    await center.redis.delete(center.keys.offers)
    await reconcile(center)
    assert await center.redis.zscore(center.keys.offers, f"o|{cid}") is not None
    await check_invariants(center)


async def test_answers_race_the_deadline_and_rounds(center: Center) -> None:
    """Accept, reject and the timeout race rounds: each offer ends exactly one way, and
    every contact and agent is in one consistent state afterwards."""
    await center.set_offers(0.002, 0, 0)
    for i in range(4):
        await center.create_agent(f"a{i}", "A", "B", ["en"], available=True)
    ids = [(await center.create_contact(["en"])).id for _ in range(8)]

    async def answer(i: int) -> None:
        for _ in range(20):
            try:
                if i % 2:
                    await center.accept_offer(f"a{i}")
                else:
                    await center.reject_offer(f"a{i}")
            except InvalidState:
                pass
            await asyncio.sleep(0)

    async def change_states() -> None:
        for turn in range(20):
            aid = f"a{turn % 4}"
            try:
                if turn % 3 == 0:
                    await center.start_break(aid, "lunch")
                else:
                    await center.set_available(aid)  # cancels a pending break, or 409
            except InvalidState:
                pass
            await asyncio.sleep(0)

    await asyncio.gather(*(answer(i) for i in range(4)), change_states(),
                         *(center.dispatch(most=2) for _ in range(20)))
    await check_invariants(center)
    states = [c.state for c in await center.get_contacts(ids) if c]
    assert len(states) == 8 and set(states) <= {"queued", "offered", "assigned"}
    for agent in await center.list_agents():  # a break asked while offered waits for it
        assert agent.reason is None or agent.state == "unavailable", agent


async def test_a_dispatcher_times_offers_out_without_any_client(
        center: Center, redis_url: str, subprocess_env: dict[str, str]) -> None:
    """A dispatcher process, blocked on its wake-ups, wakes for the deadlines itself:
    two offers nobody answers put the agent on a break."""
    await center.set_offers(0.05, 2, 0)
    await center.create_agent("a", "A", "B", ["en"], available=True)
    cid = (await center.create_contact(["en"])).id
    proc = subprocess.Popen(dispatcher_cmd(center.name, redis_url, idle_ms=5000),
                            env=subprocess_env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        async def on_break() -> bool:
            return (await center.get_agent("a")).reason == "missed_offers"
        await wait_for(on_break, 10, "agent a on a break after two timed-out offers")
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert (await center.get_contact(cid)).state == "queued"
    await check_invariants(center)
