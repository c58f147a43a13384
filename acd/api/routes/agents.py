"""/v1/centers/{center}/agents and /skills: agents, their state and their skills."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from acd.api.deps import AgentId, CenterDep, QueryFlag, SkillPath
from acd.api.schemas import (
    LAST_SKILL,
    AgentCreate,
    AgentStateIn,
    LevelIn,
    Problem,
    Responses,
    SkillDeleted,
)
from acd.models import Agent, AgentNames

router = APIRouter(tags=["agents"])

NOT_FOUND: Responses = {404: {"model": Problem, "description": "no such agent"}}
CONFLICT: Responses = {409: {"model": Problem}}


@router.post("/agents", status_code=status.HTTP_201_CREATED, response_model=Agent,
             responses={409: {"model": Problem, "description": "an agent with that id exists"}})
async def create_agent(body: AgentCreate, center: CenterDep) -> Agent:
    """``skills`` is a list of names; ``levels`` ({"Billing": 4}) gives some of them a level
    1-5 (a skill not named there is at level 1)."""
    return await center.create_agent(body.id, body.fname, body.lname, body.skills,
                                      available=body.available, levels=body.levels)


@router.get("/agents", response_model=list[Agent])
async def list_agents(center: CenterDep) -> list[Agent]:
    return await center.list_agents()


@router.get("/agents/{agent_id}", response_model=Agent, responses=NOT_FOUND)
async def get_agent(agent_id: AgentId, center: CenterDep) -> Agent:
    return await center.get_agent(agent_id)


@router.patch("/agents/{agent_id}", response_model=Agent, responses=NOT_FOUND)
async def update_agent(agent_id: AgentId, body: AgentNames, center: CenterDep) -> Agent:
    """Change both names (send both)."""
    return await center.update_agent(agent_id, body.fname, body.lname)


@router.delete("/agents/{agent_id}", status_code=status.HTTP_204_NO_CONTENT,
               response_class=Response,
               responses={**NOT_FOUND, 409: {"model": Problem,
                                             "description": "the agent is on a contact"}})
async def delete_agent(agent_id: AgentId, center: CenterDep) -> Response:
    await center.delete_agent(agent_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/agents/{agent_id}/state", response_model=Agent,
            responses={**NOT_FOUND, 409: {"model": Problem, "description":
                       "the agent is on a contact: it becomes available when it ends"}})
async def set_agent_state(agent_id: AgentId, body: AgentStateIn, center: CenterDep) -> Agent:
    """Available, unavailable (a break, with a ``reason`` code) or logged_out. An agent on
    a contact (busy) keeps it until the contact ends: another state then means not ready
    after this contact (``next_state``, applied when it ends); "available" cancels that,
    or is 409 naming the contact."""
    return await center.set_agent_state(agent_id, body.state, body.reason)


@router.put("/agents/{agent_id}/skills/{skill}", response_model=Agent,
            responses={**NOT_FOUND, 409: {"model": Problem,
                                          "description": "the agent has the skill"}})
async def add_skill(agent_id: AgentId, skill: SkillPath, center: CenterDep) -> Agent:
    return await center.add_skill(agent_id, skill)


@router.delete("/agents/{agent_id}/skills/{skill}", response_model=Agent,
               responses={404: {"model": Problem,
                                "description": "no such agent, or it lacks the skill"},
                          409: {"model": Problem, "description": LAST_SKILL}})
async def remove_skill(agent_id: AgentId, skill: SkillPath, center: CenterDep) -> Agent:
    return await center.remove_skill(agent_id, skill)


@router.put("/agents/{agent_id}/skills/{skill}/level", response_model=Agent,
            responses={404: {"model": Problem,
                             "description": "no such agent, or it lacks the skill"}})
async def set_level(agent_id: AgentId, skill: SkillPath, body: LevelIn, center: CenterDep
                    ) -> Agent:
    """Set the agent's level 1-5 of a skill it has. Available, it keeps its place in the
    longest-available order and qualifies at the new level at once; busy or in wrap-up,
    from its next availability."""
    return await center.set_level(agent_id, skill, body.level)


@router.get("/skills", response_model=list[str], tags=["skills"])
async def list_skills(center: CenterDep) -> list[str]:
    return await center.list_skills()


@router.delete("/skills/{skill}", response_model=SkillDeleted, tags=["skills"],
               responses={404: {"model": Problem, "description": "no agent has the skill "
                                "and no waiting contact needs it"},
                          409: {"model": Problem, "description": "waiting contacts need the "
                                "skill (named; force=true abandons them), or it is the last "
                                "skill of agents (named)"}})
async def delete_skill(skill: SkillPath, center: CenterDep, force: QueryFlag = False
                       ) -> SkillDeleted:
    """Remove the skill from every agent that has it. Refused with 409, naming them, while
    contacts wait that need it (nobody could serve them any more), unless ``force=true``:
    then they are abandoned, and counted in the answer."""
    done = await center.delete_skill(skill, force=force)
    return SkillDeleted(skill=skill, agents=done.agents, abandoned=done.abandoned)
