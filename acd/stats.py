"""A center's figures: the queue, the counters and real-time statistics
(:class:`CenterStatistics`, part of :class:`acd.center.Center`), and why contacts wait:
the waiting contacts per skill combination, read from the index.

``await combinations(center, limit=50)`` lists the skill combinations contacts wait with,
the longest waiting first: how many wait, the oldest wait, whether the index holds the
combination *ready* (a dispatch round looks at it) or *parked* (nobody available could
serve it), and how many agents are *eligible* (have every one of its skills, whatever
their state) and how many of them are *available* now. Eligible 0 means nobody can ever
serve it as the center stands; eligible > 0 with available 0 means its agents are busy or
unavailable. For a combination with minimum levels (acd.levels) both count only agents at
those levels or above.

Everything comes from the index's own keys (acd/lua/02_queue_index.lua, "The waiting contacts'
index") and the per-skill sets, never from a SCAN or the contacts' documents, and every
key is in the center's hash tag. The cost is bounded: the first ``limit`` ready
combinations (``ready`` is ordered by its oldest contact), at most ``PARKED_EXAMINED``
parked ones (parked combinations are not ordered, so each one's oldest contact is read),
then two counts per combination shown: ``SINTERCARD`` over the skills' sets of all agents
(``skill:<skill>``) and ``ZINTERCARD`` over their availability sets (``avail:<skill>``),
each costing at most the smallest set's size times the number of skills. A combination
with minimum levels has no set of all its qualified agents (the per-level sets hold the
available ones only), so its eligible count walks the set of its rarest skill (SSCAN, in
chunks of ``LEVELS_CHUNK``), keeps the members having the other skills (SMISMEMBER) and
reads their levels (JSON.MGET ``$.levels``): at most ``ELIGIBLE_EXAMINED`` agents, then
the count is a lower bound (``eligible_capped``). Without minimums it stays one command.

Pipelined reads, not one read-only Function (FCALL_RO): figures for a wallboard may be a
few milliseconds apart, while one call over a thousand parked combinations would hold
Redis for every other client of every center meanwhile; here Redis serves others between
the commands. So the figures are not one instant's: a combination that empties between
two reads is left out, and ``state`` (the index's view) may briefly disagree with
``available`` (the truth now): an agent's wake-up of parked combinations is still under
way, or a dispatch round is about to find a ready combination's agents taken.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, cast

from pydantic import BaseModel, Field

from acd.center_part import CenterPart
from acd.commands import command, time_us
from acd.errors import InvalidInput
from acd.levels import DEFAULT_LEVEL, needs
from acd.models import Agent, AgentState, DispatchMode

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
PARKED_EXAMINED = 1000  # parked combinations read per call (each: one ZRANGE of its FIFO)
ELIGIBLE_EXAMINED = 5000  # agents read per combination with minimum levels, at most
LEVELS_CHUNK = 500  # agents per SSCAN / SMISMEMBER / JSON.MGET of that walk


class CenterStats(BaseModel):
    """Real-time figures of one center plus its cumulative counters."""

    center: str
    open: bool
    dispatch_mode: DispatchMode = DispatchMode.AUTOMATIC
    waiting: int
    oldest_wait_ms: int
    agents: dict[AgentState, int]
    breaks: dict[str, int] = Field(default_factory=dict,
                                   description="agents unavailable on a break, per reason")
    offered: int
    assigned: int
    completed: int
    abandoned: int
    mean_wait_ms: float | None
    # Steps by waiting time (acd.steps) and abandonment's wait: 0 / None when none.
    closed: int = 0
    relaxed: int = 0
    overflowed: int = 0
    mean_abandon_wait_ms: float | None = None


class CombinationState(StrEnum):
    """Where the waiting contacts' index (acd/lua/02_queue_index.lua) holds a skill combination."""

    READY = "ready"  # some available agent may serve it: the next dispatch round looks at it
    PARKED = "parked"  # nobody available could serve it when last looked at: rounds skip it


class CombinationStats(BaseModel):
    """The contacts waiting with one skill combination, and who could serve them."""

    skills: list[str] = Field(description="the skills an agent must all have (sorted)")
    min_levels: dict[str, int] = Field(default_factory=dict, description="the minimum "
                                       "levels above 1 these contacts ask for (acd.levels)")
    waiting: int = Field(description="contacts waiting with exactly these skills")
    oldest_wait_ms: int = Field(description="how long the oldest of them has waited")
    state: CombinationState = Field(description="ready: a dispatch round will look at it; "
                                    "parked: nobody available could serve it")
    eligible: int = Field(description="agents having every skill of the combination at "
                          "its minimum level or above, whatever their state")
    eligible_capped: bool = Field(False, description="true when the center has too many "
                                  "agents with these skills to read every one's levels: "
                                  "then eligible is a lower bound (only with min_levels)")
    available: int = Field(description="of those, how many are available now")


