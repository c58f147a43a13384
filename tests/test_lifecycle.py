"""The lifecycle table (acd.lifecycle) against what the acd library really does: each transition is
made to happen on a real Redis from its source state, and must end in its target state
having emitted its event; every event the acd library can emit is in the table or named as a
side event; README's diagram is the table's."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from acd import Center, NotFound
from acd.functions import LIBRARY, Functions
from acd.lifecycle import NEW, OTHER_EVENTS, TRANSITIONS, Transition, mermaid
from acd.reconcile import reconcile

REPO = Path(__file__).resolve().parents[1]
Setup = Callable[[Center], Awaitable[None]]  # brings the entity to the source state
Action = Callable[[Center], Awaitable[object]]  # makes the transition


async def nothing(c: Center) -> None:
    pass


def agent_in(state: str) -> Setup:
    """Agent 'a' (skill en) in ``state``; busy means on contact 'c1'."""
    async def setup(c: Center) -> None:
        await c.create_agent("a", "A", "B", ["en"],
                             available=state not in ("unavailable", "logged_out"))
        if state.startswith("busy"):
            await c.create_contact(["en"], contact_id="c1")
            await c.dispatch()
        if state == "busy, next unavailable":
            await c.set_unavailable("a")
        if state == "busy, next logged_out":
            await c.log_out("a")
        if state == "logged_out":
            await c.log_out("a")
    return setup


def offered(timeout_s: float = 60, max_misses: int = 0) -> Setup:
    """Agent 'a' offered contact 'c1'; a tiny timeout is due by the time the action runs."""
    async def setup(c: Center) -> None:
        await c.set_offers(timeout_s, max_misses)
        await contact_in("queued", agent=True)(c)
        await c.dispatch()
        if timeout_s < 1:
            ends = (await c.get_agent("a")).offer_until or 0
            deadline = time.monotonic() + 5
            while await c.server_ms() <= ends:
                assert time.monotonic() < deadline, "the server's clock does not move"
                await asyncio.sleep(0.001)
    return setup


async def offers_on(c: Center) -> None:
    await c.set_offers(60)
    await contact_in("queued", agent=True)(c)


async def wrap_up_then_log_out(c: Center) -> None:
    await in_wrap_up(60)(c)
    await c.log_out("a")


def in_wrap_up(seconds: float, next_unavailable: bool = False) -> Setup:
    """Agent 'a' in wrap-up after contact 'c1', in a center whose wrap-up lasts
    ``seconds`` (a tiny one is due by the time the action runs)."""
    async def setup(c: Center) -> None:
        await agent_in("busy, next unavailable" if next_unavailable else "busy")(c)
        await c.set_wrap_up(seconds)
        await c.complete_contact("c1")
        if seconds < 1:
            await until_due(c)
    return setup


async def busy_with_wrap_up(c: Center) -> None:
    await agent_in("busy")(c)
    await c.set_wrap_up(60)


async def until_due(c: Center) -> None:
    """Until agent a's wrap-up end is past by the server's clock (a deadline, not a sleep
    and hope)."""
    ends = (await c.get_agent("a")).wrap_up_until or 0
    deadline = time.monotonic() + 5
    while await c.server_ms() <= ends:
        assert time.monotonic() < deadline, "the server's clock does not move"
        await asyncio.sleep(0.001)


def contact_in(state: str, agent: bool = False) -> Setup:
    async def setup(c: Center) -> None:
        await c.create_contact(["en"], contact_id="c1")
        if agent or state == "assigned":
            await c.create_agent("a", "A", "B", ["en"], available=True)
        if state == "assigned":
            await c.dispatch()
    return setup


def closing(cid: str) -> Setup:
    """Contact ``cid`` waiting with a close step (acd.steps) that is due by now."""
    async def setup(c: Center) -> None:
        contact = await c.create_contact(["en"], cid, steps=[{"after_s": 0.001,
                                                               "close": "max_wait"}])
        deadline = time.monotonic() + 5
        while await c.server_ms() <= contact.queued_at + 1:
            assert time.monotonic() < deadline, "the server's clock does not move"
            await asyncio.sleep(0.001)
    return setup


async def dispatch(c: Center) -> None:
    await c.dispatch()


async def dispatch_one_round(c: Center) -> None:
    """One round with nothing left to offer: it expires what is due, offers nothing new
    (the agent, just back, is not offered the same contact again: a long back-off)."""
    await c.set_offers(60, 0, 60)
    await c.dispatch_round()


async def abandon_by_center_delete(c: Center) -> None:
    """The first batch of a center's deletion (acd.bulk.delete_center): the last one
    deletes the events stream this test reads."""
    fn = Functions(c.redis, c.keys)
    await fn.center_delete_mark("begin")
    await fn.center_delete_purge(batch=1, keep_seconds=60)


def reconcile_after_deleting(kind: str, entity: str) -> Action:
    """Delete a document around the functions, then run the reconciler (acd.reconcile)."""
    async def action(c: Center) -> None:
        await c.redis.delete(c.keys.agent(entity) if kind == "agent" else c.keys.contact(entity))
        await reconcile(c)
    return action


STEPS: dict[tuple[str, str, str, str], tuple[Setup, Action]] = {
    ("agent", NEW, "unavailable", "acd_agent_create"): (
        nothing, lambda c: c.create_agent("a", "A", "B", ["en"])),
    ("agent", "unavailable", "available", "acd_agent_state"): (
        agent_in("unavailable"), lambda c: c.set_available("a")),
    ("agent", "available", "unavailable", "acd_agent_state"): (
        agent_in("available"), lambda c: c.set_unavailable("a")),
    ("agent", "available", "busy", "acd_dispatch"): (
        contact_in("queued", agent=True), dispatch),
    ("agent", "busy", "busy", "acd_agent_state"): (
        agent_in("busy"), lambda c: c.set_unavailable("a")),
    ("agent", "busy", "available", "acd_contact_end"): (
        agent_in("busy"), lambda c: c.complete_contact("c1")),
    ("agent", "busy", "unavailable", "acd_contact_end"): (
        agent_in("busy, next unavailable"), lambda c: c.complete_contact("c1")),
    ("agent", "unavailable", NEW, "acd_agent_delete"): (
        agent_in("unavailable"), lambda c: c.delete_agent("a")),
    ("agent", "available", NEW, "acd_agent_delete"): (
        agent_in("available"), lambda c: c.delete_agent("a")),
    ("agent", "busy", "wrap_up", "acd_contact_end"): (
        busy_with_wrap_up, lambda c: c.complete_contact("c1")),
    ("agent", "wrap_up", "wrap_up", "acd_agent_state"): (
        in_wrap_up(60), lambda c: c.set_unavailable("a")),
    ("agent", "wrap_up", "available", "acd_dispatch"): (in_wrap_up(0.001), dispatch),
    ("agent", "wrap_up", "unavailable", "acd_dispatch"): (
        in_wrap_up(0.001, next_unavailable=True), dispatch),
    ("agent", "wrap_up", "available", "acd_wrap_up_end"): (
        in_wrap_up(60), lambda c: c.end_wrap_up("a")),
    ("agent", "wrap_up", "unavailable", "acd_wrap_up_end"): (
        in_wrap_up(60, next_unavailable=True), lambda c: c.end_wrap_up("a")),
    ("agent", "wrap_up", "available", "acd_wrap_up_release"): (
        in_wrap_up(0.001), lambda c: reconcile(c)),
    ("agent", "wrap_up", NEW, "acd_agent_delete"): (
        in_wrap_up(60), lambda c: c.delete_agent("a")),
    ("agent", "unavailable", "unavailable", "acd_agent_state"): (
        agent_in("unavailable"), lambda c: c.start_break("a", "lunch")),
    ("agent", "available", "logged_out", "acd_agent_state"): (
        agent_in("available"), lambda c: c.log_out("a")),
    ("agent", "unavailable", "logged_out", "acd_agent_state"): (
        agent_in("unavailable"), lambda c: c.log_out("a")),
    ("agent", "logged_out", "available", "acd_agent_state"): (
        agent_in("logged_out"), lambda c: c.set_available("a")),
    ("agent", "logged_out", "unavailable", "acd_agent_state"): (
        agent_in("logged_out"), lambda c: c.start_break("a", "training")),
    ("agent", "busy", "logged_out", "acd_contact_end"): (
        agent_in("busy, next logged_out"), lambda c: c.complete_contact("c1")),
    ("agent", "wrap_up", "logged_out", "acd_wrap_up_end"): (
        wrap_up_then_log_out, lambda c: c.end_wrap_up("a")),
    ("agent", "logged_out", NEW, "acd_agent_delete"): (
        agent_in("logged_out"), lambda c: c.delete_agent("a")),
    ("agent", "available", "offered", "acd_dispatch"): (offers_on, dispatch),
    ("agent", "offered", "busy", "acd_offer_answer"): (offered(), lambda c: c.accept_offer("a")),
    ("agent", "offered", "available", "acd_offer_answer"): (
        offered(), lambda c: c.reject_offer("a")),
    ("agent", "offered", "unavailable", "acd_offer_answer"): (
        offered(max_misses=1), lambda c: c.reject_offer("a")),
    ("agent", "offered", "available", "acd_dispatch"): (offered(0.002), dispatch_one_round),
    ("agent", "offered", "available", "acd_offer_release"): (
        offered(0.002), lambda c: reconcile(c)),
    ("agent", "offered", "available", "acd_contact_end"): (
        offered(), lambda c: c.abandon_contact("c1")),
    ("agent", "offered", "offered", "acd_agent_state"): (offered(), lambda c: c.log_out("a")),
    ("agent", "offered", "available", "acd_repair_agent"): (
        offered(), reconcile_after_deleting("contact", "c1")),
    ("contact", "queued", "offered", "acd_dispatch"): (offers_on, dispatch),
    ("contact", "offered", "assigned", "acd_offer_answer"): (
        offered(), lambda c: c.accept_offer("a")),
    ("contact", "offered", "queued", "acd_offer_answer"): (
        offered(), lambda c: c.reject_offer("a")),
    ("contact", "offered", "queued", "acd_dispatch"): (offered(0.002), dispatch_one_round),
    ("contact", "offered", "abandoned", "acd_contact_end"): (
        offered(), lambda c: c.abandon_contact("c1")),
    ("contact", "offered", "queued", "acd_repair_contact"): (
        offered(), reconcile_after_deleting("agent", "a")),
    ("contact", NEW, "queued", "acd_contact_create"): (
        nothing, lambda c: c.create_contact(["en"], "c1")),
    ("contact", "queued", "assigned", "acd_dispatch"): (
        contact_in("queued", agent=True), dispatch),
    ("contact", "queued", "abandoned", "acd_contact_end"): (
        contact_in("queued"), lambda c: c.abandon_contact("c1")),
    ("contact", "queued", "abandoned", "acd_skill_delete"): (
        contact_in("queued"), lambda c: c.delete_skill("en", force=True)),
    ("contact", "queued", "abandoned", "acd_center_delete"): (
        contact_in("queued"), abandon_by_center_delete),
    ("contact", "queued", "closed", "acd_dispatch"): (closing("c1"), dispatch),
    ("contact", "queued", "closed", "acd_steps_release"): (
        closing("c1"), lambda c: reconcile(c)),
    ("contact", "assigned", "completed", "acd_contact_end"): (
        contact_in("assigned"), lambda c: c.complete_contact("c1")),
    ("agent", "busy", "available", "acd_repair_agent"): (
        agent_in("busy"), reconcile_after_deleting("contact", "c1")),
    ("contact", "assigned", "queued", "acd_repair_contact"): (
        contact_in("assigned"), reconcile_after_deleting("agent", "a")),
}


def test_every_transition_has_a_step() -> None:
    assert {(t.of, t.source, t.target, t.function) for t in TRANSITIONS} == set(STEPS)


@pytest.mark.parametrize("t", TRANSITIONS,
                         ids=lambda t: f"{t.of}:{t.source}->{t.target}:{t.function}")
async def test_transition_happens_as_written(center: Center, t: Transition) -> None:
    setup, action = STEPS[(t.of, t.source, t.target, t.function)]
    await setup(center)
    entity = "a" if t.of == "agent" else "c1"
    get = center.get_agent if t.of == "agent" else center.get_contact
    if t.source != NEW:
        assert (await get(entity)).state == t.source, "the setup missed the source state"
    rows = await center.redis.xrevrange(center.keys.events, count=1)
    after = f"({rows[0][0]}" if rows else "-"
    await action(center)
    events = [f["type"] for _, f in await center.redis.xrange(center.keys.events, min=after)]
    assert t.event in events, (t, events)
    if t.target == NEW:
        with pytest.raises(NotFound):
            await get(entity)
    else:
        assert (await get(entity)).state == t.target
    assert f"register('{t.function}'" in LIBRARY, t.function


def test_every_event_acd_lua_emits_is_named() -> None:
    emitted = set(re.findall(r"event\([^,]+, '(\w+)'\s*[,)]", LIBRARY))
    emitted |= {f"contact_{final}" for final in ("completed", "abandoned")}  # 'contact_' ..
    emitted |= {f"offer_{how}" for how in ("rejected", "timed_out")}  # 'offer_' .. how
    named = {t.event for t in TRANSITIONS} | OTHER_EVENTS
    assert emitted == named, (emitted - named, named - emitted)


def test_readme_shows_the_tables_diagram() -> None:
    readme = (REPO / "README.md").read_text()
    assert f"```mermaid\n{mermaid()}\n```" in readme, "run python -m acd.lifecycle"
