"""/v1/centers/{center}/explanations and .../contacts/{id}/explanation: whether dispatch
rounds record why they assign each contact, and that record (acd.explanation)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from acd.api.deps import CenterDep, ContactId
from acd.api.schemas import Problem
from acd.explanation import Explanation
from acd.models import StrictInput

router = APIRouter(tags=["contacts"])


class ExplanationsIn(StrictInput):
    record: bool = Field(description="true: every assignment from now on records why "
                         "(costs Redis time and memory per assignment); false: none (the "
                         "default)")


class ExplanationsOut(BaseModel):
    record: bool
    previous: bool | None = Field(None, description="the value before this change")


@router.get("/explanations", response_model=ExplanationsOut, tags=["center"])
async def get_explanations(center: CenterDep) -> ExplanationsOut:
    """Whether dispatch rounds record each assignment's explanation (false unless set)."""
    return ExplanationsOut(record=await center.explanations())


@router.put("/explanations", response_model=ExplanationsOut, tags=["center"])
async def set_explanations(body: ExplanationsIn, center: CenterDep) -> ExplanationsOut:
    """Record, or stop recording, why each assignment went where it went (GET
    .../contacts/{id}/explanation). Off by default: each record costs Redis time and
    about 1.3 KB in the contact's document while it lives."""
    previous = await center.set_explanations(body.record)
    return ExplanationsOut(record=body.record, previous=previous)


@router.get("/contacts/{contact_id}/explanation", response_model=Explanation,
            responses={404: {"model": Problem, "description": "no such contact (or it "
                             "expired), or no assignment of it was recorded"}})
async def get_explanation(contact_id: ContactId, center: CenterDep) -> Explanation:
    """Why the contact went to its agent: the rule that ordered it (``arrival`` or
    ``priority``, against the contacts it was served before), the agent choice's rule,
    the first qualified agents the round met with their scores then (winner first), and
    which key decided (``fewest_skills``, ``longest_available``, or ``agent_id`` on a
    tie). Recorded by the round itself while the center records explanations (PUT
    .../explanations), so it says what the ACD saw, not a recomputation."""
    return await center.explanation(contact_id)
