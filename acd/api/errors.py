"""How errors become HTTP responses.

422 validation (field-level ``detail`` list, like FastAPI's, without echoing the input),
404 NotFound, 409 AlreadyExists / InvalidState, 429 when a stated limit is reached (a
center's cap of queued contacts, ACD_MAX_QUEUED; every connection of this worker's pool busy
for REDIS_POOL_TIMEOUT), 503 when Redis cannot be reached or cannot write for now (a replica
after failover, too few replicas for min-replicas-to-write, loading), 507 when Redis is
full (maxmemory under noeviction: it refused the write before running it, so nothing was
written; reads and what ends work still run). 429, 503 and 507 carry Retry-After.
Anything else is a bug and stays a 500: the schema test looks for them.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from acd.connection import PoolExhausted, is_transient
from acd.errors import Conflict, InvalidInput, NotDurable, NotFound, Overloaded
from acd.models import problem

log = logging.getLogger("acd.api")

# "agent id 'x' is not valid ...", "skills.0: String should ...", "state 'busy': must ..."
_FIELD = re.compile(r"^([A-Za-z_][A-Za-z0-9_. ]*?)(?::| ')")


class FieldError(InvalidInput):
    """An input problem the API found itself, with the location of the field."""

    def __init__(self, loc: list[str | int], msg: str) -> None:
        super().__init__(msg)
        self.loc = loc
        self.msg = msg


def validation_response(items: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": items})


async def _request_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    items = [
        {"loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
         "msg": problem(e), "type": str(e.get("type", "value_error"))}
        for e in exc.errors()
    ]
    return validation_response(items)


async def _http_error(request: Request, exc: Exception) -> Response:
    """FastAPI answers 400 to a body it cannot decode at all (bytes that are not UTF-8);
    every other malformed input is a 422, so this one is too, saying so."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
        return validation_response([{"loc": ["body"], "type": "json_invalid",
                                     "msg": "the body is not JSON text in UTF-8"}])
    return await http_exception_handler(request, exc)


async def _invalid_input(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidInput)
    if isinstance(exc, FieldError):
        return validation_response([{"loc": exc.loc, "msg": exc.msg, "type": "invalid_input"}])
    message = str(exc)
    match = _FIELD.match(message)
    field = match.group(1).strip() if match else "input"
    loc: list[str | int] = [int(p) if p.isdigit() else p for p in field.split(".")]
    return validation_response([{"loc": loc, "msg": message, "type": "invalid_input"}])


async def _not_found(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=404, content={"detail": f"not found: {exc}"})


async def _conflict(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=409, content={"detail": str(exc)})


async def _redis_down(request: Request, exc: Exception) -> JSONResponse:
    log.warning("%s %s: Redis unavailable: %s", request.method, request.url.path, exc)
    return JSONResponse(status_code=503, content={"detail": "Redis is unavailable; retry"},
                        headers={"Retry-After": "1"})


async def _overloaded(request: Request, exc: Exception) -> JSONResponse:
    """A stated limit, not an outage: Redis is fine, this request came at a busy moment."""
    log.info("%s %s: limit reached: %s", request.method, request.url.path, exc)
    return JSONResponse(status_code=429, content={"detail": f"limit reached: {exc}"},
                        headers={"Retry-After": "1"})


FULL_RETRY_AFTER_S = 30  # memory comes back as ended contacts expire, or from an operator


async def _redis_full(request: Request, exc: Exception) -> JSONResponse:
    """Redis is full: 507 Insufficient Storage, not 503: retrying soon rarely helps, and a
    client (or its operator) can act on it: end contacts, delete a center, raise maxmemory."""
    log.warning("%s %s: Redis is full: %s", request.method, request.url.path, exc)
    return JSONResponse(
        status_code=507, headers={"Retry-After": str(FULL_RETRY_AFTER_S)},
        content={"detail": "Redis is full (maxmemory reached; its policy, noeviction, never "
                           "evicts ACD data): nothing was written. Ending contacts and "
                           "deleting centers still work and free memory; or raise maxmemory."})


async def _redis_reply(request: Request, exc: Exception) -> JSONResponse:
    # "Not now" replies (failover, min-replicas, loading) are the same the dispatchers retry.
    if is_transient(exc):
        return await _redis_down(request, exc)
    raise exc  # anything else is a bug: a 500 the tests must see


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(InvalidInput, _invalid_input)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(Conflict, _conflict)
    app.add_exception_handler(NotDurable, _redis_down)
    app.add_exception_handler(Overloaded, _overloaded)
    app.add_exception_handler(PoolExhausted, _overloaded)
    app.add_exception_handler(RedisConnectionError, _redis_down)
    app.add_exception_handler(RedisTimeoutError, _redis_down)
    app.add_exception_handler(OutOfMemoryError, _redis_full)
    app.add_exception_handler(ResponseError, _redis_reply)
