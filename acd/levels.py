"""Proficiency levels: an agent's level 1-5 per skill, a contact's minimum per skill, and
the skill combination ("signature") that names what a contact needs.

Level 1 is the level of merely having a skill: an agent created with plain skill names
has level 1 in each, and a minimum of 1 asks for nothing more than the skill. So a
contact needing a higher level goes only to agents someone rated that high, never to one
nobody rated; and a center that never states a level routes exactly as before. Levels
above 1 are stored (the agent document's ``levels``, the contact's ``min_levels``); the
signature lists each minimum above 1 after its skill, ``"Billing:3,English"``, so that
contacts with the same skills and minimums share one FIFO of the waiting contacts' index
("Proficiency" in acd/lua/01_agent_choice.lua). A skill name never holds ``:`` (acd.keys), so the
signature reads back without ambiguity. Pure functions: acd.models and acd.invariants
use them, acd.proficiency holds the center's calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

MIN_LEVEL = 1
MAX_LEVEL = 5
DEFAULT_LEVEL = MIN_LEVEL
"""An agent's level of a skill it was given without one (see the module)."""


def check_levels(field: str, levels: Mapping[str, int], skills: Iterable[str]) -> dict[str, int]:
    """``levels`` if every key is one of ``skills`` and every value a level from 1 to 5;
    else ValueError naming the field, the skill and what is wrong."""
    known = set(skills)
    for skill, level in levels.items():
        if skill not in known:
            raise ValueError(f"{field}: {skill!r} is not one of the skills "
                             f"({', '.join(sorted(known))})")
        if isinstance(level, bool) or not isinstance(level, int) or not (
                MIN_LEVEL <= level <= MAX_LEVEL):
            raise ValueError(f"{field}.{skill}: {level!r} is not a level (a whole number "
                             f"from {MIN_LEVEL} to {MAX_LEVEL})")
    return dict(levels)


def above_default(levels: Mapping[str, int]) -> dict[str, int]:
    """The levels that say more than having the skill (what is stored), sorted by skill."""
    return {s: levels[s] for s in sorted(levels) if levels[s] > DEFAULT_LEVEL}


def signature(skills: Iterable[str], min_levels: Mapping[str, int] | None = None) -> str:
    """The combination a contact waits in: its skills sorted, each minimum above 1 after
    its skill (acd/lua/01_agent_choice.lua's contact_sig computes the same)."""
    mins = min_levels or {}
    return ",".join(f"{s}:{mins[s]}" if mins.get(s, 1) > 1 else s for s in sorted(skills))


def needs(sig: str) -> dict[str, int]:
    """A signature read back: skill -> minimum level (1: any)."""
    found: dict[str, int] = {}
    for item in sig.split(","):
        skill, _, level = item.partition(":")
        found[skill] = int(level) if level else DEFAULT_LEVEL
    return found


def qualifies(agent_levels: Mapping[str, int], agent_skills: Iterable[str],
              min_levels: Mapping[str, int]) -> bool:
    """Whether an agent with these skills (levels: those above 1) meets every minimum of
    ``min_levels`` (skill -> level, 1 for a skill needed at any level)."""
    has = set(agent_skills)
    return all(s in has and agent_levels.get(s, DEFAULT_LEVEL) >= m
               for s, m in min_levels.items())
