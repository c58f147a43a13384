"""One contact center: everything one can do to it or ask of it.

Agents, skills, contacts, dispatch rounds and the KPI document are here; the rest comes
from Center's parts (acd.center_part), each in its feature's module: the events stream,
wake-ups and the server's clock (acd.streams), the queue, counters and statistics
(acd.stats), opening, closing and deleting (acd.bulk), priorities, the agent choice,
wrap-up, levels, explanations, steps by waiting time and offers. Routes, dispatchers,
the simulator, widgets and benchmarks all go through Center, so each is read and written
in one place.

Every write that touches several keys is one Redis Function call (acd/lua/), so it
is atomic and needs no client-side lock. Arguments are validated here, before they become
key names; a bad one raises InvalidInput and writes nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from acd import center_keys, durable
from acd.agent_choice import AgentChoiceMixin
from acd.bulk import CenterBulk
from acd.commands import command, json_get, json_get_raw
from acd.errors import InvalidInput, NotFound
from acd.explanation import CenterExplanations
from acd.functions import Functions, fcall
from acd.keys import CENTERS, CENTERS_STREAM, Keys, valid_name
from acd.models import (
    Agent,
    AgentIn,
    AgentNames,
    AgentState,
    Assignment,
    Candidate,
    Contact,
    ContactIn,
    DispatchMode,
    DispatchRound,
    check_reason,
    stored_contact,
    valid_flag,
    validated,
)
from acd.offers import CenterOffers
from acd.priority import CenterPriority
from acd.proficiency import CenterProficiency
from acd.relaxation import CenterRelaxation
from acd.settings import get_settings
from acd.stats import CenterStatistics
from acd.steps import stored_json
from acd.streams import CenterStreams
from acd.wrap_up import CenterWrapUp

# A round holds Redis for 60-150 µs per assignment (a fast day, a slow one): 25 keep every
# call under 5 ms, and assign no slower than 50 did (README, Performance).
DEFAULT_BATCH = 25
DEFAULT_BUDGET = 200  # skill combinations one dispatch call may look at (a few µs each)


class Center(AgentChoiceMixin, CenterStreams, CenterPriority, CenterWrapUp, CenterProficiency,
             CenterExplanations, CenterRelaxation, CenterOffers, CenterStatistics, CenterBulk):
    """A contact center stored under the hash tag ``{acd:<name>}``; events, wake-ups and
    the clock from :class:`acd.streams.CenterStreams`, the queue, counters and
    statistics from acd.stats, opening, closing and deleting (skills, the center) from
    acd.bulk, priorities from acd.priority, the
    agent choice from acd.agent_choice, the wrap-up time from acd.wrap_up, agents' levels
    from acd.proficiency, assignments' explanations from acd.explanation, steps by
    waiting time from acd.relaxation, offers from acd.offers."""

    def __init__(self, redis: Redis, name: str | None = None) -> None:
        self.redis = redis
        self.name = valid_name("center", name or get_settings().acd_center)
        self.keys = Keys(self.name)
        self._fn = Functions(redis, self.keys)

    async def register(self) -> None:
        """Add the center to the set dispatchers serve; announce it if it is new there.

        Every write that can give a center work calls it: one SADD, not remembered in the
        process, because another process may have deleted the center meanwhile."""
        if await self.redis.sadd(CENTERS, self.name):
            await self.redis.xadd(CENTERS_STREAM, {"center": self.name}, maxlen=1000,
                                  approximate=True)

    # -- agents ---------------------------------------------------------------------
    async def create_agent(
        self, agent_id: str, fname: str, lname: str, skills: Iterable[str],
        available: bool = False, levels: Mapping[str, int] | None = None,
    ) -> Agent:
        """``levels``: skill -> 1-5 for some of its skills (acd.proficiency; others: 1)."""
        valid_name("agent id", agent_id)
        spec = validated(AgentIn, fname=fname, lname=lname, skills=list(skills),
                         levels=dict(levels or {}))
        await self.register()
        raw = await self._fn.agent_create(agent_id, spec.stored(),
                                          valid_flag("available", available))
        return Agent.model_validate_json(raw)

    async def get_agent(self, agent_id: str) -> Agent:
        raw = await json_get_raw(self.redis, self.keys.agent(valid_name("agent id", agent_id)))
        if raw is None:
            raise NotFound(f"agent {agent_id}")
        return Agent.model_validate_json(raw)

    async def get_agents(self, agent_ids: Sequence[str]) -> list[Agent | None]:
        """The agents with these ids, in order (one JSON.MGET); None for one not found."""
        if not agent_ids:
            return []
        keys = [self.keys.agent(valid_name("agent id", i)) for i in agent_ids]
        docs = await command(self.redis, "JSON.MGET", *keys, ".")
        return [None if d is None else Agent.model_validate_json(d) for d in docs]

    async def list_agents(self) -> list[Agent]:
        ids = sorted(await cast(Any, self.redis.smembers(self.keys.agents)))
        return [a for a in await self.get_agents(ids) if a is not None]

    async def update_agent(self, agent_id: str, fname: str, lname: str) -> Agent:
        valid_name("agent id", agent_id)
        names = validated(AgentNames, fname=fname, lname=lname)
        raw = await self._fn.agent_update(agent_id, json.dumps(names.fname),
                                          json.dumps(names.lname))
        return Agent.model_validate_json(raw)

    async def delete_agent(self, agent_id: str) -> None:
        await self._fn.agent_delete(valid_name("agent id", agent_id))

    async def set_agent_state(self, agent_id: str, state: AgentState | str,
                              reason: str | None = None) -> Agent:
        """Make an agent available, unavailable (on a break, with a ``reason`` code) or
        logged out. An agent on a contact keeps it: another state then takes effect when
        the contact ends (``next_state``), and 'available' cancels that or raises
        InvalidState naming the contact."""
        valid_name("agent id", agent_id)
        try:
            wanted = AgentState(state)
        except ValueError:
            raise InvalidInput(f"state {state!r}: must be 'available', 'unavailable' or "
                               "'logged_out'") from None
        if wanted in (AgentState.BUSY, AgentState.WRAP_UP):
            raise InvalidInput(f"state {wanted.value!r} is set by the ACD, not by callers")
        if reason is not None:
            if wanted is not AgentState.UNAVAILABLE:
                raise InvalidInput(f"reason {reason!r}: only a break has one (state "
                                   f"'unavailable', not {wanted.value!r})")
            try:
                check_reason(reason)
            except ValueError as exc:
                raise InvalidInput(str(exc)) from None
        return Agent.model_validate_json(
            await self._fn.agent_state(agent_id, wanted.value, reason or ""))

    async def start_break(self, agent_id: str, reason: str) -> Agent:
        """Unavailable with a reason code ('lunch'): after its contact, if on one."""
        return await self.set_agent_state(agent_id, AgentState.UNAVAILABLE, reason)

    async def log_out(self, agent_id: str) -> Agent:
        return await self.set_agent_state(agent_id, AgentState.LOGGED_OUT)

    async def set_available(self, agent_id: str) -> Agent:
        return await self.set_agent_state(agent_id, AgentState.AVAILABLE)

    async def set_unavailable(self, agent_id: str) -> Agent:
        return await self.set_agent_state(agent_id, AgentState.UNAVAILABLE)

    # -- skills ---------------------------------------------------------------------
    async def add_skill(self, agent_id: str, skill: str) -> Agent:
        raw = await self._fn.agent_skill(
            valid_name("agent id", agent_id), valid_name("skill", skill), "add")
        return Agent.model_validate_json(raw)

    async def remove_skill(self, agent_id: str, skill: str) -> Agent:
        """NotFound if the agent lacks it; InvalidState if it is the agent's last skill
        (or its others are being deleted): an agent keeps at least one."""
        raw = await self._fn.agent_skill(
            valid_name("agent id", agent_id), valid_name("skill", skill), "remove")
        return Agent.model_validate_json(raw)

    async def list_skills(self) -> list[str]:
        return sorted(await cast(Any, self.redis.smembers(self.keys.skills)))

    # -- the center -----------------------------------------------------------------
    async def set_dispatch_mode(self, mode: DispatchMode | str) -> DispatchMode:
        """Who assigns this center's contacts: 'automatic' (the dispatcher services) or
        'manual' (only explicit dispatch calls, e.g. a lesson's own dispatcher). Returns
        the previous mode."""
        try:
            wanted = DispatchMode(mode)
        except ValueError:
            raise InvalidInput(f"dispatch mode {mode!r}: must be 'automatic' or "
                               "'manual'") from None
        await self.register()
        return DispatchMode(await self._fn.dispatch_mode(wanted.value))

    async def dispatch_mode(self) -> DispatchMode:
        mode = await cast(Any, self.redis.hget(self.keys.meta, "dispatch"))
        return DispatchMode(mode or DispatchMode.AUTOMATIC)

    # -- contacts -------------------------------------------------------------------
    async def create_contact(self, skills: Iterable[str], contact_id: str | None = None,
                             priority: int = 0, min_levels: Mapping[str, int] | None = None,
                             steps: Sequence[Any] | None = None) -> Contact:
        """Queue a contact needing every one of ``skills``; ``priority``: acd.priority;
        ``min_levels``: the lowest level an agent needs in some of them (acd.proficiency);
        ``steps`` by waiting time: acd.steps (None: the center's default, if any)."""
        cid = valid_name("contact id", contact_id) if contact_id else uuid.uuid4().hex
        spec = validated(ContactIn, skills=list(skills), priority=priority,
                         min_levels=dict(min_levels or {}),
                         steps=None if steps is None else list(steps))
        await self.register()
        settings = get_settings()
        call = self._fn.contact_create_call(cid, json.dumps(sorted(spec.skills)), spec.signature,
                                            settings.acd_max_queued, spec.priority,
                                            spec.stored_min_levels,
                                            stored_json(spec.steps),
                                            settings.contact_keep_seconds)
        if settings.acd_wait_replicas <= 0:
            return Contact.model_validate_json(str(await fcall(self.redis, *call)))
        raw, acked = await durable.replicated_fcall(
            self.redis, call, self.keys.meta, settings.acd_wait_replicas,
            settings.acd_wait_timeout_ms)
        durable.require(f"contact {cid}", acked, settings.acd_wait_replicas)
        return Contact.model_validate_json(str(raw))

    async def get_contact_replicated(self, contact_id: str) -> Contact | None:
        """The contact (None: not found), read and WAITed for on one connection: a retried
        create confirms the contact it finds only then (acd.durable). NotDurable."""
        settings = get_settings()
        if settings.acd_wait_replicas <= 0:
            return (await self.get_contacts([contact_id]))[0]
        (raw,), acked = await durable.replicated_calls(
            self.redis, [("JSON.GET", self.keys.contact(valid_name("contact id", contact_id)),
                          ".")],
            self.keys.meta, settings.acd_wait_replicas, settings.acd_wait_timeout_ms)
        if isinstance(raw, Exception):
            raise raw
        if raw is None:
            return None
        durable.require(f"contact {contact_id}", acked, settings.acd_wait_replicas)
        return stored_contact(contact_id, raw)

    async def get_contact(self, contact_id: str) -> Contact:
        key = self.keys.contact(valid_name("contact id", contact_id))
        raw = await json_get_raw(self.redis, key)
        if raw is None:
            raise NotFound(f"contact {contact_id}")
        return stored_contact(contact_id, raw)

    async def get_contacts(self, contact_ids: Sequence[str]) -> list[Contact | None]:
        """The contacts with these ids, in order (one JSON.MGET); None for one not found
        (never created, or ended longer ago than contact_keep_seconds)."""
        if not contact_ids:
            return []
        keys = [self.keys.contact(valid_name("contact id", i)) for i in contact_ids]
        docs = await command(self.redis, "JSON.MGET", *keys, ".")
        return [None if d is None else stored_contact(i, d)
                for i, d in zip(contact_ids, docs, strict=True)]

    async def complete_contact(self, contact_id: str) -> Contact:
        """End an assigned contact; its agent becomes available again (or unavailable,
        if it asked for that while on the contact)."""
        raw = await self._fn.contact_end(
            valid_name("contact id", contact_id), "complete", get_settings().contact_keep_seconds)
        return Contact.model_validate_json(raw)

    async def abandon_contact(self, contact_id: str) -> Contact:
        """The caller hung up while queued: the contact leaves the queue at once."""
        raw = await self._fn.contact_end(
            valid_name("contact id", contact_id), "abandon", get_settings().contact_keep_seconds)
        return Contact.model_validate_json(raw)

    # -- dispatch -------------------------------------------------------------------
    async def dispatch(self, most: int = DEFAULT_BATCH, budget: int = DEFAULT_BUDGET
                       ) -> list[Assignment]:
        """Assign up to ``most`` waiting contacts atomically (see acd_dispatch), in any
        dispatch mode: this is an explicit call, not a dispatcher service's round. A call
        that only advanced agents' wake-ups (bounded work, see wake_parked in
        acd/lua/02_queue_index.lua) is
        followed by another (up to 1,000 calls: a center being deleted assigns nothing and
        finishes no wake-up), so the caller gets the assignments those wake-ups allow."""
        for _ in range(1000):
            done = await self.dispatch_round(most, budget)
            if done.pairs or not await cast(Any, self.redis).llen(self.keys.unpark):
                break
        return [Assignment(contact=c, agent=a) for c, a in done.pairs]

    async def dispatch_round(self, most: int = DEFAULT_BATCH, budget: int = DEFAULT_BUDGET,
                             service: bool = False) -> DispatchRound:
        """One acd_dispatch call: the pairs it assigned and the wake id to block after.
        ``service``: a dispatcher service's round, which assigns nothing in manual mode."""
        pairs, wake_id, wrap_up_in = await self._fn.dispatch(most, budget, service)
        return DispatchRound(pairs, wake_id, wrap_up_in)

    async def candidates(self, skills: Iterable[str]) -> list[Candidate]:
        """Every available agent with all ``skills``, longest available first (ZINTER).

        This is the explanation of an LAA choice, not how dispatch chooses: dispatch
        stops at the first qualified agent instead of building the whole intersection.
        """
        spec = validated(ContactIn, skills=list(skills))
        sets = [self.keys.avail(s) for s in spec.skills]
        rows = await command(self.redis, "ZINTER", len(sets), *sets, "AGGREGATE", "MIN",
                             "WITHSCORES")
        return [Candidate(agent=str(a), available_since=int(float(s))) for a, s in rows]

    # -- KPIs -----------------------------------------------------------------------
    async def store_kpis(self, doc: dict[str, Any]) -> None:
        """Store a KPI document (what the simulator measured); InvalidInput if JSON or
        RedisJSON cannot hold it (NaN, nested too deep)."""
        try:
            text = json.dumps(doc, allow_nan=False)
        except ValueError as exc:
            raise InvalidInput(f"not storable as JSON: {exc}") from None
        try:
            await command(self.redis, "JSON.SET", self.keys.kpis, ".", text)
        except ResponseError as exc:
            raise InvalidInput(f"RedisJSON refused the document: {exc}") from None

    async def kpis(self) -> dict[str, Any] | None:
        """The stored KPI document, None if there is none."""
        return cast(dict[str, Any] | None, await json_get(self.redis, self.keys.kpis))

    async def key_names(self) -> list[str]:
        """Every key of this center that exists (acd.center_keys: SCAN, or the center's
        own indexes for a user that may not SCAN, a workshop learner)."""
        return await center_keys.key_names(self.redis, self.keys)

    async def wipe(self) -> int:
        """Delete every key of this center (never other centers') whatever their state, at
        once: for labs and tests that wipe a center; returns how many."""
        # A workshop learner may not SREM (it would unregister others' centers): theirs
        # stays registered, empty, until python -m lab workshop remove.
        if not center_keys.is_learner(self.redis):
            await self.redis.srem(CENTERS, self.name)
        names = await self.key_names()
        deleted = 0
        for start in range(0, len(names), 500):
            deleted += await self.redis.unlink(*names[start:start + 500])
        return deleted

