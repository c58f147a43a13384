"""Typed wrappers of the Redis Functions in ``acd/lua/``: one per function.

The library ``acd`` is the files of acd/lua/ in name order, one after the other (Redis loads
a library as one text; files keep each concept readable on its own). It is loaded with
FUNCTION LOAD REPLACE the first time a client needs it, and again if a server answers that
it does not know it (a fresh or restored server).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, cast

from redis.asyncio import Redis
from redis.exceptions import NoPermissionError, ResponseError

from acd.commands import command
from acd.errors import from_reply
from acd.keys import Keys

LUA_DIR = Path(__file__).parent / "lua"
LIBRARY_FILES = tuple(sorted(LUA_DIR.glob("*.lua")))


def join_library(texts: Sequence[str]) -> str:
    """One library from its files' texts, in order (a blank line between two files)."""
    return "\n".join(texts)


LIBRARY = join_library([path.read_text() for path in LIBRARY_FILES])


async def load_library(redis: Redis) -> None:
    """Load (or replace) the acd library unless the server has this exact code already."""
    listed = await command(redis, "FUNCTION", "LIST", "LIBRARYNAME", "acd", "WITHCODE")
    for lib in listed or []:
        info = _pairs(lib)
        if info.get("library_name") == "acd" and info.get("library_code") == LIBRARY:
            return
    await command(redis, "FUNCTION", "LOAD", "REPLACE", LIBRARY)


