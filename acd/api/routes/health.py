"""GET /health: 200 when this worker's Redis answers PING, 503 otherwise."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from acd.api.deps import RedisDep
from acd.api.schemas import Health

router = APIRouter(tags=["health"])

PING_TIMEOUT = 2.0


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
async def health(redis: RedisDep) -> JSONResponse:
    try:
        ok = bool(await asyncio.wait_for(redis.ping(), timeout=PING_TIMEOUT))
    except (RedisError, OSError, TimeoutError):
        ok = False
    if ok:
        return JSONResponse({"status": "ok", "redis": "ok"})
    return JSONResponse({"status": "unavailable", "redis": "down"}, status_code=503)
