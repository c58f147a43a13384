"""Who may call the API: an API key on every route but the public ones, scoped to centers;
and a Host allow-list against DNS rebinding.

Keys (acd/api/apikeys.py) come as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.
401 (with ``WWW-Authenticate``) when none comes or it is malformed, unknown or revoked;
403 when it is a center's key and the route is another center's. The messages say what
is wrong and never repeat the secret.

Public, no key: ``/health`` and ``/health/live`` (HAProxy's checks and the launchers poll
them, and they tell nothing of any center: whether Redis answers, how many dispatchers
beat), and the docs (``/docs``, ``/redoc``, their assets, ``/openapi.json``: the schema is
the same as in this repository for everyone, and Swagger UI must load it before the user
can enter a key with its Authorize button). Every other route requires a key, the original
demo's routes too; ``tests/api/test_api_keys.py`` walks the app's routes to check it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from acd.api.apikeys import ApiKey, KeyRejected, verify
from acd.api.deps import RedisDep
from acd.api.schemas import Problem, Responses
from acd.settings import Settings

PUBLIC_PATHS = frozenset({"/health", "/health/live", "/openapi.json", "/docs",
                          "/docs/oauth2-redirect", "/redoc", "/docs-static"})
"""Paths (and mounts) that need no key; every other route requires one."""

_bearer = HTTPBearer(auto_error=False, scheme_name="bearer", bearerFormat="acd_<id>_<secret>",
                     description="An API key: `Authorization: Bearer acd_<id>_<secret>` "
                                 "(ACD_API_KEY in the lab's .env)")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="apiKey",
                       description="The same key in an `X-API-Key` header")

AUTH_RESPONSES: Responses = {
    401: {"model": Problem, "description": "no API key, or an unknown, revoked or "
                                           "malformed one"},
    403: {"model": Problem, "description": "the API key's scope is another center (or "
                                           "another learner's)"},
}


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": 'Bearer realm="acd"'})


async def api_key(
    redis: RedisDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header: Annotated[str | None, Security(_header)],
) -> ApiKey:
    """The stored key the request carries, or 401 saying what is wrong."""
    presented = bearer.credentials if bearer is not None else header
    if not presented:
        raise _unauthorized("missing API key: send 'Authorization: Bearer <key>' or "
                            "'X-API-Key: <key>' (the lab's key is ACD_API_KEY in .env)")
    try:
        return await verify(redis, presented)
    except KeyRejected as exc:
        raise _unauthorized(str(exc)) from None


KeyDep = Annotated[ApiKey, Depends(api_key)]


def _check_scope(key: ApiKey, center: str) -> ApiKey:
    if not key.allows(center):
        scope = (f"learner {key.learner}'s centers ({key.learner}, {key.learner}.*)"
                 if key.learner is not None else f"center {key.center}")
        raise HTTPException(403, f"API key {key.id} is scoped to {scope}: it may not use "
                                 f"center {center[:64]}")
    return key


async def center_access(request: Request, key: KeyDep) -> ApiKey:
    """A key that may use the center of the path (``/v1/centers/{center}/...``). The name
    is compared as sent: a malformed one only an admin key reaches, and it gets its 422."""
    return _check_scope(key, str(request.path_params.get("center", "")))


async def default_center_access(request: Request, key: KeyDep) -> ApiKey:
    """A key that may use the API's default center (the original demo's routes)."""
    settings: Settings = request.app.state.settings
    return _check_scope(key, settings.acd_center)


# -- the Host allow-list --------------------------------------------------------------
def allowed_hosts(settings: Settings) -> list[str]:
    """127.0.0.1, localhost, ::1, the host of API_URL (the HA lab's VIP) and TRUSTED_HOSTS
    (names; ``*.example.org`` for its subdomains; ``*`` for any)."""
    hosts = ["127.0.0.1", "localhost", "::1", urlsplit(settings.api_url).hostname or "",
             *settings.trusted_hosts]
    return list(dict.fromkeys(h.lower() for h in hosts if h))


def _host_name(header: str) -> str:
    if header.startswith("["):  # [::1]:8000
        return header[1:].partition("]")[0].lower()
    return header.rpartition(":")[0].lower() if header.count(":") == 1 else header.lower()


class HostAllowList:
    """400 for a request whose Host is not allowed: a web page that rebinds its own DNS
    name to 127.0.0.1 reaches the API with its own name as Host.

    Starlette's TrustedHostMiddleware does the same check with a bare "Invalid host
    header"; this one names the host and the setting. Also allowed: no Host at all
    (browsers always send one; HAProxy's HTTP/1.0 health checks send none), and the address
    the request came in on (``scope["server"]``: a launcher or balancer asking an HA
    replica by its own IP; a rebinding page's Host is its name, never that address)."""

    def __init__(self, app: ASGIApp, hosts: Sequence[str]) -> None:
        self.app = app
        self.any = "*" in hosts
        self.exact = frozenset(h for h in hosts if not h.startswith("*"))
        self.suffixes = tuple(h[1:] for h in hosts if h.startswith("*."))
        self.hosts = ", ".join(hosts)

    def allows(self, host: str) -> bool:
        return self.any or host in self.exact or host.endswith(self.suffixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = next((v for k, v in scope["headers"] if k == b"host"), None)
            host = _host_name(raw.decode("latin-1")) if raw is not None else None
            server = scope.get("server")
            own = str(server[0]).lower() if server else None
            if host is not None and host != own and not self.allows(host):
                detail = (f"Host {host[:100]!r} is not one this API answers to (it allows "
                          f"{self.hosts}): add it to TRUSTED_HOSTS if it is yours")
                await JSONResponse({"detail": detail}, status_code=400)(scope, receive, send)
                return
        await self.app(scope, receive, send)
