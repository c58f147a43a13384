"""The explanation of every assignment (issue 14): why this contact then, why this agent.

Off by default (it costs Redis time and memory); once a center turns it on, recorded by
the dispatch round as it decides (acd/lua/09_dispatch.lua, "Explanations"), read back
by acd.explanation: the winner is the first by the rule among the recorded candidates,
the candidates are the first qualified agents by that rule at decision time with the
scores they had then, and the order rule says whether priority put the contact first.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid

import pytest
from acd_invariants import check_invariants

from acd import Center, InvalidInput, NotFound, connect
from acd.commands import json_get
from acd.explanation import FEWEST_SPAN, Decider, Explanation, OrderRule


async def later(center: Center) -> None:
    """Wait until the server's clock has moved past now (a condition, not a sleep)."""
    now = await center.server_ms()
    deadline = time.monotonic() + 2
    while await center.server_ms() <= now:
        assert time.monotonic() < deadline, "the server's clock does not move"
        await asyncio.sleep(0.0002)


async def staff(center: Center, agents: dict[str, list[str]]) -> None:
    """Agents made available one after the other, in this order (distinct ms)."""
    for agent_id, skills in agents.items():
        await center.create_agent(agent_id, "A", agent_id, skills, available=True)
        await later(center)


async def test_longest_available_wins_with_the_scores_of_then(center: Center) -> None:
    await staff(center, {"old": ["en", "billing"], "mid": ["en", "billing", "es"],
                         "new": ["en", "billing"], "other": ["es"]})
    since = {a.id: a.available_since for a in await center.list_agents()}
    contact = await center.create_contact(["billing", "en"])
    [done] = await center.dispatch()
    assert done.agent == "old"
    e = await center.explanation(contact.id)
    assert (e.contact, e.agent, e.rule, e.decided_by) == (
        contact.id, "old", "longest_available", Decider.LONGEST_AVAILABLE)
    assert [c.agent for c in e.candidates] == ["old", "mid", "new"]  # "other" lacks skills
    assert [c.rank for c in e.candidates] == [1, 2, 3] and e.qualified == 3
    assert all(c.available_since == since[c.agent] == c.score for c in e.candidates)
    assert e.walked[0] in ("billing", "en") and e.walked[1] == 3
    assert e.order is OrderRule.ARRIVAL and e.served_before == []
    assert "oldest contact" in e.summary and "old was available" in e.summary
    # Later changes leave the record as it was decided.
    await center.complete_contact(contact.id)
    await center.set_unavailable("mid")
    again = await center.explanation(contact.id)
    assert again.candidates == e.candidates and again.agent == "old"
    await check_invariants(center)


async def test_fewest_skills_says_which_key_decided(center: Center) -> None:
    await staff(center, {"gen": ["billing", "en", "es", "tech"], "duo": ["billing", "en"],
                         "spec": ["billing"], "spec2": ["billing"]})
    await center.set_agent_choice("fewest_skills")
    first = await center.create_contact(["billing"])
    second = await center.create_contact(["billing"])
    assert [a.agent for a in await center.dispatch(most=1)] == ["spec"]
    e = await center.explanation(first.id)
    assert e.rule == "fewest_skills" and e.decided_by is Decider.LONGEST_AVAILABLE
    assert [(c.agent, c.skills) for c in e.candidates] == [
        ("spec", 1), ("spec2", 1), ("duo", 2), ("gen", 4)]
    assert all(c.score == c.skills * FEWEST_SPAN + c.available_since
               for c in e.candidates if c.skills is not None)
    assert "spec was available" in e.summary
    assert [a.agent for a in await center.dispatch(most=1)] == ["spec2"]
    e2 = await center.explanation(second.id)
    assert e2.decided_by is Decider.FEWEST_SKILLS and e2.candidates[1].agent == "duo"
    assert "spec2 has 1 skill, duo 2 skills" in e2.summary
    await check_invariants(center)


async def test_a_tie_on_every_score_is_decided_by_id(center: Center) -> None:
    for agent_id in ("b2", "a1", "c3"):
        await center.create_agent(agent_id, "A", agent_id, ["en"])
    await center.open()  # one batch: every agent available since the same ms
    contact = await center.create_contact(["en"])
    await center.dispatch()
    e = await center.explanation(contact.id)
    assert e.agent == "a1" and e.decided_by is Decider.AGENT_ID
    assert len({c.score for c in e.candidates}) == 1
    assert "tie on every score" in e.summary


