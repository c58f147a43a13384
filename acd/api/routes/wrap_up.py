"""/v1/centers/{center}/wrap-up and .../agents/{id}/wrap-up/end: a center's wrap-up time
(after-contact work) and ending an agent's wrap-up now (acd.wrap_up)."""

from __future__ import annotations

from fastapi import APIRouter

from acd.api.deps import AgentId, CenterDep
from acd.api.schemas import Problem, WrapUpIn, WrapUpOut
from acd.models import Agent

router = APIRouter(tags=["wrap-up"])


@router.get("/wrap-up", response_model=WrapUpOut)
async def get_wrap_up(center: CenterDep) -> WrapUpOut:
    """The center's wrap-up time in seconds (0: none)."""
    return WrapUpOut(wrap_up_seconds=await center.wrap_up_seconds())


@router.put("/wrap-up", response_model=WrapUpOut)
async def set_wrap_up(body: WrapUpIn, center: CenterDep) -> WrapUpOut:
    """How long an agent whose contact is completed stays in ``wrap_up`` (on no contact,
    not dispatched to) before it becomes available, or unavailable if it asked for that
    meanwhile. 0 (the default): available at once. Wrap-ups under way keep their end."""
    previous = await center.set_wrap_up(body.wrap_up_seconds)
    return WrapUpOut(wrap_up_seconds=await center.wrap_up_seconds(), previous=previous)


@router.post("/agents/{agent_id}/wrap-up/end", response_model=Agent, tags=["agents"],
             responses={404: {"model": Problem, "description": "no such agent"},
                        409: {"model": Problem, "description": "the agent is not in "
                              "wrap-up (its time may have ended it just before)"}})
async def end_wrap_up(agent_id: AgentId, center: CenterDep) -> Agent:
    """End the agent's wrap-up now: it becomes available (or unavailable, if it asked for
    that during its contact or its wrap-up)."""
    return await center.end_wrap_up(agent_id)
