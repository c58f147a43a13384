"""/v1/centers/{center}/contacts: queue, read, complete and abandon contacts."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from acd.api.deps import CenterDep, ContactId
from acd.api.schemas import ContactCreate, Problem, Responses
from acd.errors import AlreadyExists
from acd.levels import above_default
from acd.models import Contact

router = APIRouter(tags=["contacts"])

NOT_FOUND: Responses = {404: {"model": Problem, "description": "no such contact (or it expired)"}}


@router.post(
    "/contacts", status_code=status.HTTP_201_CREATED, response_model=Contact,
    responses={
        200: {"model": Contact,
              "description": "a retry: the contact with this id and these skills exists"},
        409: {"model": Problem,
              "description": "a contact with this id exists with other skills or "
                             "another priority"},
        429: {"model": Problem,
              "description": "the center's cap of waiting contacts (ACD_MAX_QUEUED) is "
                             "reached, or this worker's connections are all busy: retry "
                             "after Retry-After seconds"},
    })
async def create_contact(body: ContactCreate, center: CenterDep, response: Response
                         ) -> Contact:
    """Queue a contact needing an agent with every skill in ``skills``. ``priority``
    (0..100, default 0) serves it as if it had arrived that many times the center's
    seconds per point earlier (PUT .../priority; 0 by default: no effect).
    ``min_levels`` ({"Billing": 3}) asks for agents at that level 1-5 or above in some of
    its skills (the others: any level). ``steps`` by
    waiting time relax or overflow its skills, or close it, once it has waited
    ``after_s`` (absent: the center's default for its skills, PUT .../relaxation; []:
    none); the contact shows what it needs now and ``steps_taken``.

    With ``id``, retries are safe: the same id with the same skills and priority returns
    the existing contact with 200 instead of queueing another.
    """
    steps = None if body.steps is None else [s.model_dump(exclude_none=True)
                                             for s in body.steps]
    if body.id is None:
        return await center.create_contact(body.skills, priority=body.priority,
                                           min_levels=body.min_levels, steps=steps)
    for _ in range(3):
        try:
            return await center.create_contact(body.skills, body.id, body.priority,
                                               body.min_levels, steps)
        except AlreadyExists:
            # A retry after a 503: the first attempt may not have reached a replica yet;
            # the read and its WAIT go on one connection (acd.durable).
            existing = await center.get_contact_replicated(body.id)
            if existing is None:  # it expired between the two calls: create it again
                continue
            # What it was queued with: a step by waiting time may have changed its skills.
            queued_with = existing.steps_taken[0].before if existing.steps_taken \
                else existing.skills
            if sorted(queued_with) != sorted(body.skills):
                raise AlreadyExists(
                    f"contact {body.id} exists with skills {existing.skills}") from None
            if existing.priority != body.priority:
                raise AlreadyExists(
                    f"contact {body.id} exists with priority {existing.priority}") from None
            if existing.min_levels != above_default(body.min_levels):
                raise AlreadyExists(f"contact {body.id} exists with min_levels "
                                    f"{existing.min_levels}") from None
            response.status_code = status.HTTP_200_OK
            return existing
    raise AlreadyExists(f"contact {body.id} keeps changing; retry")


@router.get("/contacts/{contact_id}", response_model=Contact, responses=NOT_FOUND)
async def get_contact(contact_id: ContactId, center: CenterDep) -> Contact:
    return await center.get_contact(contact_id)


@router.post("/contacts/{contact_id}/complete", response_model=Contact, responses=NOT_FOUND)
async def complete_contact(contact_id: ContactId, center: CenterDep) -> Contact:
    """End the contact; its agent, if still on it, becomes available. A contact still
    queued was never answered: it ends abandoned. Ending an ended contact changes nothing."""
    return await center.complete_contact(contact_id)


@router.post("/contacts/{contact_id}/abandon", response_model=Contact,
             responses={**NOT_FOUND, 409: {"model": Problem,
                                           "description": "the contact is assigned"}})
async def abandon_contact(contact_id: ContactId, center: CenterDep) -> Contact:
    """The caller hung up while queued: the contact leaves the queue."""
    return await center.abandon_contact(contact_id)