async def test_priority_says_whom_the_contact_overtook(center: Center) -> None:
    await center.set_seconds_per_point(60)
    await center.set_dispatch_mode("manual")
    old_same = await center.create_contact(["en"], contact_id="old-same")
    old_other = await center.create_contact(["es"], contact_id="old-other")
    await later(center)
    urgent = await center.create_contact(["en"], contact_id="urgent", priority=5)
    plain = await center.create_contact(["en", "es"], contact_id="plain")
    await center.create_agent("a", "A", "B", ["en", "es"], available=True)
    assert [a.contact for a in await center.dispatch(most=1)] == ["urgent"]
    e = await center.explanation(urgent.id)
    assert e.order is OrderRule.PRIORITY and e.priority == 5 and e.head_start_ms == 300_000
    assert abs(e.virtual_arrival - (e.queued_at - 300_000)) < 1
    overtaken = {(h.combination, h.contact) for h in e.served_before if h.overtaken}
    assert overtaken == {("en", old_same.id), ("es", None)}
    assert not [h for h in e.served_before if h.combination == "en,es" and h.overtaken]
    assert all(h.virtual_arrival >= e.virtual_arrival for h in e.served_before)
    assert "priority 5" in e.summary and "2 contacts that arrived earlier" in e.summary
    await center.complete_contact(urgent.id)
    [nxt] = await center.dispatch(most=1)
    assert nxt.contact == old_same.id  # then first come, first served
    e2 = await center.explanation(old_same.id)
    assert e2.order is OrderRule.ARRIVAL and not any(h.overtaken for h in e2.served_before)
    assert {h.combination for h in e2.served_before} >= {"es", "en,es"}
    assert old_other.id and plain.id


async def test_an_offer_is_explained_until_it_is_missed(center: Center) -> None:
    """An offer is the round's decision: explained while it waits for its answer; a miss
    puts the contact back in the queue without it, so the next offer (even to the same
    agent, made while explanations are off) is never read with the old one."""
    await staff(center, {"a": ["en"], "b": ["en"]})
    await center.set_offers(600)
    contact = await center.create_contact(["en"])
    [offer] = await center.dispatch()
    e = await center.explanation(contact.id)
    assert (offer.agent, e.agent, e.assigned_at) == ("a", "a", None)
    assert [c.agent for c in e.candidates] == ["a", "b"]
    await center.reject_offer("a")
    await check_invariants(center)  # a queued contact carries no explanation
    await center.set_explanations(False)
    await center.set_unavailable("b")
    [again] = await center.dispatch()
    assert again.agent == "a"  # no back-off: the same agent
    with pytest.raises(NotFound, match="records none"):
        await center.explanation(contact.id)
    await center.accept_offer("a")
    with pytest.raises(NotFound, match="records none"):
        await center.explanation(contact.id)


async def test_no_explanation_without_an_assignment(center: Center) -> None:
    contact = await center.create_contact(["nobody-has-it"])
    await center.dispatch()
    with pytest.raises(NotFound, match=f"explanation of contact {contact.id}: it is queued"):
        await center.explanation(contact.id)
    await center.abandon_contact(contact.id)
    with pytest.raises(NotFound, match="it is abandoned"):
        await center.explanation(contact.id)
    with pytest.raises(NotFound, match="contact nope"):
        await center.explanation("nope")
    with pytest.raises(InvalidInput, match="contact id"):
        await center.explanation("no way")


@pytest.fixture(autouse=True)
async def explaining(center: Center) -> None:
    assert await center.set_explanations(True) is False  # off until asked for


