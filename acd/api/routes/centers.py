"""/v1/centers/{center}: open/close, queue, candidates, stats, events and KPIs."""

from __future__ import annotations

import json
from typing import Annotated, Any, cast

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from acd.api.deps import BlockingRedisDep, CenterDep, RedisDep
from acd.api.errors import FieldError
from acd.api.schemas import (
    MAX_BLOCK_MS,
    CenterStateIn,
    CenterStateOut,
    DispatchModeIn,
    DispatchModeOut,
    Event,
    EventsPage,
    Problem,
    QueueEntry,
)
from acd.keys import NAME_PATTERN
from acd.models import MAX_SKILLS, Candidate, CenterStats

router = APIRouter(tags=["center"])

STREAM_ID = r"^(\$|[0-9]{1,20}(-[0-9]{1,20})?)$"
U64_MAX = 2**64 - 1


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


@router.get("/queue", response_model=list[QueueEntry])
async def queue(center: CenterDep, redis: RedisDep,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[QueueEntry]:
    """The oldest waiting contacts, oldest first."""
    rows = await center.queue(limit)
    now = await _now_ms(redis)
    return [QueueEntry(contact=c, queued_at=t, wait_ms=max(0, now - t)) for c, t in rows]


@router.get("/candidates", response_model=list[Candidate])
async def candidates(
    center: CenterDep,
    skills: Annotated[list[Annotated[str, Query(pattern=NAME_PATTERN)]],
                      Query(min_length=1, max_length=MAX_SKILLS)],
) -> list[Candidate]:
    """Every available agent with all ``skills``, longest available first (LAA order)."""
    return await center.candidates(skills)


@router.get("/stats", response_model=CenterStats)
async def stats(center: CenterDep) -> CenterStats:
    return await center.stats()


@router.get("/events", response_model=EventsPage)
async def events(
    center: CenterDep,
    redis: RedisDep,
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
    key = center.keys.events
    start = await _last_id(redis, key) if after == "$" else _checked_id(after)
    if block_ms > 0:
        reply = await cast(Any, blocking.xread({key: start}, count=count, block=block_ms))
    else:  # no BLOCK at all: BLOCK 0 would wait forever
        reply = await cast(Any, redis.xread({key: start}, count=count))
    entries = _entries(reply, key)
    page = [Event.model_validate({**fields, "id": eid, "type": fields.get("type", "")})
            for eid, fields in entries]
    return EventsPage(last_id=entries[-1][0] if entries else start, events=page)


@router.get("/kpis", responses={200: {"content": {"application/json": {}}},
                                404: {"model": Problem}})
async def get_kpis(center: CenterDep, redis: RedisDep) -> JSONResponse:
    """The KPI document the simulator stored for this center."""
    raw = await cast(Any, redis).execute_command("JSON.GET", center.keys.kpis, ".")
    if raw is None:
        return JSONResponse({"detail": f"no KPIs stored for center {center.name}"}, 404)
    return JSONResponse(json.loads(raw))


@router.put("/kpis", responses={200: {"content": {"application/json": {}}}})
async def put_kpis(center: CenterDep, redis: RedisDep,
                   doc: Annotated[dict[str, Any], Body()]) -> JSONResponse:
    """Store a KPI document (any JSON object, up to the request size limit)."""
    try:
        text = json.dumps(doc, allow_nan=False)
    except ValueError as exc:  # NaN or Infinity, which JSON has no words for
        raise FieldError(["body"], f"not storable as JSON: {exc}") from None
    try:
        await cast(Any, redis).execute_command("JSON.SET", center.keys.kpis, ".", text)
    except ResponseError as exc:  # e.g. nested deeper than RedisJSON allows
        raise FieldError(["body"], f"RedisJSON refused the document: {exc}") from None
    return JSONResponse(doc)


async def _now_ms(redis: Redis) -> int:
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def _last_id(redis: Redis, key: str) -> str:
    last = await cast(Any, redis.xrevrange(key, "+", "-", count=1))
    return str(last[0][0]) if last else "0-0"


def _checked_id(after: str) -> str:
    if any(int(part) > U64_MAX for part in after.split("-")):
        raise FieldError(["query", "after"], "stream id parts must be at most 2^64-1")
    return after


def _entries(reply: Any, key: str) -> list[tuple[str, dict[str, str]]]:
    """XREAD's reply in RESP2 ([[key, entries]]) or RESP3 ({key: [entries]}) form."""
    if not reply:
        return []
    if isinstance(reply, dict):
        streams = reply.get(key)
        rows = streams[0] if streams and isinstance(streams[0], list) else streams or []
    else:
        rows = reply[0][1]
    return [(str(eid), {str(k): str(v) for k, v in dict(fields).items()}) for eid, fields in rows]
