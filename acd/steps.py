"""Steps by waiting time: what a contact needs once it has waited long enough.

A step ``{after_s, skills}`` relaxes (fewer skills: "after 30 s any agent with billing may
take it, Spanish no longer required") or overflows (other skills) a contact's
requirements; ``{after_s, close}`` ends it, state ``closed``, with that reason: the
maximum wait. A contact keeps its place by arrival when it moves (acd/lua/04_steps.lua's "Steps by
waiting time"). The rules, one home: ``after_s`` strictly increasing, a step's skills
non-empty and unique and not the requirement they replace, a close only last.

These are the input and stored shapes only; acd.relaxation sets a center's defaults and
acd/lua/ runs the timers.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from acd.keys import NAME_PATTERN, check_name

MAX_STEPS = 8
MAX_STEP_SECONDS = 86_400.0  # a day: a contact waiting longer is not a queue's matter
MAX_STEP_SKILLS = 32  # acd.models.MAX_SKILLS (imported there: no cycle)

StepName = Annotated[str, AfterValidator(lambda v: check_name("", v)),
                     WithJsonSchema({"type": "string", "pattern": NAME_PATTERN})]


class StepIn(BaseModel):
    """One step as a caller gives it."""

    model_config = ConfigDict(strict=True, extra="forbid")

    after_s: float = Field(gt=0, le=MAX_STEP_SECONDS, allow_inf_nan=False,
                           description="seconds of waiting (since queued) after which the "
                                       "step applies; kept to the ms")
    skills: Annotated[list[StepName], Field(min_length=1, max_length=MAX_STEP_SKILLS)] | None = \
        Field(None, description="the skills the contact needs from then on (fewer: relaxed; "
                                "others: overflowed)")
    close: StepName | None = Field(None, description="instead of skills: the contact ends, "
                                   "state closed, with this reason (e.g. max_wait)")

    @model_validator(mode="after")
    def _one_kind(self) -> StepIn:
        if (self.skills is None) == (self.close is None):
            raise ValueError("a step gives either skills or close (a reason), not both "
                             "nor neither")
        if self.skills is not None:
            repeated = sorted({s for s in self.skills if self.skills.count(s) > 1})
            if repeated:
                raise ValueError(f"skills must be unique; repeated: {', '.join(repeated)}")
        return self

    @property
    def after_ms(self) -> int:
        return round(self.after_s * 1000)


class WaitStep(BaseModel):
    """A step as a contact's document (and a center's default) stores it."""

    after_ms: int
    skills: list[str] | None = None
    close: str | None = None


class StepTaken(BaseModel):
    """A step a contact took: when, from which requirements, to what."""

    after_ms: int
    at: int = Field(description="ms, server clock")
    before: list[str] = Field(description="the skills it needed until then")
    skills: list[str] | None = Field(None, description="the skills it needs since")
    close: str | None = Field(None, description="it was closed with this reason")
    skipped: str | None = Field(None, description="why the step changed nothing "
                                "(skill_deleting: a skill of it was being deleted)")


def check_sequence(skills: list[str], steps: list[StepIn], levelled: bool = False
                   ) -> list[StepIn]:
    """Raise ValueError naming the step that breaks the rules (see the module).
    ``levelled``: the contact asks for minimum levels, which a step drops (its skills are
    needed at any level), so a first step with the same skills changes something."""
    if len(steps) > MAX_STEPS:
        raise ValueError(f"steps: at most {MAX_STEPS}, not {len(steps)}")
    needs, before = sorted(skills), 0
    for i, step in enumerate(steps):
        if step.after_ms <= before:
            raise ValueError(f"steps[{i}]: after_s {step.after_s:g} must be more than the "
                             f"step before ({before / 1000:g} s)")
        before = step.after_ms
        if step.close is not None and i < len(steps) - 1:
            raise ValueError(f"steps[{i}]: a close ends the contact, so it is the last step")
        if step.skills is not None:
            if sorted(step.skills) == needs and not levelled:
                raise ValueError(f"steps[{i}]: skills {sorted(step.skills)} are what the "
                                 "contact needs already at that point")
            needs, levelled = sorted(step.skills), False
    return steps


def stored_json(steps: list[StepIn] | None) -> str:
    """The steps as acd_contact_create and acd_steps_default take them ('' for None)."""
    if steps is None:
        return ""
    stored: list[dict[str, Any]] = []
    for step in steps:
        entry: dict[str, Any] = {"after_ms": step.after_ms}
        if step.skills is not None:
            entry["skills"] = sorted(step.skills)
        else:
            entry["close"] = step.close
        stored.append(entry)
    return json.dumps(stored, separators=(",", ":"))
