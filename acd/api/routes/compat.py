"""The original demo's routes, with its payloads, on the default center (ACD_CENTER).

Keys are the demo's: ``agent:<id>`` and ``contact:<id>``; a key of another form is a 422.
Contact states are the demo's numbers: 1 queued, 2 assigned, 3 complete (abandoned too).
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Annotated

from fastapi import APIRouter, Path, status

from acd.api.deps import DefaultCenterDep, SkillPath
from acd.api.schemas import (
    LAST_SKILL,
    AcdStateIn,
    AcdStateOut,
    AgentKey,
    AgentKeyStr,
    CompatAgentIn,
    CompatAgentStateIn,
    CompatContact,
    CompatContactIn,
    CompatSkillIn,
    ContactKey,
    ContactKeyStr,
    Problem,
    Responses,
    SkillName,
)
from acd.errors import InvalidState
from acd.models import AgentNames, AgentState, ContactState

router = APIRouter(tags=["original demo"])

AgentKeyPath = Annotated[AgentKeyStr, Path(description="agent:<id>")]
ContactKeyPath = Annotated[ContactKeyStr, Path(description="contact:<id>")]

STATE_NUMBERS = {
    ContactState.QUEUED: 1,
    ContactState.ASSIGNED: 2,
    ContactState.COMPLETED: 3,
    ContactState.ABANDONED: 3,
}
NOT_FOUND: Responses = {404: {"model": Problem}}


def _id(key: str) -> str:
    return key.partition(":")[2]


@router.post("/acd", status_code=status.HTTP_201_CREATED, response_model=AcdStateOut)
async def set_acd_state(body: AcdStateIn, center: DefaultCenterDep) -> AcdStateOut:
    """Open (1) or close (0) the ACD: agents not on a contact become (un)available."""
    changed = await (center.open() if body.state == 1 else center.close())
    return AcdStateOut(acd_state=body.state, changed=changed)


@router.post("/contact", status_code=status.HTTP_201_CREATED, response_model=ContactKey,
             responses={429: {"model": Problem, "description": "the center's cap of waiting "
                              "contacts is reached: retry after Retry-After seconds"}})
async def create_contact(body: CompatContactIn, center: DefaultCenterDep) -> ContactKey:
    contact = await center.create_contact(body.skills, uuid.uuid4().hex)
    return ContactKey(contact_key=f"contact:{contact.id}")


@router.get("/contact/{contact_key}", response_model=CompatContact, responses=NOT_FOUND)
async def get_contact(contact_key: ContactKeyPath, center: DefaultCenterDep) -> CompatContact:
    contact = await center.get_contact(_id(contact_key))
    return CompatContact(skills=contact.skills, state=STATE_NUMBERS[contact.state],
                         agent=f"agent:{contact.agent}" if contact.agent else None)


@router.patch("/contact/{contact_key}", response_model=ContactKey, responses=NOT_FOUND)
async def complete_contact(contact_key: ContactKeyPath, center: DefaultCenterDep
                           ) -> ContactKey:
    """Complete the contact (a contact still queued is abandoned)."""
    await center.complete_contact(_id(contact_key))
    return ContactKey(contact_key=contact_key)


@router.post("/agent/{agent_key}", status_code=status.HTTP_201_CREATED,
             response_model=AgentKey, responses={409: {"model": Problem}})
async def create_agent(agent_key: AgentKeyPath, body: CompatAgentIn,
                       center: DefaultCenterDep) -> AgentKey:
    await center.create_agent(_id(agent_key), body.fname, body.lname, body.skills)
    return AgentKey(agent_key=agent_key)


@router.delete("/agent/{agent_key}", response_model=AgentKey,
               responses={**NOT_FOUND, 409: {"model": Problem}})
async def delete_agent(agent_key: AgentKeyPath, center: DefaultCenterDep) -> AgentKey:
    await center.delete_agent(_id(agent_key))
    return AgentKey(agent_key=agent_key)


@router.patch("/agent/{agent_key}/state", response_model=AgentKey, responses=NOT_FOUND)
async def set_agent_state(agent_key: AgentKeyPath, body: CompatAgentStateIn,
                          center: DefaultCenterDep) -> AgentKey:
    """1 available, 0 unavailable.

    The demo's clients complete a contact, then set its agent available. Completing
    already frees the agent, so the second call may come when the agent is on its next
    contact: it then changes nothing (the agent becomes available when that one ends) and
    answers as the demo did. 0 on an agent on a contact: unavailable when it ends."""
    state = AgentState.AVAILABLE if body.state == 1 else AgentState.UNAVAILABLE
    with contextlib.suppress(InvalidState):
        await center.set_agent_state(_id(agent_key), state)
    return AgentKey(agent_key=agent_key)


@router.patch("/agent/{agent_key}", response_model=AgentKey, responses=NOT_FOUND)
async def change_agent_info(agent_key: AgentKeyPath, body: AgentNames,
                            center: DefaultCenterDep) -> AgentKey:
    await center.update_agent(_id(agent_key), body.fname, body.lname)
    return AgentKey(agent_key=agent_key)


@router.patch("/agent/{agent_key}/skill", response_model=AgentKey,
              responses={**NOT_FOUND, 409: {"model": Problem}})
async def add_agent_skill(agent_key: AgentKeyPath, body: CompatSkillIn,
                          center: DefaultCenterDep) -> AgentKey:
    await center.add_skill(_id(agent_key), body.skill)
    return AgentKey(agent_key=agent_key)


@router.delete("/agent/{agent_key}/skill/{skill}", response_model=SkillName,
               responses={**NOT_FOUND, 409: {"model": Problem, "description": LAST_SKILL}})
async def delete_agent_skill(agent_key: AgentKeyPath, skill: SkillPath,
                             center: DefaultCenterDep) -> SkillName:
    await center.remove_skill(_id(agent_key), skill)
    return SkillName(skill=skill)


@router.delete("/skill/{skill}", response_model=SkillName,
               responses={404: {"model": Problem, "description": "no agent has the skill "
                                "and no waiting contact needs it"},
                          409: {"model": Problem, "description": "waiting contacts need the "
                                "skill (named): nobody could serve them; or it is the last "
                                "skill of agents (named)"}})
async def delete_skill(skill: SkillPath, center: DefaultCenterDep) -> SkillName:
    await center.delete_skill(skill)
    return SkillName(skill=skill)
