"""The FastAPI application: ``python -m uvicorn acd.api.app:app --workers 2``.

Each worker process runs the lifespan once: it creates that worker's Redis clients (one
for ordinary commands, one with a longer socket timeout for blocking event reads) and
makes sure the acd Functions library is loaded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from redis.exceptions import RedisError
from starlette.types import Receive, Scope, Send

from acd.api import docs, errors
from acd.api.auth import (
    AUTH_RESPONSES,
    HostAllowList,
    allowed_hosts,
    center_access,
    default_center_access,
)
from acd.api.deps import single_query_values
from acd.api.limits import MAX_BODY_BYTES, BodySizeLimit
from acd.api.nodelay import set_nodelay
from acd.api.routes import (
    agents,
    centers,
    compat,
    contacts,
    explanations,
    health,
    offers,
    relaxation,
    wrap_up,
)
from acd.api.schemas import MAX_BLOCK_MS
from acd.connection import connect
from acd.functions import load_library
from acd.settings import Settings, get_settings

log = logging.getLogger("acd.api")

DESCRIPTION = """\
A skills-based contact-center ACD on Redis.

* `/v1/centers/{center}/...`: the versioned API (agents, skills, contacts, queue, stats,
  events, KPIs), one center per name.
* `/acd`, `/contact`, `/agent`, `/skill`: the original demo's routes, unchanged payloads,
  on the default center.

Every route but `/health`, `/health/live` and the docs needs an API key, as
`Authorization: Bearer <key>` or `X-API-Key: <key>` (the lab's is `ACD_API_KEY` in `.env`;
`python -m lab apikey add` makes more). A center's key opens that center's routes only.
"""


class ACDApp(FastAPI):
    """FastAPI, plus TCP_NODELAY on each HTTP connection (see acd.api.nodelay)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            set_nodelay(send)
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, max_body_bytes: int = MAX_BODY_BYTES
               ) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = connect(settings=settings)
        blocking = connect(settings=settings, block_ms=MAX_BLOCK_MS)
        app.state.settings = settings
        app.state.redis = redis
        app.state.blocking_redis = blocking
        try:
            await asyncio.wait_for(load_library(redis), timeout=settings.redis_socket_timeout)
        except (RedisError, OSError, TimeoutError) as exc:
            # Not fatal: /health says 503 and the first FCALL loads the library.
            log.warning("could not load the acd library at startup: %s", exc)
        try:
            yield
        finally:
            await blocking.aclose()
            await redis.aclose()

    # docs_url/redoc_url None: FastAPI's docs pages load their assets from a CDN;
    # acd.api.docs serves the same pages with local assets, so they work offline.
    app = ACDApp(title="Redis ACD", version="1.0.0", description=DESCRIPTION,
                 lifespan=lifespan, docs_url=None, redoc_url=None,
                 dependencies=[Depends(single_query_values)])
    app.state.settings = settings
    errors.install(app)
    docs.install(app)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    # Added last, so it runs first: a request for another host gets nothing else.
    app.add_middleware(HostAllowList, hosts=allowed_hosts(settings))
    app.include_router(health.router)  # public: see acd.api.auth
    app.include_router(compat.router, dependencies=[Depends(default_center_access)],
                       responses=AUTH_RESPONSES)
    for module in (agents, contacts, explanations, centers, wrap_up, relaxation, offers):
        app.include_router(module.router, prefix="/v1/centers/{center}",
                           dependencies=[Depends(center_access)], responses=AUTH_RESPONSES)
    return app


app = create_app()
