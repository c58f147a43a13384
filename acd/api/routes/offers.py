"""/v1/centers/{center}/offers and the answers to an offer, by the agent or on the contact
(acd.offers)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from acd.api.deps import AgentId, CenterDep, ContactId
from acd.api.schemas import Problem, Responses
from acd.errors import InvalidState
from acd.models import Agent
from acd.offers import OfferSettings, OfferSettingsIn

router = APIRouter(tags=["offers"])

ANSWER: Responses = {404: {"model": Problem, "description": "no such agent or contact"},
                     409: {"model": Problem, "description": "no such offer: it timed out, "
                           "or was answered, just before"}}


@router.get("/offers", response_model=OfferSettings)
async def get_offers(center: CenterDep) -> OfferSettings:
    """The center's offers (timeout_s 0: off, rounds assign at once)."""
    return await center.offer_settings()


@router.put("/offers", response_model=OfferSettings)
async def set_offers(body: OfferSettingsIn, center: CenterDep) -> OfferSettings:
    """With ``timeout_s`` > 0 a dispatch round offers each contact to an agent, who has
    that long to accept (else the offer times out). A missed offer (rejected or timed out)
    puts the contact back at its place and keeps the agent from being offered it again
    for ``backoff_s``; ``max_misses`` in a row put the agent on a break (reason
    missed_offers). 0 turns offers off; offers under way keep their deadline."""
    await center.set_offers(body.timeout_s, body.max_misses, body.backoff_s)
    return await center.offer_settings()


@router.post("/agents/{agent_id}/offer/{answer}", response_model=Agent, tags=["agents"],
             responses=ANSWER)
async def answer_as_agent(agent_id: AgentId, answer: Literal["accept", "reject"],
                          center: CenterDep) -> Agent:
    """Accept (the agent is busy with the contact, now assigned) or reject the agent's
    offer."""
    if answer == "accept":
        return await center.accept_offer(agent_id)
    return await center.reject_offer(agent_id)


@router.post("/contacts/{contact_id}/offer/{answer}", response_model=Agent,
             tags=["contacts"], responses=ANSWER)
async def answer_on_contact(contact_id: ContactId, answer: Literal["accept", "reject"],
                            center: CenterDep) -> Agent:
    """Answer the offer of this contact, for the agent it is offered to; returns that
    agent."""
    contact = await center.get_contact(contact_id)
    if contact.state != "offered" or contact.agent is None:
        raise InvalidState(f"contact {contact_id} is {contact.state.value}, not offered")
    if answer == "accept":
        return await center.accept_offer(contact.agent, contact_id)
    return await center.reject_offer(contact.agent, contact_id)
