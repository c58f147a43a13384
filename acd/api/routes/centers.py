"""/v1/centers/{center}: delete, open/close, dispatch mode, priority, agent choice, queue,
candidates, stats (and per skill combination), events and KPIs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse

from acd.api.deps import BlockingRedisDep, CenterDep
from acd.api.errors import FieldError
from acd.api.schemas import (
    MAX_BLOCK_MS,
    AgentChoiceIn,
    AgentChoiceOut,
    CenterDeleted,
    CenterStateIn,
    CenterStateOut,
    DispatchModeIn,
    DispatchModeOut,
    Event,
    EventsPage,
    PriorityIn,
    PriorityOut,
    Problem,
    QueueEntry,
)
from acd.errors import InvalidInput
from acd.models import MAX_SKILLS, Candidate, Skill
from acd.stats import DEFAULT_LIMIT, MAX_LIMIT, CenterStats, WaitingCombinations, combinations

router = APIRouter(tags=["center"])

STREAM_ID = r"^(\$|[0-9]{1,20}(-[0-9]{1,20})?)$"
U64_MAX = 2**64 - 1


@router.delete("", response_model=CenterDeleted, responses={
    404: {"model": Problem, "description": "no such center"},
    409: {"model": Problem, "description": "contacts are assigned (named): complete them "
          "first"}})
async def delete_center(center: CenterDep) -> CenterDeleted:
    """Delete the center: its waiting contacts are abandoned, its agents, skills, queue,
    counters, streams and KPIs deleted, and the dispatchers stop serving it. Refused
    with 409, naming them, while contacts are assigned. Done in short Redis calls (every
    other center is served meanwhile); once it starts, the center refuses other writes
    with 409 until it is gone; if it is interrupted, DELETE again finishes it. A center
    with the same name can be created afterwards."""
    done = await center.delete()
    return CenterDeleted(center=done.center, agents=done.agents, abandoned=done.abandoned)


@router.put("/state", response_model=CenterStateOut)
async def set_center_state(body: CenterStateIn, center: CenterDep) -> CenterStateOut:
    """Open: every agent not on a contact becomes available. Close: unavailable."""
    changed = await (center.open() if body.open else center.close())
    return CenterStateOut(open=body.open, changed=changed)


@router.put("/dispatch-mode", response_model=DispatchModeOut)
async def set_dispatch_mode(body: DispatchModeIn, center: CenterDep) -> DispatchModeOut:
    """Who assigns the center's contacts: the dispatcher services (automatic, the default)
    or only explicit dispatch calls (manual: a lesson running its own dispatcher)."""
    previous = await center.set_dispatch_mode(body.mode)
    return DispatchModeOut(mode=body.mode, previous=previous)


@router.put("/priority", response_model=PriorityOut)
async def set_priority(body: PriorityIn, center: CenterDep) -> PriorityOut:
    """Priority as virtual age: a contact of priority p (POST .../contacts) is served as if
    it had arrived p x ``seconds_per_point`` earlier. Contacts already waiting keep the
    head start they were given."""
    previous = await center.set_seconds_per_point(body.seconds_per_point)
    return PriorityOut(seconds_per_point=body.seconds_per_point, previous=previous)


@router.put("/agent-choice", response_model=AgentChoiceOut)
async def set_agent_choice(body: AgentChoiceIn, center: CenterDep) -> AgentChoiceOut:
    """Which qualified available agent gets a contact: the longest available (the
    default) or the one with the fewest skills, then the longest available (keeps
    generalists free). In effect once every agent is switched, in short Redis calls."""
    previous = await center.set_agent_choice(body.choice)
    return AgentChoiceOut(choice=body.choice, previous=previous)


@router.get("/agent-choice", response_model=AgentChoiceOut)
async def get_agent_choice(center: CenterDep) -> AgentChoiceOut:
    """The center's agent choice (longest_available unless set)."""
    return AgentChoiceOut(choice=await center.agent_choice())


@router.get("/queue", response_model=list[QueueEntry])
async def queue(center: CenterDep,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[QueueEntry]:
    """The oldest waiting contacts, oldest first."""
    view = await center.queue_view(limit)
    return [QueueEntry(contact=c, queued_at=t, wait_ms=max(0, view.now_ms - t))
            for c, t in view.oldest]


@router.get("/candidates", response_model=list[Candidate])
async def candidates(
    center: CenterDep,
    skills: Annotated[list[Skill], Query(min_length=1, max_length=MAX_SKILLS)],
) -> list[Candidate]:
    """Every available agent with all ``skills``, longest available first (LAA order)."""
    return await center.candidates(skills)


@router.get("/stats", response_model=CenterStats)
async def stats(center: CenterDep) -> CenterStats:
    return await center.stats()


@router.get("/stats/combinations", response_model=WaitingCombinations)
async def stats_combinations(
    center: CenterDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT,
                                description="combinations listed at most")
                     ] = DEFAULT_LIMIT,
) -> WaitingCombinations:
    """Why contacts wait: each skill combination contacts wait with (the longest waiting
    first), how many wait and for how long, whether a dispatch round looks at it
    (``ready``) or skips it because nobody available could serve it (``parked``), and how
    many agents have all its skills, at its minimum levels if it has any (``eligible``;
    ``eligible_capped``: a lower bound, too many agents to read) and are available now
    (``available``). ``total`` counts every combination, listed or not."""
    return await combinations(center, limit)


@router.get("/events", response_model=EventsPage)
async def events(
    center: CenterDep,
    blocking: BlockingRedisDep,
    after: Annotated[str, Query(pattern=STREAM_ID,
                                description="stream id; `$` (default) means only new")] = "$",
    block_ms: Annotated[int, Query(ge=0, le=MAX_BLOCK_MS,
                                   description="wait up to this long for an event")] = 0,
    count: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventsPage:
    """Events after ``after`` (state changes, assignments with ``wait_ms``...).

    Poll with the ``last_id`` of the previous page as ``after`` to miss nothing.
    """
    last_id, events = await center.events(_checked_id(after), block_ms, count, via=blocking)
    return EventsPage(last_id=last_id, events=[
        Event.model_validate({**e.fields, "id": e.id, "type": e.type}) for e in events])


@router.get("/kpis", responses={200: {"content": {"application/json": {}}},
                                404: {"model": Problem}})
async def get_kpis(center: CenterDep) -> JSONResponse:
    """The KPI document the simulator stored for this center."""
    doc = await center.kpis()
    if doc is None:
        return JSONResponse({"detail": f"no KPIs stored for center {center.name}"}, 404)
    return JSONResponse(doc)


@router.put("/kpis", responses={200: {"content": {"application/json": {}}}})
async def put_kpis(center: CenterDep,
                   doc: Annotated[dict[str, Any], Body()]) -> JSONResponse:
    """Store a KPI document (any JSON object, up to the request size limit)."""
    try:
        await center.store_kpis(doc)
    except InvalidInput as exc:  # NaN or Infinity; nested deeper than RedisJSON allows
        raise FieldError(["body"], str(exc)) from None
    return JSONResponse(doc)


def _checked_id(after: str) -> str:
    if after != "$" and any(int(part) > U64_MAX for part in after.split("-")):
        raise FieldError(["query", "after"], "stream id parts must be at most 2^64-1")
    return after
