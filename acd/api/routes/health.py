"""GET /health: the ACD serves (200) or not (503, the status names why); GET /health/live:
this worker and its Redis answer, whatever the dispatchers do.

/health counts the dispatchers whose heartbeat (acd.service.heartbeat) is recent: an API
that accepts contacts nobody will assign is not healthy. /health/live is for what must
not depend on dispatchers: load balancer checks of the API replicas, and launchers that
start the API before any dispatcher.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from acd.api.deps import RedisDep
from acd.api.schemas import Health, Liveness
from acd.service import HEARTBEAT_WINDOW_S, live_dispatchers

router = APIRouter(tags=["health"])

REDIS_TIMEOUT = 2.0  # seconds for all of a check's Redis calls together

T = TypeVar("T")


async def _bounded(call: Awaitable[T]) -> T | None:
    """The call's result, or None when Redis fails or takes longer than REDIS_TIMEOUT."""
    try:
        return await asyncio.wait_for(call, timeout=REDIS_TIMEOUT)
    except (RedisError, OSError, TimeoutError):
        return None


@router.get("/health", response_model=Health, responses={503: {"model": Health}},
            summary="Is the ACD serving: Redis answers and a dispatcher beats",
            description=f"200 when Redis answers and at least one dispatcher beat within "
                        f"the last {HEARTBEAT_WINDOW_S:g} s; 503 otherwise, `status` "
                        f"saying what is missing (`redis down`, `no dispatcher`).")
async def health(redis: RedisDep) -> JSONResponse:
    count = await _bounded(live_dispatchers(redis))
    if count is None:
        answer = Health(status="redis down", redis="down", dispatchers=None)
    elif count == 0:
        answer = Health(status="no dispatcher", redis="ok", dispatchers=0)
    else:
        answer = Health(status="ok", redis="ok", dispatchers=count)
    return JSONResponse(answer.model_dump(), status_code=200 if count else 503)


@router.get("/health/live", response_model=Liveness, responses={503: {"model": Liveness}},
            summary="Does this API worker answer, with its Redis")
async def live(redis: RedisDep) -> JSONResponse:
    """200 when this worker's Redis answers PING, 503 otherwise; dispatchers do not
    count (see /health)."""
    if await _bounded(redis.ping()):
        return JSONResponse(Liveness(status="ok", redis="ok").model_dump())
    return JSONResponse(Liveness(status="redis down", redis="down").model_dump(),
                        status_code=503)
