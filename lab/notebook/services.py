"""The lab's services seen from a notebook: its REST API and its dispatchers (notebook 06).

``api_client(lab)`` is an httpx client of the REST API: the lab's running server when it
answers for this notebook's Redis, else the same FastAPI app run in the kernel.
``assigned(center, id)`` waits, with a deadline, for the lab's dispatchers to assign a
contact.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from acd import Center, Contact, ContactState, DispatchMode
from acd.api import apikeys
from acd.settings import get_settings
from lab import api_key as lab_api_key
from lab.notebook.session import Lab, LabSetupError

if TYPE_CHECKING:
    import httpx

IN_KERNEL_URL = "http://acd-api.in-process"  # the base URL of the app run in the kernel


def live_api_url(timeout: float = 2.0) -> str | None:
    """The URL of the lab's running REST API when it answers /health/live and uses the same
    Redis as this kernel; None otherwise (before ./start.sh, or a lab on another Redis)."""
    import httpx

    import lab

    info = lab.info()
    if info.environment == "none" or not info.api_url:
        return None
    if info.redis_url and info.redis_url != get_settings().redis_url:
        return None  # that API works on another Redis than this notebook
    try:
        response = httpx.get(f"{info.api_url}/health/live", timeout=timeout)
    except httpx.HTTPError:
        return None
    return info.api_url if response.status_code == 200 else None


def in_kernel(client: httpx.AsyncClient) -> bool:
    """True when ``client`` talks to the app run in this kernel, not to a server."""
    return str(client.base_url).rstrip("/") == IN_KERNEL_URL


@asynccontextmanager
async def api_client(lab: Lab, live: bool | None = None, timeout: float = 10.0
                     ) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client of the ACD's REST API.

    ``live=None`` (default): the lab's running API (``lab.info().api_url``) when it answers
    for this notebook's Redis, else the app in the kernel. ``live=True``: the lab's API,
    or LabSetupError. ``live=False``: the FastAPI app runs *in this kernel*
    (``httpx.ASGITransport``), on this notebook's Redis, with the app's lifespan around it
    as under uvicorn, and with the notebook's center as the default center of the original
    demo's routes. Same code as the server, no socket: it works wherever Redis does.

    The client sends an API key: the lab's (ACD_API_KEY); for the app in the kernel on a
    Redis that does not know that key, a key of the notebook's center alone, revoked when
    the client closes.
    """
    import httpx

    url = None if live is False else live_api_url()
    if live is True and url is None:
        raise LabSetupError("No lab API answers for this notebook's Redis: start the lab "
                            "with ./start.sh, or use the in-kernel app (live=False).")
    key = lab_api_key()
    if url is not None:
        async with httpx.AsyncClient(base_url=url, timeout=timeout,
                                     headers=apikeys.headers(key)) as client:
            yield client
        return
    from acd.api.app import create_app

    settings = get_settings().model_copy(update={
        "redis_url": lab.url, "acd_center": lab.center.name,
        "trusted_hosts": [urlsplit(IN_KERNEL_URL).hostname]})
    app = create_app(settings)
    own_key = None
    if not await apikeys.valid(lab.redis, key):
        key = own_key = await apikeys.create(lab.redis, lab.center.name,
                                             f"in-kernel app of notebook center {lab.center.name}")
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=IN_KERNEL_URL,
                              timeout=timeout, headers=apikeys.headers(key)) as client,
        ):
            yield client
    finally:
        if own_key is not None:
            await apikeys.revoke(lab.redis, own_key)


async def assigned(center: Center, contact_id: str, timeout: float = 5.0) -> Contact:
    """Wait until ``contact_id`` is assigned - by the lab's dispatchers, which serve every
    center in automatic mode - and return it; LabSetupError saying why not at the deadline."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (contact := await center.get_contact(contact_id)).state is ContactState.QUEUED:
        if asyncio.get_running_loop().time() > deadline:
            mode = await center.dispatch_mode()
            why = (f"the center is in {mode.value} dispatch mode: dispatch it yourself"
                   if mode is DispatchMode.MANUAL else
                   "no dispatcher serves it (is the lab running? ./start.sh), or no "
                   "available agent has all its skills")
            raise LabSetupError(f"contact {contact_id} is still queued after {timeout:g} s: "
                                f"{why}.")
        await asyncio.sleep(0.01)
    return contact