def _pairs(flat: Any) -> dict[str, Any]:
    if isinstance(flat, dict):
        return {str(k): v for k, v in flat.items()}
    return {str(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}


async def fcall(redis: Redis, name: str, keys: list[str], args: list[Any]) -> Any:
    """FCALL ``name``; map the library's error replies to acd exceptions."""
    for attempt in (1, 2):
        try:
            return await cast(Any, redis.fcall(name, len(keys), *keys, *args))
        except ResponseError as exc:
            if attempt == 1 and missing_library(exc):
                await reload_library(redis, name)
                continue
            raise_mapped(exc)
    raise AssertionError("unreachable")


async def reload_library(redis: Redis, name: str) -> None:
    """Load the library after a server answered that it does not know ``name``."""
    try:
        await load_library(redis)
    except NoPermissionError:
        raise NoPermissionError(
            f"the acd Functions library is not in Redis ({name} not found) and "
            "this Redis user may not load it: the deployer loads it (the lab's "
            "start does; README, SECURITY)") from None


def raise_mapped(exc: ResponseError) -> NoReturn:
    """Raise the acd exception for the library's error reply ``exc``, or ``exc`` itself."""
    mapped = from_reply(str(exc))
    if mapped is not None:
        raise mapped from None
    raise exc


def missing_library(exc: BaseException) -> bool:
    """The server answered that it does not know the library (a fresh or restored one)."""
    return isinstance(exc, ResponseError) and "Function not found" in str(exc)


class Functions:
    """The library's functions, bound to one center's keys."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def agent_create(self, agent_id: str, doc: str, available: bool) -> str:
        k = self.keys
        return str(await fcall(self.redis, "acd_agent_create",
                           [k.agent(agent_id), k.agents, k.skills],
                           [agent_id, doc, "1" if available else "0"]))

    async def agent_update(self, agent_id: str, fname_json: str, lname_json: str) -> str:
        return str(await fcall(self.redis, "acd_agent_update", [self.keys.agent(agent_id)],
                           [agent_id, fname_json, lname_json]))

    async def agent_delete(self, agent_id: str) -> None:
        k = self.keys
        await fcall(self.redis, "acd_agent_delete", [k.agent(agent_id), k.agents, k.skills],
                    [agent_id])

    async def agent_state(self, agent_id: str, state: str, reason: str = "") -> str:
        return str(await fcall(self.redis, "acd_agent_state", [self.keys.agent(agent_id)],
                           [agent_id, state, reason]))

    async def agent_skill(self, agent_id: str, skill: str, op: str) -> str:
        k = self.keys
        return str(await fcall(self.redis, "acd_agent_skill", [k.agent(agent_id), k.skills],
                           [agent_id, skill, op]))

    async def skill_delete(self, skill: str, force: bool, keep_seconds: int, batch: int
                           ) -> tuple[int, int, bool]:
        """One batch: (agents that lost the skill, waiting contacts abandoned, done)."""
        k = self.keys
        agents, abandoned, done = await fcall(
            self.redis, "acd_skill_delete", [k.skills, k.meta],
            [skill, "force" if force else "", keep_seconds, batch])
        return int(agents), int(abandoned), bool(int(done))

    async def center_state(self, is_open: bool, run: str, agent_ids: Sequence[str]
                           ) -> tuple[int, str]:
        """One batch: (agents that changed state now, the run); -1 changed when a later
        open/close superseded this run. ``run`` '' starts one."""
        k = self.keys
        changed, run_id = await fcall(self.redis, "acd_center_state", [k.meta, k.agents],
                                      ["1" if is_open else "0", run, *agent_ids])
        return int(changed), str(run_id)

    async def center_delete_mark(self, step: str) -> str:
        """'begin' marks the center as being deleted, 'abort' unmarks it (if it was only
        being checked); returns the mark found before ('' if none)."""
        k = self.keys
        return str(await fcall(self.redis, "acd_center_delete", [k.meta, k.agents, k.queue],
                               [step, 1, 0]))

    async def center_delete_purge(self, batch: int, keep_seconds: int) -> tuple[int, int, bool]:
        """One batch: (waiting contacts abandoned, agents deleted, done)."""
        k = self.keys
        abandoned, agents, done = await fcall(
            self.redis, "acd_center_delete", [k.meta, k.agents, k.queue],
            ["purge", batch, keep_seconds])
        return int(abandoned), int(agents), bool(int(done))

    async def contact_create(self, contact_id: str, skills_json: str, signature: str,
                             max_queued: int = 0, priority: int = 0, min_levels_json: str = "",
                             steps_json: str = "", keep_seconds: int = 0) -> str:
        return str(await fcall(self.redis, *self.contact_create_call(
            contact_id, skills_json, signature, max_queued, priority, min_levels_json,
            steps_json, keep_seconds)))

    def contact_create_call(self, contact_id: str, skills_json: str, signature: str,
                            max_queued: int = 0, priority: int = 0, min_levels_json: str = "",
                            steps_json: str = "", keep_seconds: int = 0
                            ) -> tuple[str, list[str], list[Any]]:
        """(function, keys, args) of acd_contact_create, for fcall or a pipeline.
        ``min_levels_json``: minimum levels (acd.levels; '' none); ``steps_json``:
        acd.relaxation's stored steps ('' the center's default, '[]' none);
        ``keep_seconds``: how long a contact a step closes stays readable."""
        k = self.keys
        args: list[Any] = [contact_id, skills_json, signature, max_queued, priority]
        if min_levels_json or steps_json or keep_seconds:  # optional, in their order
            args.append(min_levels_json)
        if steps_json or keep_seconds:
            args += [steps_json, keep_seconds or 3600]
        return ("acd_contact_create",
                [k.contact(contact_id), k.queue, k.waiting_sigs, k.stats, k.meta], args)

    async def contact_end(self, contact_id: str, how: str, keep_seconds: int) -> str:
        k = self.keys
        return str(await fcall(self.redis, "acd_contact_end",
                           [k.contact(contact_id), k.queue, k.waiting_sigs, k.stats],
                           [contact_id, how, keep_seconds]))

    async def dispatch(self, most: int, budget: int, service: bool = False
                       ) -> tuple[list[tuple[str, str]], str, int | None]:
        """Returns the (contact, agent) pairs assigned, the last wake id seen and the ms
        until the next wrap-up ends (None: none pending). ``service``: a dispatcher
        service's round, which assigns nothing in manual mode."""
        k = self.keys
        reply = await fcall(self.redis, "acd_dispatch",
                            [k.queue, k.waiting_sigs, k.stats, k.meta],
                            [most, budget, "service" if service else "explicit"])
        end = 2 + 2 * int(reply[0])
        flat = reply[2:end]
        pairs = [(str(flat[i]), str(flat[i + 1])) for i in range(0, len(flat), 2)]
        wrap_up_in = int(reply[end]) if len(reply) > end else None
        return pairs, str(reply[1]), wrap_up_in

    async def dispatch_mode(self, mode: str) -> str:
        """Set the center's dispatch mode; returns the previous one."""
        return str(await fcall(self.redis, "acd_dispatch_mode", [self.keys.meta], [mode]))

    async def priority_ms(self, ms: int) -> int:
        """Set the ms of waiting a priority point is worth; returns the previous value."""
        return int(await fcall(self.redis, "acd_priority_ms", [self.keys.meta], [ms]))

    async def agent_choice(self, choice: str, run: str, last: bool, agent_ids: Sequence[str]
                           ) -> tuple[int, str, str, bool]:
        """One batch of switching the agent choice: (agents whose flag changed, the run,
        the previous choice, nothing left to do). ``run`` '' starts one."""
        k = self.keys
        changed, run_id, previous, done = await fcall(
            self.redis, "acd_agent_choice", [k.meta, k.agents],
            [choice, run, "1" if last else "0", *agent_ids])
        return int(changed), str(run_id), str(previous), bool(int(done))

    async def explain(self, record: bool) -> bool:
        """Whether dispatch rounds record explanations from now on; returns the previous."""
        return str(await fcall(self.redis, "acd_explain", [self.keys.meta],
                               ["1" if record else "0"])) == "1"
    async def steps_default(self, signature: str, steps_json: str) -> str:
        """Set a combination's default steps ('[]': none); returns the previous JSON."""
        return str(await fcall(self.redis, "acd_steps_default", [self.keys.meta],
                               [signature, steps_json]))

    async def steps_release(self) -> tuple[int, int]:
        """(steps taken, ms until the next is due: 0 more are due, -1 none pending)."""
        taken, step_in = await fcall(self.redis, "acd_steps_release", [self.keys.meta], [])
        return int(taken), int(step_in)
