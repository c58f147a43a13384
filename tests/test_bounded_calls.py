"""Bulk operations (acd.bulk) are many short Redis calls: N agents with batch b take
ceil(N/b) calls, each touching at most b of them (read from the server's own SLOWLOG), and
the center keeps its promises (acd.invariants) after every call, not just at the end."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from redis.asyncio import Redis

from acd import Center, InvalidState, NotFound, bulk
from acd.functions import Functions
from acd.invariants import violations


@pytest.fixture
async def slowlog(center: Center) -> AsyncIterator[Redis]:
    """Every command of the test server logged (restored afterwards)."""
    r = center.redis
    before = await r.config_get("slowlog-*")
    await r.config_set("slowlog-log-slower-than", 0)
    await r.config_set("slowlog-max-len", 100_000)
    await r.slowlog_reset()
    yield r
    for name, value in before.items():
        await r.config_set(name, value)


async def fcalls(r: Redis, function: str, center: Center) -> list[list[str]]:
    """The arguments of every FCALL of ``function`` on ``center``, oldest first."""
    log = await r.execute_command("SLOWLOG", "GET", "100000")
    calls = []
    for entry in reversed(log):
        argv = [a.decode() if isinstance(a, bytes) else str(a) for a in entry[3]]
        if argv[:2] == ["FCALL", function] and center.keys.tag in argv[3]:
            calls.append(argv)
    return calls


async def add_agents(center: Center, n: int, skills: Sequence[str] = ("en", "fr"),
                     available: bool = False) -> None:
    for i in range(n):
        await center.create_agent(f"a{i:02d}", "F", "L", list(skills), available=available)


class Checked(Functions):
    """The library's functions, with the center's promises checked after every call."""

    def __init__(self, center: Center) -> None:
        super().__init__(center.redis, center.keys)
        self.center = center
        self.calls = 0

    async def _check(self) -> None:
        self.calls += 1
        found = await violations(self.center)
        assert not found, (self.calls, found)

    async def center_state(self, *args: Any) -> tuple[int, str]:
        result = await super().center_state(*args)
        await self._check()
        return result

    async def skill_delete(self, *args: Any) -> tuple[int, int, bool]:
        result = await super().skill_delete(*args)
        await self._check()
        return result

    async def center_delete_purge(self, *args: Any) -> tuple[int, int, bool]:
        result = await super().center_delete_purge(*args)
        if not result[2]:  # the last call deletes what the check reads
            await self._check()
        return result


@pytest.mark.parametrize(("agents", "batch"), [(23, 5), (25, 5), (3, 10), (0, 4)])
async def test_open_and_close_take_ceil_n_over_b_calls_of_at_most_b_agents(
        center: Center, slowlog: Redis, agents: int, batch: int) -> None:
    await add_agents(center, agents)
    fn = Checked(center)
    assert await bulk.set_open(fn, center.redis, True, batch) == agents
    assert await bulk.set_open(fn, center.redis, False, batch) == agents
    calls = await fcalls(slowlog, "acd_center_state", center)
    per_run = max(1, math.ceil(agents / batch))
    assert len(calls) == 2 * per_run
    touched = [argv[7:] for argv in calls]  # FCALL name 2 meta agents open run ids...
    assert all(len(ids) <= batch for ids in touched)
    expected = [f"a{i:02d}" for i in range(agents)]
    assert sorted(i for ids in touched[:per_run] for i in ids) == expected, "each agent once"
    assert {a.state for a in await center.list_agents()} <= {"unavailable"}


async def test_a_later_open_or_close_supersedes_a_run_under_way(center: Center) -> None:
    await add_agents(center, 6)
    fn = Functions(center.redis, center.keys)
    changed, opening = await fn.center_state(True, "", ["a00", "a01"])
    assert changed == 2
    # A close starts and finishes while the open is between batches...
    assert await bulk.set_open(fn, center.redis, False, 4) == 2
    # ...so the open stops at its next batch: the center is not left half open.
    assert (await fn.center_state(True, opening, ["a02", "a03"]))[0] == -1
    assert {a.state for a in await center.list_agents()} == {"unavailable"}
    assert not await violations(center)


async def test_dispatch_between_open_batches_keeps_one_contact_per_agent(
        center: Center) -> None:
    await add_agents(center, 6, ["en"])
    waiting = [(await center.create_contact(["en"])).id for _ in range(4)]
    fn = Functions(center.redis, center.keys)
    run, assigned = "", []
    for ids in (["a00", "a01"], ["a02", "a03"], ["a04", "a05"]):
        _, run = await fn.center_state(True, run, ids)
        assigned += await center.dispatch(most=1)
        assert not await violations(center)
    assert len({a.agent for a in assigned}) == len(assigned) == 3
    assert [a.contact for a in assigned] == waiting[:3], "oldest first"
    # Closing while agents are on contacts keeps them there: unavailable after.
    await bulk.set_open(fn, center.redis, False, 2)
    busy = [a for a in await center.list_agents() if a.state == "busy"]
    assert len(busy) == 3 and {a.next_state for a in busy} == {"unavailable"}
    assert not await violations(center)


async def test_skill_delete_takes_ceil_n_over_b_calls(center: Center, slowlog: Redis) -> None:
    await add_agents(center, 11, ["en", "fr"], available=True)
    await center.create_contact(["fr"])  # needs the other skill: untouched
    fn = Checked(center)
    assert await bulk.delete_skill(fn, "en", False, 60, 4) == (11, 0)
    assert len(await fcalls(slowlog, "acd_skill_delete", center)) == math.ceil(11 / 4)
    assert await center.list_skills() == ["fr"]
    assert all(a.skills == ["fr"] for a in await center.list_agents())


async def test_forced_skill_delete_abandons_waiting_contacts_in_batches_too(
        center: Center, slowlog: Redis) -> None:
    await add_agents(center, 5, ["en", "fr"])
    waiting = [(await center.create_contact(["en", "fr"])).id for _ in range(7)]
    fn = Checked(center)
    assert await bulk.delete_skill(fn, "en", True, 60, 3) == (5, 7)
    assert len(await fcalls(slowlog, "acd_skill_delete", center)) == math.ceil((7 + 5) / 3)
    assert {(await center.get_contact(c)).state for c in waiting} == {"abandoned"}
    assert (await center.counters())["abandoned"] == 7


async def test_a_skill_being_deleted_takes_no_new_contact_and_no_new_agent(
        center: Center) -> None:
    await add_agents(center, 3, ["en", "fr"])
    fn = Functions(center.redis, center.keys)
    assert await fn.skill_delete("en", False, 60, 1) == (1, 0, False)  # one batch, then...
    # ...a contact needing it would wait for nobody, unchecked by the first call: refused,
    # as is an agent gaining it (the deletion would never end).
    with pytest.raises(InvalidState, match="skill en is being deleted"):
        await center.create_contact(["en"])
    with pytest.raises(InvalidState, match="skill en is being deleted"):
        await center.create_agent("new", "F", "L", ["en"])
    lost = [a.id for a in await center.list_agents() if "en" not in a.skills]
    with pytest.raises(InvalidState, match="skill en is being deleted"):
        await center.add_skill(lost[0], "en")
    await center.create_contact(["fr"])  # other skills are not concerned
    assert not await violations(center)
    # DELETE again (an interrupted deletion) finishes it; then the skill is free again.
    assert (await center.delete_skill("en")).agents == 2
    assert (await center.create_contact(["en"])).state == "queued"


async def test_center_delete_abandons_deletes_and_takes_bounded_calls(
        center: Center, slowlog: Redis) -> None:
    await add_agents(center, 9, ["en", "fr"], available=True)
    await center.close()
    waiting = [(await center.create_contact(["en"])).id for _ in range(5)]
    await center.register()
    fn = Checked(center)
    done = await bulk.delete_center(fn, center.redis, 60, 4)
    assert (done.agents, done.abandoned) == (9, 5)
    calls = await fcalls(slowlog, "acd_center_delete", center)
    purges = [c for c in calls if c[6] == "purge"]
    assert len(purges) == math.ceil(5 / 4) + math.ceil(9 / 4)
    assert {(await center.get_contact(c)).state for c in waiting} == {"abandoned"}
    left = [k async for k in center.redis.scan_iter(match=center.keys.pattern())]
    assert sorted(left) == sorted(center.keys.contact(c) for c in waiting), \
        "only the abandoned contacts, until they expire"
    assert not await center.redis.sismember("acd:centers", center.name)


async def test_center_delete_is_refused_while_contacts_are_assigned(center: Center) -> None:
    await add_agents(center, 2, ["en"], available=True)
    contact = await center.create_contact(["en"])
    await center.dispatch()
    with pytest.raises(InvalidState, match=f"1 assigned contacts \\({contact.id}\\)"):
        await center.delete()
    # Refused means untouched: the center works as before.
    assert (await center.create_contact(["en"])).state == "queued"
    assert len(await center.dispatch()) == 1
    assert not await violations(center)
    for agent in await center.list_agents():
        await center.complete_contact(str(agent.contact))
    done = await center.delete()
    assert (done.agents, done.abandoned) == (2, 0)
    with pytest.raises(NotFound):
        await center.delete()


async def test_a_center_being_deleted_refuses_writes_and_assigns_nothing(
        center: Center) -> None:
    await add_agents(center, 3, ["en"], available=True)
    await center.set_dispatch_mode("automatic")
    first = await center.create_contact(["en"])
    fn = Functions(center.redis, center.keys)
    assert await fn.center_delete_mark("begin") == ""
    assert await center.dispatch() == [], "no contact becomes assigned while it is checked"
    for write in (lambda: center.create_contact(["en"]), center.open,
                  lambda: center.create_agent("x", "F", "L", ["en"]),
                  lambda: center.set_unavailable("a00"),
                  lambda: center.delete_skill("en")):
        with pytest.raises(InvalidState, match="is being deleted"):
            await write()
    await center.abandon_contact(first.id)  # a contact may still end
    # Interrupted after one batch: DELETE again finishes it.
    assert await fn.center_delete_purge(2, 60) == (0, 2, False)
    assert await fn.center_delete_mark("begin") == "purging"
    done = await center.delete()
    assert (done.agents, done.abandoned) == (1, 0)


async def test_a_deleted_center_can_be_created_again(center: Center) -> None:
    await add_agents(center, 2, ["en"], available=True)
    await center.create_contact(["de"])
    await center.delete()
    agent = await center.create_agent("a00", "F", "L", ["fr"], available=True)
    assert agent.state == "available" and agent.skills == ["fr"]
    assert await center.list_skills() == ["fr"]
    assert (await center.stats()).waiting == 0
    contact = await center.create_contact(["fr"])
    assert [a.contact for a in await center.dispatch()] == [contact.id]
    assert await center.redis.sismember("acd:centers", center.name)
    assert not await violations(center)


@pytest.mark.parametrize("agent_skills", [8, 12])
async def test_an_agent_waking_many_parked_combinations_takes_bounded_calls_and_same_order(
        center: Center, agent_skills: int) -> None:
    """286 combinations (every 2 and 3 of 12 skills) wait parked, nobody available. An agent
    with 8 of the skills (the wake-up asks for each subset) or all 12 (it reads what is
    filed under its skills) becomes available: its wake-up is left pending after that call
    and dispatch rounds finish it before assigning anything; the agent then gets exactly
    the contact it would have got had it all happened at once, the oldest it can serve."""
    skills = [f"s{i:02d}" for i in range(12)]
    combos = [list(c) for n in (2, 3) for c in itertools.combinations(skills, n)]
    random.Random(7).shuffle(combos)
    await center.set_dispatch_mode("manual")
    waiting = [(await center.create_contact(c), set(c)) for c in combos]
    has = set(skills[:agent_skills])
    await center.create_agent("wide", "W", "A", sorted(has))
    await center.set_agent_state("wide", "available")
    assert await center.redis.llen(center.keys.unpark) == 1, "left pending, not done at once"
    assert not await violations(center)
    first = next(contact.id for contact, needs in waiting if needs <= has)
    rounds: list[list[tuple[str, str]]] = []
    while not rounds or not rounds[-1]:
        rounds.append((await center.dispatch_round(most=50)).pairs)
        assert not await violations(center)
        assert len(rounds) < 50
    assert rounds[-1] == [(first, "wide")]
    assert not await center.redis.llen(center.keys.unpark)


async def test_a_round_of_wide_agents_stops_at_its_work_budget_and_asks_for_more(
        center: Center) -> None:
    """An assignment costs more for an agent with more skills (it leaves each skill's
    set): with agents of 32 skills a round stops at its work budget (DISPATCH_WORK in
    acd/lua/02_queue_index.lua, 400 units of 8 + 32 each: 10 assignments) before its batch
    of 50, and adds a
    'more' wake so that a dispatcher's next round starts at once; in all, the same
    contacts in the same order as rounds without the budget."""
    skills = [f"w{i:02d}" for i in range(32)]
    await center.set_dispatch_mode("manual")
    for i in range(60):
        await center.create_agent(f"a{i:02d}", "W", "A", skills, available=True)
    waiting = [(await center.create_contact([skills[i % 32]])).id for i in range(50)]
    served: list[str] = []
    sizes = []
    r: Any = center.redis
    while len(served) < 50:
        before = (await r.xrevrange(center.keys.wake, count=1))[0][0]
        pairs = (await center.dispatch_round(most=50)).pairs
        sizes.append(len(pairs))
        served += [c for c, _ in pairs]
        assert not await violations(center)
        if len(served) < 50:
            after = await r.xrange(center.keys.wake, min=f"({before}")
            assert [f["why"] for _, f in after][-1:] == ["more"], after
        assert len(sizes) < 10
    assert sizes == [10, 10, 10, 10, 10]
    assert served == waiting, "oldest first, across rounds"
