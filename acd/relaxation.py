"""A center's default steps by waiting time per skill combination, their timers, and the
outcomes they and abandonment leave (acd.steps says what a step is).

A contact queued without steps of its own gets its center's default for its combination
(``set_default_steps(["billing", "spanish"], [{"after_s": 30, "skills": ["billing"]}])``);
none by default, and then nothing changes: no step, no timer, the same commands per
assignment. The timers are Redis's: every dispatch round first takes the steps that are
due ("Steps by waiting time" in acd/lua/04_steps.lua); ``release_steps`` is the reconciler's
way to take them without assigning. :class:`CenterRelaxation` is part of
:class:`acd.center.Center`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, cast

from pydantic import TypeAdapter, ValidationError

from acd.center_part import CenterPart
from acd.errors import InvalidInput
from acd.keys import valid_name
from acd.models import ContactIn, problems
from acd.steps import MAX_STEPS, StepIn, WaitStep, stored_json

_STEPS = TypeAdapter(list[StepIn])
_STORED = TypeAdapter(list[WaitStep])

OUTCOMES = ("relaxed", "overflowed", "closed", "abandoned", "abandon_wait_ms")
"""Per-combination counters in {tag}:outcomes (field '<outcome>|<combination>'): the
combination is the one the contact was in when it happened."""


def _steps(skills: list[str], steps: Sequence[Any]) -> list[StepIn]:
    try:
        parsed = _STEPS.validate_python(list(steps), strict=True)
        return ContactIn(skills=skills, steps=parsed).steps or []
    except ValidationError as exc:
        raise InvalidInput(problems(exc, "steps")) from None


class CenterRelaxation(CenterPart):
    """A center's default steps per combination, and the steps' timers (see the module)."""

    async def set_default_steps(self, skills: Iterable[str], steps: Sequence[Any]
                                ) -> list[WaitStep]:
        """The steps a contact needing exactly ``skills`` gets when queued without its own
        (``[]``: none); contacts waiting keep theirs. Returns the previous default."""
        wanted = sorted(skills)
        for skill in wanted:
            valid_name("skill", skill)
        if not wanted:
            raise InvalidInput("skills: at least one (the combination the default is for)")
        if len(steps) > MAX_STEPS:
            raise InvalidInput(f"steps: at most {MAX_STEPS}, not {len(steps)}")
        parsed = _steps(wanted, steps)
        await self.register()
        before = await self._fn.steps_default(",".join(wanted), stored_json(parsed))
        return _STORED.validate_json(before) if before else []

    async def default_steps(self) -> dict[str, list[WaitStep]]:
        """Every combination's default steps ('a,b' -> steps)."""
        raw = await cast(Any, self.redis).hgetall(self.keys.step_defaults)
        return {str(sig): _STORED.validate_json(doc) for sig, doc in sorted(raw.items())}

    async def release_steps(self) -> int:
        """Take every step that is due, as each dispatch round does first (in calls of at
        most 25): for the reconciler, or a center no dispatcher serves. Returns how many."""
        total = 0
        while True:
            taken, step_in = await self._fn.steps_release()
            total += taken
            if step_in != 0:
                return total

    async def outcomes(self) -> dict[str, dict[str, int]]:
        """Per skill combination: how many contacts were relaxed, overflowed, closed and
        abandoned from it, and the abandoned ones' total wait (abandon_wait_ms)."""
        raw = await cast(Any, self.redis).hgetall(self.keys.outcomes)
        found: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
        for field, value in raw.items():
            outcome, _, sig = str(field).partition("|")
            found[sig][outcome] = int(value)
        return dict(sorted(found.items()))
