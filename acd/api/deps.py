"""FastAPI dependencies: the settings, the worker's Redis clients, centers, checked names.

Every name that becomes part of a Redis key (center, agent id, contact id, skill) is checked
here (acd.models.Name), before any handler runs: a bad one is a 422 naming what is wrong.
Dependencies are ``async def`` on purpose: FastAPI runs plain ``def`` ones in its thread
pool, which cost more than the Redis call of a typical request.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any, get_origin

from fastapi import Depends, Path, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BeforeValidator
from redis.asyncio import Redis

from acd.center import Center
from acd.models import Name
from acd.settings import Settings

CenterName = Annotated[Name, Path(description="center name")]
AgentId = Annotated[Name, Path(description="agent id")]
ContactId = Annotated[Name, Path(description="contact id")]
SkillPath = Annotated[Name, Path(description="skill")]


def _true_or_false(value: object) -> object:
    # A query string is text, so some coercion is unavoidable; only the two words the
    # schema's boolean means are taken ("yes", "on", "1" would be guesses).
    if isinstance(value, str) and value not in ("true", "false"):
        raise ValueError(f"{value[:20]!r} is not a boolean: use true or false")
    return value


QueryFlag = Annotated[bool, BeforeValidator(_true_or_false)]
"""A boolean query parameter: ``true`` or ``false``, nothing else."""


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_redis(request: Request) -> Redis:
    """The worker's client for ordinary commands (created in the lifespan)."""
    redis: Redis = request.app.state.redis
    return redis


async def get_blocking_redis(request: Request) -> Redis:
    """The worker's client for blocking reads: its socket timeout outlasts the longest block."""
    redis: Redis = request.app.state.blocking_redis
    return redis


SettingsDep = Annotated[Settings, Depends(get_settings)]
RedisDep = Annotated[Redis, Depends(get_redis)]
BlockingRedisDep = Annotated[Redis, Depends(get_blocking_redis)]


async def get_center(center: CenterName, redis: RedisDep) -> Center:
    return Center(redis, center)


async def get_default_center(redis: RedisDep, settings: SettingsDep) -> Center:
    """The center of the original demo's routes: settings.acd_center."""
    return Center(redis, settings.acd_center)


CenterDep = Annotated[Center, Depends(get_center)]
DefaultCenterDep = Annotated[Center, Depends(get_default_center)]


async def single_query_values(request: Request) -> None:
    """422 for a query parameter of one value given several times: FastAPI would take the
    last one silently (``?limit=5000&limit=5`` passes as 5), accepting what the schema
    calls invalid. Parameters declared as lists (``?skills=a&skills=b``) may repeat."""
    # Every request passes here: the route's parameters are looked at only when some
    # query key repeats (rare: only list parameters may).
    counts = Counter(key for key, _ in request.query_params.multi_items())
    several = [key for key, n in counts.items() if n > 1]
    route = request.scope.get("route")
    if not several or not isinstance(route, APIRoute):
        return
    single = {p.alias for p in _query_params(route.dependant)
              if get_origin(p.field_info.annotation) is not list}
    repeated = sorted(key for key in several if key in single)
    if repeated:
        raise RequestValidationError([
            {"type": "single_value", "loc": ("query", key),
             "input": request.query_params.getlist(key),
             "msg": f"query parameter {key!r} takes one value, given {counts[key]}"}
            for key in repeated])


def _query_params(dependant: Dependant) -> list[Any]:
    """The query parameters of a route and of every dependency it has."""
    found = list(dependant.query_params)
    for sub in dependant.dependencies:
        found += _query_params(sub)
    return found
