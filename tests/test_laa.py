"""LAA is ranked in one reference place, acd.laa; everything else that ranks agents is
checked against it on random availability sets, on a real Redis:

- ``Center.candidates`` (ZINTER ... AGGREGATE MIN),
- the real dispatch, ``acd_dispatch`` (the acd library's walk of the smallest set),
- the library's walk run from its own source, as notebook 07 times it,
- the textbook dispatcher, ``acd.naive.NaiveDispatcher``,
- notebook 04's ``naive_step``, run from the notebook's own cell.

Availability is made by the acd library's own functions (open, unavailable, available, a skill
added while available), so ties - agents made available in the same ms - happen too.
Hand-written scores that differ between an agent's sets are a second property: the acd library
never writes them, so the walk (which then depends on the set it walks) is left out, and
every ZINTER ranking must still rank by the smallest score, as the reference does.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acd import Center, connect
from acd.laa import Availability, longest_available, ranked
from acd.models import Candidate
from acd.naive import NaiveDispatcher
from lab.notebook import lua_chunk

REPO = Path(__file__).resolve().parents[1]
SKILLS = ["en", "fr", "de", "es"]
# Ids whose byte order differs from a naive guess: '-' < '.' < digits < upper < '_' < lower.
IDS = st.text(alphabet="aAbZ09-._", min_size=1, max_size=3).filter(lambda s: s[0].isalnum())
SKILL_SETS = st.lists(st.sampled_from(SKILLS), min_size=1, max_size=3, unique=True)
WALK = lua_chunk("longest_available") + (
    "\nreturn longest_available(ARGV[1], {unpack(ARGV, 2)}, {}) or false")
PROPERTY = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

Picker = Callable[[Center], Awaitable[str | None]]


def notebook_04_step() -> str:
    """The code cell of notebook 04 that defines ``naive_step`` (and its ``claim``)."""
    nb = json.loads((REPO / "notebooks" / "04_dispatcher.ipynb").read_text())
    [cell] = [c for c in nb["cells"] if "async def naive_step(" in "".join(c["source"])]
    return "".join(cell["source"])


async def read_availability(center: Center) -> dict[str, dict[str, float]]:
    return {skill: dict(await center.redis.zrange(center.keys.avail(skill), 0, -1,
                                                  withscores=True))
            for skill in SKILLS}


async def copy_center(source: Center) -> Center:
    """A new center holding exactly the keys of ``source`` (DUMP/RESTORE keeps every
    score, so ties stay ties), for a party that changes what it ranks."""
    copy = Center(source.redis, f"{source.name}-{uuid.uuid4().hex[:6]}")
    async for key in source.redis.scan_iter(match=source.keys.pattern(), count=1000):
        dumped = await source.redis.dump(key)
        if dumped is not None:
            target = copy.keys.tag + key[len(source.keys.tag):]
            await source.redis.restore(target, 0, dumped, replace=True)
    return copy


async def by_dispatch(center: Center) -> str | None:
    assignments = await center.dispatch()
    return assignments[0].agent if assignments else None


async def by_naive_dispatcher(center: Center) -> str | None:
    result = await NaiveDispatcher(center, pop_timeout=0.5, backoff=(0, 0)).step()
    assert result is not None, "the queued contact was not popped"
    return result.agent


async def by_notebook_04(center: Center) -> str | None:
    scope: dict[str, Any] = {"r": center.redis, "k": center.keys, "json": json}
    exec(notebook_04_step(), scope)
    chosen: str | None = await scope["naive_step"](pop_timeout=0.5)
    return chosen


async def chosen_by(party: Picker, center: Center, needs: list[str]) -> str | None:
    """What ``party`` gives a contact needing ``needs``, on a copy of ``center``."""
    copy = await copy_center(center)
    try:
        await copy.create_contact(needs)
        return await party(copy)
    finally:
        await copy.wipe()


def same(candidates: list[Candidate]) -> list[tuple[str, int]]:
    return [(c.agent, c.available_since) for c in candidates]


# -- the reference on its own ----------------------------------------------------------
def test_reference_ranks_oldest_first_and_ties_by_agent_id() -> None:
    sets: Availability = {"en": {"b": 5, "a": 5, "A": 5, "old": 1, "new": 9},
                          "fr": {"b": 5, "a": 5, "A": 5, "new": 9}}
    assert same(ranked(sets, ["en"])) == [("old", 1), ("A", 5), ("a", 5), ("b", 5), ("new", 9)]
    assert [c.agent for c in ranked(sets, ["fr", "en", "en"])] == ["A", "a", "b", "new"]
    assert longest_available(sets, ["en", "fr"]) == "A"
    assert longest_available(sets, ["de"]) is None and ranked(sets, ["en", "de"]) == []
    with pytest.raises(ValueError, match="at least one skill"):
        ranked(sets, [])


def test_reference_takes_the_earliest_score_when_scores_drift() -> None:
    # A skill added by hand with "now" as its score: the agent still became available at 1.
    sets: Availability = {"en": {"early": 1, "late": 2}, "fr": {"early": 9, "late": 2}}
    assert same(ranked(sets, ["en", "fr"])) == [("early", 1), ("late", 2)]


# -- every ranking against it, on availability made by the acd library -------------------------
@st.composite
def centers(draw: st.DrawFn) -> tuple[list[tuple[str, list[str], str, str | None]],
                                      list[str]]:
    """Agents (id, skills, how it becomes available, a skill added afterwards) and the
    skills a contact needs."""
    ids = draw(st.lists(IDS, min_size=1, max_size=10, unique=True))
    agents = [(aid, draw(SKILL_SETS), draw(st.sampled_from(["open", "later", "off"])),
               draw(st.none() | st.sampled_from(SKILLS))) for aid in ids]
    return agents, draw(SKILL_SETS)


@PROPERTY
@given(drawn=centers())
async def test_every_ranking_agrees_with_the_reference(
        redis_url: str, drawn: tuple[list[tuple[str, list[str], str, str | None]], list[str]]
) -> None:
    agents, needs = drawn
    redis = connect(redis_url)
    center = Center(redis, f"t-laa-{uuid.uuid4().hex[:8]}")
    try:
        await center.set_dispatch_mode("manual")
        for aid, skills, _, _ in agents:
            await center.create_agent(aid, "A", "Gent", skills)
        await center.open()  # every agent available in the same ms: all tie
        for aid, _, how, _ in agents:
            if how != "open":
                await center.set_unavailable(aid)
        for aid, skills, how, extra in agents:
            if how == "later":
                await center.set_available(aid)  # one by one: later, some in one ms
            if extra is not None and extra not in skills:
                await center.add_skill(aid, extra)  # keeps the agent's place

        availability = await read_availability(center)
        for aid, *_ in agents:  # what the rule relies on: one score in all its sets
            assert len({s[aid] for s in availability.values() if aid in s}) <= 1, aid
        expected = ranked(availability, needs)
        laa = expected[0].agent if expected else None

        assert same(await center.candidates(needs)) == same(expected)
        walked = await redis.eval(WALK, len(needs), *[center.keys.avail(s) for s in needs],
                                  center.keys.tag, *needs)
        assert walked == laa, "the library's walk, run as notebook 07 runs it"
        for party in (by_dispatch, by_naive_dispatcher, by_notebook_04):
            assert await chosen_by(party, center, needs) == laa, party.__name__
    finally:
        await center.wipe()
        await redis.aclose()


# -- hand-written scores that differ between an agent's sets -------------------------
@PROPERTY
@given(scores=st.dictionaries(IDS, st.dictionaries(st.sampled_from(SKILLS),
                                                   st.integers(0, 20), min_size=1),
                              min_size=1, max_size=8),
       needs=SKILL_SETS)
async def test_zinter_rankings_take_the_earliest_score(
        redis_url: str, scores: dict[str, dict[str, int]], needs: list[str]) -> None:
    redis = connect(redis_url)
    center = Center(redis, f"t-laa-{uuid.uuid4().hex[:8]}")
    try:
        await center.set_dispatch_mode("manual")
        for aid, by_skill in scores.items():
            await center.create_agent(aid, "A", "Gent", sorted(by_skill), available=True)
            for skill, score in by_skill.items():  # then the hand-written scores
                await redis.zadd(center.keys.avail(skill), {aid: score})
        expected = ranked(await read_availability(center), needs)
        laa = expected[0].agent if expected else None

        assert same(await center.candidates(needs)) == same(expected)
        for party in (by_naive_dispatcher, by_notebook_04):
            assert await chosen_by(party, center, needs) == laa, party.__name__
    finally:
        await center.wipe()
        await redis.aclose()