class WaitingCombinations(BaseModel):
    """Waiting contacts per skill combination, oldest wait first."""

    center: str
    waiting: int = Field(description="contacts in the queue")
    total: int = Field(description="skill combinations with waiting contacts")
    complete: bool = Field(description="false when there were more parked combinations "
                           "than one look reads: older ones may be missing from the list")
    combinations: list[CombinationStats] = Field(
        description="at most `limit` combinations, the longest waiting first")


@dataclass(frozen=True, slots=True)
class QueueView:
    """The queue and the center's switches, read at one instant of the server's clock."""

    now_ms: int
    open: bool
    dispatch_mode: DispatchMode
    length: int
    oldest: list[tuple[str, int]] = field(default_factory=list)  # (contact, queued_at)


class CenterStatistics(CenterPart):
    """A center's queue, counters and statistics, read (see the module)."""

    async def list_agents(self) -> list[Agent]:
        raise NotImplementedError  # acd.center.Center's

    async def queue(self, limit: int = 100) -> list[tuple[str, int]]:
        """The oldest ``limit`` waiting contacts with the ms they were queued."""
        rows = await command(self.redis, "ZRANGE", self.keys.queue, 0, limit - 1, "WITHSCORES")
        return _queued(rows)

    async def queue_view(self, limit: int = 10) -> QueueView:
        """The queue's length and oldest ``limit`` contacts, the dispatch mode and whether
        the center is open, with the server's clock, in one round trip."""
        view, _ = await self._queue_and_counters(limit)
        return view

    async def counters(self) -> dict[str, int]:
        """The cumulative counters: offered, assigned, completed, abandoned, wait_ms."""
        raw = await cast(Any, self.redis.hgetall(self.keys.stats))
        return {str(k): int(v) for k, v in raw.items()}

    async def _queue_and_counters(self, limit: int) -> tuple[QueueView, dict[str, str]]:
        # TIME on its own: a cluster pipeline refuses a command without a key.
        now = await self.redis.time()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(self.keys.queue)
            pipe.zrange(self.keys.queue, 0, limit - 1, withscores=True)
            pipe.hgetall(self.keys.stats)
            pipe.hmget(self.keys.meta, ["open", "dispatch"])
            length, oldest, counters, (is_open, mode) = await pipe.execute()
        view = QueueView(now_ms=time_us(now) // 1000, open=is_open == "1",
                         dispatch_mode=DispatchMode(mode or DispatchMode.AUTOMATIC),
                         length=int(length), oldest=_queued(oldest))
        return view, counters

    async def stats(self) -> CenterStats:
        view, counters = await self._queue_and_counters(1)
        by_state = {s: 0 for s in AgentState}
        breaks: dict[str, int] = {}
        for agent in await self.list_agents():
            by_state[agent.state] += 1
            if agent.reason is not None:
                breaks[agent.reason] = breaks.get(agent.reason, 0) + 1
        assigned = int(counters.get("assigned", 0))
        return CenterStats(
            center=self.name,
            open=view.open,
            dispatch_mode=view.dispatch_mode,
            waiting=view.length,
            oldest_wait_ms=max(0, view.now_ms - view.oldest[0][1]) if view.oldest else 0,
            agents=by_state,
            breaks=dict(sorted(breaks.items())),
            offered=int(counters.get("offered", 0)),
            assigned=assigned,
            completed=int(counters.get("completed", 0)),
            abandoned=int(counters.get("abandoned", 0)),
            mean_wait_ms=int(counters.get("wait_ms", 0)) / assigned if assigned else None,
            closed=int(counters.get("closed", 0)), relaxed=int(counters.get("relaxed", 0)),
            overflowed=int(counters.get("overflowed", 0)),
            mean_abandon_wait_ms=_mean(counters, "abandon_wait_ms", "abandoned"),
        )


def _mean(counters: dict[str, str], total: str, count: str) -> float | None:
    n = int(counters.get(count, 0))
    return int(counters.get(total, 0)) / n if n else None


def _queued(rows: Any) -> list[tuple[str, int]]:
    # Scores carry 0.001 ms tie-breakers (see acd_contact_create): whole ms are the times.
    return [(str(m), int(float(s))) for m, s in rows]


