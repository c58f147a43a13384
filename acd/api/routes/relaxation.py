"""/v1/centers/{center}/relaxation: a center's default steps by waiting time per skill
combination (acd.steps, acd.relaxation), and .../stats/outcomes: what steps and
abandonment did, per combination."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from acd.api.deps import CenterDep
from acd.errors import InvalidInput
from acd.keys import check_name
from acd.models import StrictInput
from acd.steps import MAX_STEPS, StepIn, WaitStep

router = APIRouter(tags=["relaxation"])

Combination = Annotated[str, Path(
    description="the skills of the combination, comma-separated (any order): "
                "billing,spanish", max_length=64 * 32 + 31)]


def _skills(combination: str) -> list[str]:
    skills = combination.split(",")
    try:
        for skill in skills:
            check_name("skill", skill)
    except ValueError as exc:
        raise InvalidInput(f"combination {combination!r}: {exc}") from None
    if len(set(skills)) != len(skills):
        raise InvalidInput(f"combination {combination!r}: a skill is repeated")
    return sorted(skills)


class StepsIn(StrictInput):
    steps: list[StepIn] = Field(max_length=MAX_STEPS, description="the steps a contact "
                                "queued with exactly these skills and no steps of its own "
                                "gets ([]: none)")


class StepsOut(BaseModel):
    skills: list[str]
    steps: list[WaitStep]
    previous: list[WaitStep] | None = Field(None, description="on PUT: the steps before")


class Defaults(BaseModel):
    combinations: dict[str, list[WaitStep]] = Field(
        description="combination ('a,b', sorted) -> its default steps")


class Outcome(BaseModel):
    relaxed: int = 0
    overflowed: int = 0
    closed: int = 0
    abandoned: int = 0
    abandon_wait_ms: int = Field(0, description="the abandoned contacts' total wait")
    mean_abandon_wait_ms: float | None = None


class Outcomes(BaseModel):
    combinations: dict[str, Outcome] = Field(
        description="combination ('a,b') the contact was in when it happened -> counts")


@router.get("/relaxation", response_model=Defaults)
async def get_defaults(center: CenterDep) -> Defaults:
    """Every combination's default steps by waiting time (none by default)."""
    return Defaults(combinations=await center.default_steps())


@router.put("/relaxation/{combination}", response_model=StepsOut)
async def set_defaults(combination: Combination, body: StepsIn, center: CenterDep
                       ) -> StepsOut:
    """The steps a contact queued with exactly these skills and no ``steps`` of its own
    gets: ``{"after_s": 30, "skills": ["billing"]}`` relaxes (fewer skills) or overflows
    (other skills) it once it has waited 30 s, keeping its place by arrival;
    ``{"after_s": 120, "close": "max_wait"}`` closes it (state closed). Contacts waiting
    keep theirs."""
    skills = _skills(combination)
    previous = await center.set_default_steps(skills, [s.model_dump(exclude_none=True)
                                                       for s in body.steps])
    now = (await center.default_steps()).get(",".join(skills), [])
    return StepsOut(skills=skills, steps=now, previous=previous)


@router.get("/stats/outcomes", response_model=Outcomes, tags=["stats"])
async def outcomes(center: CenterDep) -> Outcomes:
    """Per skill combination: contacts relaxed, overflowed and closed by steps by waiting
    time, and abandoned by their callers with their mean wait."""
    found = {}
    for sig, counts in (await center.outcomes()).items():
        n = counts["abandoned"]
        found[sig] = Outcome(**counts, mean_abandon_wait_ms=counts["abandon_wait_ms"] / n
                             if n else None)
    return Outcomes(combinations=found)