async def test_off_by_default_nothing_is_recorded(redis_url: str) -> None:
    redis = connect(redis_url)
    center = Center(redis, f"t-{uuid.uuid4().hex[:10]}")
    try:
        assert await center.explanations() is False
        await center.create_agent("a", "A", "B", ["en"], available=True)
        contact = await center.create_contact(["en"])
        await center.dispatch()
        doc = await json_get(redis, center.keys.contact(contact.id))
        assert isinstance(doc, dict) and doc["agent"] == "a" and "explanation" not in doc
        with pytest.raises(NotFound, match="records none: turn explanations on"):
            await center.explanation(contact.id)
        assert await center.set_explanations(True) is False
        assert await center.set_explanations(True) is True
        assert await center.set_explanations(False) is True and not await center.explanations()
        options = [e.fields["explain"] for e in await center.latest_events(20)
                   if e.type == "explain_option"]
        assert options == ["1", "0"]
        with pytest.raises(InvalidInput, match="record: 'yes' is not a boolean"):
            await center.set_explanations("yes")  # type: ignore[arg-type]
    finally:
        await center.wipe()
        await redis.aclose()


def check_against_snapshot(e: Explanation, skills: list[str], rule: str,
                           agents: dict[str, tuple[list[str], int]], taken: set[str]) -> None:
    """The recorded candidates are the first qualified agents by the rule, with the
    scores they had at decision time (``agents``: skills and available_since before the
    round; ``taken``: claimed earlier in the same round)."""
    def score(agent: str) -> float:
        count, since = len(agents[agent][0]), agents[agent][1]
        return since if rule == "longest_available" else count * FEWEST_SPAN + since

    qualified = sorted((a for a, (has, _) in agents.items()
                        if set(skills) <= set(has) and a not in taken),
                       key=lambda a: (score(a), a))
    listed = [c.agent for c in e.candidates]
    assert listed == qualified[:len(listed)], (listed, qualified)
    assert e.agent == listed[0] and e.qualified <= len(qualified)
    assert all(c.score == score(c.agent) for c in e.candidates)


@pytest.mark.parametrize("rule", ["longest_available", "fewest_skills"])
async def test_every_assignment_is_first_by_its_rule(center: Center, rule: str) -> None:
    rng = random.Random(14)
    pool = ["a", "b", "c", "d", "e"]
    await center.set_agent_choice(rule)
    for i in range(30):
        await center.create_agent(f"g{i:02d}", "A", "B", rng.sample(pool, rng.randint(1, 4)),
                                  available=rng.random() < 0.8)
    await center.set_dispatch_mode("manual")
    for _ in range(2):  # two rounds, agents freed in between
        for _ in range(12):
            await center.create_contact(rng.sample(pool, rng.randint(1, 2)))
        agents = {a.id: (a.skills, a.available_since or 0) for a in await center.list_agents()
                  if a.state == "available"}
        taken: set[str] = set()
        for done in await center.dispatch(most=50):
            e = await center.explanation(done.contact)
            check_against_snapshot(e, e.skills, rule, agents, taken)
            taken.add(done.agent)
        for done_id in taken:
            agent = await center.get_agent(done_id)
            assert agent.contact is not None
            await center.complete_contact(agent.contact)
    await check_invariants(center)


async def test_explanations_hold_while_states_race_with_dispatch(center: Center) -> None:
    """Agents toggle while two dispatch loops assign: every record names its agent first,
    and only agents that had every skill."""
    skills = {f"g{i}": ["en"] if i % 2 else ["en", "es"] for i in range(12)}
    for agent_id, has in skills.items():
        await center.create_agent(agent_id, "A", "B", has, available=True)
    await center.set_dispatch_mode("manual")
    ids = [(await center.create_contact(["en"] if i % 3 else ["en", "es"])).id
           for i in range(60)]
    stop = time.monotonic() + 0.6

    async def toggle() -> None:
        rng = random.Random(7)
        while time.monotonic() < stop:
            agent = await center.get_agent(rng.choice(list(skills)))
            if agent.state == "busy":
                await center.complete_contact(str(agent.contact))
            elif agent.state == "available":
                await center.set_unavailable(agent.id)
            else:
                await center.set_available(agent.id)

    async def dispatch() -> None:
        while time.monotonic() < stop:
            await center.dispatch(most=5)
            await asyncio.sleep(0)

    await asyncio.gather(toggle(), dispatch(), dispatch())
    explained = 0
    for cid in ids:
        contact = await center.get_contact(cid)
        if contact.agent is None:
            continue
        e = await center.explanation(cid)
        assert e.candidates[0].agent == contact.agent
        assert all(set(contact.skills) <= set(skills[c.agent]) for c in e.candidates)
        explained += 1
    assert explained >= 10
    await check_invariants(center)
