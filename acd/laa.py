"""Longest Available Agent (LAA), written once in plain Python: the reference ranking.

Each skill has an availability sorted set, ``{acd:C}:avail:<skill>``: every available agent
with that skill, scored with the ms it became available. The rule:

    the agents present in the set of every skill the contact needs, oldest score first;
    equal scores in agent id order.

Equal scores are ordered by agent id because a sorted set orders them by member (bytes,
which for UTF-8 is the order of Python's ``str``): that is the order in which the acd library's
walk (``longest_available``: the smallest set in ZRANGE order, keeping the first agent
found in all the others) meets them, and the order ``ZINTER`` answers.

An agent's score is the same in all its sets: the acd library writes one time to every set when
the agent becomes available (``make_available``), and a skill added while it is available
gets its ``available_since`` (``acd_agent_skill``). So ``AGGREGATE MIN`` and ``MAX`` both
give that time, and rank as the walk does; ``SUM`` gives n times it (the same order, but no
longer a time). Only hand-written scores can differ, and the likely slip, a skill added
with "now" as its score, makes one score later, never earlier: the earliest score is still
when the agent became available. So the reference, like ``Center.candidates`` (``ZINTER
... AGGREGATE MIN``) and the textbook dispatcher (``acd.naive``), ranks by the smallest
score. Tests check that all of them, notebook 04's step and ``acd_dispatch`` agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from acd.models import Candidate

# skill -> {agent id: score}: what ZRANGE <avail set> 0 -1 WITHSCORES gives for each skill
Availability = Mapping[str, Mapping[str, float]]


def ranked(availability: Availability, skills: Iterable[str]) -> list[Candidate]:
    """Every agent available with all ``skills``, longest available first."""
    needed = sorted(set(skills))
    if not needed:
        raise ValueError("a contact needs at least one skill")
    sets = [availability.get(skill, {}) for skill in needed]
    smallest = min(sets, key=len)
    qualified = [agent for agent in smallest if all(agent in s for s in sets)]
    since = {agent: min(s[agent] for s in sets) for agent in qualified}
    order = sorted(qualified, key=lambda agent: (since[agent], agent))
    return [Candidate(agent=agent, available_since=int(since[agent])) for agent in order]


def longest_available(availability: Availability, skills: Iterable[str]) -> str | None:
    """The agent LAA gives a contact needing ``skills``; None when nobody qualifies."""
    best = ranked(availability, skills)
    return best[0].agent if best else None
