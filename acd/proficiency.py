"""Proficiency: an agent's level 1-5 per skill, and who qualifies at which level.

An agent is given levels with its skills (``create_agent(..., levels={"Billing": 4})``;
a skill without one is at level 1, see acd.levels for why) and changes one with
:meth:`CenterProficiency.set_level`. A contact may ask for a minimum level per skill
(``create_contact(..., min_levels={"Billing": 3})``): only agents at that level or above
qualify, and among them the longest available is chosen (LAA), or, with the center's
agent choice ``best_proficiency`` (acd.agent_choice), the one whose lowest level over
the contact's skills is highest, then LAA. Dispatch finds both with the bounded LAA walk
over per-skill-and-level availability sets ("Proficiency" in acd/lua/01_agent_choice.lua, which says
what it costs). :class:`CenterProficiency` is part of :class:`acd.center.Center`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from acd.center_part import CenterPart
from acd.commands import command
from acd.errors import InvalidInput
from acd.functions import fcall
from acd.keys import valid_name
from acd.levels import MAX_LEVEL, MIN_LEVEL, check_levels, qualifies
from acd.models import Agent, Candidate


def _level(level: object) -> int:
    if isinstance(level, bool) or not isinstance(level, int) or not (
            MIN_LEVEL <= level <= MAX_LEVEL):
        raise InvalidInput(f"level: {level!r} is not a level (a whole number from "
                           f"{MIN_LEVEL} to {MAX_LEVEL})")
    return level


class CenterProficiency(CenterPart):
    """A center's agents' levels (see the module)."""

    async def set_level(self, agent_id: str, skill: str, level: int) -> Agent:
        """Set the agent's level (1-5) of a skill it has; NotFound if it lacks it. An
        available agent keeps its place in the LAA order and qualifies at the new level at
        once (a dispatch round may give it a contact the next moment); a busy one from its
        next availability."""
        valid_name("agent id", agent_id)
        valid_name("skill", skill)
        raw = await fcall(self.redis, "acd_agent_level", [self.keys.agent(agent_id)],
                          [agent_id, skill, _level(level)])
        return Agent.model_validate_json(str(raw))

    async def qualified(self, skills: Iterable[str], min_levels: Mapping[str, int] | None = None
                        ) -> list[Candidate]:
        """Every available agent with all ``skills`` at the minimum levels, longest
        available first (ZINTER over avail:<skill> and avail_at:<L>:<skill>): the
        explanation of a choice, as Center.candidates is for plain skills."""
        needed = sorted(set(skills))
        mins = {s: m for s, m in (min_levels or {}).items() if m > MIN_LEVEL}
        try:
            check_levels("min_levels", dict(min_levels or {}), needed)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        for s in needed:
            valid_name("skill", s)
        if not needed:
            raise InvalidInput("skills: at least one is needed")
        sets = [self.keys.avail_at(mins[s], s) if s in mins else self.keys.avail(s)
                for s in needed]
        rows = await command(self.redis, "ZINTER", len(sets), *sets, "AGGREGATE", "MIN",
                             "WITHSCORES")
        return [Candidate(agent=str(a), available_since=int(float(s))) for a, s in rows]


def who_qualifies(agents: Iterable[Agent], min_levels: Mapping[str, int]) -> list[str]:
    """The ids of ``agents`` meeting every minimum (skill -> level; 1: any level)."""
    return [a.id for a in agents if qualifies(a.levels, a.skills, min_levels)]