async def combinations(center: CenterStatistics, limit: int = DEFAULT_LIMIT,
                       examine: int = PARKED_EXAMINED) -> WaitingCombinations:
    """The ``limit`` (1-500) longest-waiting skill combinations of ``center`` and how many
    there are; ``examine``: how many parked ones to read at most (``complete`` is False
    when there were more: the oldest may then be missing). InvalidInput for a bad limit."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit {limit!r}: must be a whole number from 1 to {MAX_LIMIT}")
    if isinstance(examine, bool) or not isinstance(examine, int) or examine < 1:
        raise InvalidInput(f"examine {examine!r}: must be a whole number from 1")
    r, k = cast(Any, center.redis), center.keys
    # TIME on its own: a cluster pipeline refuses a command without a key.
    now_ms = time_us(await r.time()) // 1000
    async with r.pipeline(transaction=False) as pipe:
        pipe.zcard(k.queue)
        pipe.hlen(k.waiting_sigs)
        pipe.zrange(k.ready, 0, limit - 1, withscores=True)
        pipe.hscan(k.parked_on, 0, count=examine)
        waiting, total, ready, (cursor, parked_on) = await pipe.execute()
    parked = sorted(parked_on)
    async with r.pipeline(transaction=False) as pipe:
        for sig in parked:
            pipe.zrange(k.combo(sig), 0, 0, withscores=True)
        heads = await pipe.execute() if parked else []
    # (oldest score, combination, state): the same order as the universal queue's.
    found = [(float(score), str(sig), CombinationState.READY) for sig, score in ready]
    found += [(float(head[0][1]), sig, CombinationState.PARKED)
              for sig, head in zip(parked, heads, strict=True) if head]
    shown: list[tuple[float, str, CombinationState]] = []
    seen: set[str] = set()
    for entry in sorted(found):  # a combination moved between two reads shows once
        if entry[1] not in seen and len(shown) < limit:
            seen.add(entry[1])
            shown.append(entry)
    rows = await _rows(center, now_ms, shown) if shown else []
    return WaitingCombinations(center=center.name, waiting=int(waiting), total=int(total),
                               complete=int(cursor) == 0, combinations=rows)


async def _rows(center: CenterStatistics, now_ms: int,
                shown: list[tuple[float, str, CombinationState]]) -> list[CombinationStats]:
    r, k = cast(Any, center.redis), center.keys
    async with r.pipeline(transaction=False) as pipe:
        pipe.hmget(k.waiting_sigs, [sig for _, sig, _ in shown])
        for _, sig, _ in shown:
            # Minimum levels (acd.levels): available counts agents at those levels (the
            # avail_at sets); eligible, agents having the skills at any level, read again
            # below at the levels.
            mins = needs(sig)
            pipe.execute_command("SINTERCARD", len(mins), *map(k.skill_agents, mins))
            pipe.execute_command("ZINTERCARD", len(mins), *[
                k.avail_at(m, s) if m > 1 else k.avail(s) for s, m in mins.items()])
        counts, *cards = await pipe.execute()
    rows = []
    for i, ((score, sig, state), count) in enumerate(zip(shown, counts, strict=True)):
        if count is None:  # it emptied between the reads
            continue
        mins = needs(sig)
        eligible, capped = int(cards[2 * i]), False
        if eligible and any(m > DEFAULT_LEVEL for m in mins.values()):
            eligible, capped = await eligible_at_levels(center, mins)
        rows.append(CombinationStats(
            skills=list(mins), min_levels={s: m for s, m in mins.items() if m > 1},
            waiting=int(count),
            # Scores carry 0.001 ms tie-breakers (see acd_contact_create): whole ms count.
            oldest_wait_ms=max(0, now_ms - int(score)), state=state,
            eligible=eligible, eligible_capped=capped, available=int(cards[2 * i + 1])))
    return rows


async def eligible_at_levels(center: CenterStatistics, mins: dict[str, int],
                             examine: int = ELIGIBLE_EXAMINED) -> tuple[int, bool]:
    """How many agents have every skill of ``mins`` at its minimum level or above, whatever
    their state, and whether the count stopped at ``examine`` agents (then it is a lower
    bound). Walks the rarest skill's set of agents (see the module)."""
    r, k = cast(Any, center.redis), center.keys
    skills = sorted(mins)
    async with r.pipeline(transaction=False) as pipe:
        for s in skills:
            pipe.scard(k.skill_agents(s))
        sizes = await pipe.execute()
    rarest = min(zip(sizes, skills, strict=True))[1]
    others = [s for s in skills if s != rarest]
    seen: set[str] = set()  # SSCAN may return a member twice
    found, cursor = 0, 0
    while True:
        cursor, members = await r.sscan(k.skill_agents(rarest), cursor, count=LEVELS_CHUNK)
        new = [a for a in dict.fromkeys(map(str, members)) if a not in seen]
        fresh = new[:examine - len(seen)]
        seen.update(fresh)
        if fresh:
            async with r.pipeline(transaction=False) as pipe:
                for s in others:
                    pipe.smismember(k.skill_agents(s), fresh)
                has = await pipe.execute()
            having = [a for j, a in enumerate(fresh) if all(h[j] for h in has)]
            if having:
                raw = await command(r, "JSON.MGET", *map(k.agent, having), "$.levels")
                for text in raw:
                    if text is None:  # deleted since the scan
                        continue
                    stated = json.loads(text)
                    levels = stated[0] if stated and isinstance(stated[0], dict) else {}
                    found += all(levels.get(s, DEFAULT_LEVEL) >= m for s, m in mins.items())
        if len(fresh) < len(new) or (len(seen) >= examine and int(cursor) != 0):
            return found, True
        if int(cursor) == 0:
            return found, False
