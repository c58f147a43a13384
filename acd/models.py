"""Agents, contacts and their states, as stored in the RedisJSON documents; the center's
events, dispatch rounds and queue as Center reads them."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, NamedTuple

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from acd.errors import InvalidInput
from acd.keys import NAME_PATTERN, check_name, check_printable
from acd.levels import DEFAULT_LEVEL, MAX_LEVEL, MIN_LEVEL, above_default, check_levels, signature
from acd.steps import MAX_STEPS, StepIn, StepTaken, WaitStep, check_sequence

MAX_SKILLS = 32
MAX_NAME = 100
# Priority points a contact may carry: 0 (the default, no head start) to MAX_PRIORITY.
MAX_PRIORITY = 100

# The input rules, one home each (acd.keys holds the checks themselves): the API's bodies,
# path and query parameters and acd.Center's arguments all use these types.
Name = Annotated[
    str, AfterValidator(lambda v: check_name("", v)),
    # The pattern is in the schema for clients; the check above names what is wrong.
    WithJsonSchema({"type": "string", "pattern": NAME_PATTERN}),
]
"""A center, agent id, contact id or skill: part of key names (acd.keys.NAME_PATTERN)."""
Id = Name
Skill = Name
PersonName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME),
                       AfterValidator(lambda v: check_printable("", v))]
"""An agent's first or last name: any printable characters (no controls, no bidi)."""


def whole_ms(field: str, seconds: object, most: float) -> int:
    """A center's duration setting (``field``) in the whole ms it stores: a number of
    seconds from 0 to ``most`` (a bool is not a number here), kept to the ms; else
    InvalidInput naming the field and the value."""
    if (isinstance(seconds, bool) or not isinstance(seconds, int | float)
            or not (math.isfinite(seconds) and 0 <= seconds <= most)):
        raise InvalidInput(f"{field}: {seconds!r} is not a number of seconds from 0 to "
                           f"{most:g}")
    return round(seconds * 1000)


def problem(error: ErrorDetails) -> str:
    """The message of one pydantic error, as the API and acd.Center report it: a check's
    own words without pydantic's "Value error, " prefix; an unknown field named."""
    if error["type"] == "extra_forbidden" and error["loc"]:
        return f"unknown field {str(error['loc'][-1])!r}"
    cause = error.get("ctx", {}).get("error")
    if error["type"] == "value_error" and isinstance(cause, ValueError):
        return str(cause)
    return error["msg"]


class StrictInput(BaseModel):
    """What comes from outside: no coercion ("yes" is not a bool, true is not 1), and a
    field it does not know is refused, not ignored."""

    model_config = ConfigDict(strict=True, extra="forbid")


class AgentState(StrEnum):
    """An agent's state. Only the dispatcher makes an agent busy, and only the end of its
    contact frees it: asking a busy agent to be unavailable sets ``next_state`` (not ready
    after this contact); asking it to be available cancels that, or is refused (409).
    With a center's wrap-up time, the end of a contact leads to wrap_up first (the same
    rules), and the end of that to available (acd.wrap_up)."""

    UNAVAILABLE = "unavailable"  # with a ``reason``: on a break (see BREAK_REASON)
    AVAILABLE = "available"
    BUSY = "busy"  # on a contact
    WRAP_UP = "wrap_up"  # after-contact work: on no contact, available when it ends
    LOGGED_OUT = "logged_out"  # not at work: opening the center leaves it so
    OFFERED = "offered"  # reserved for one contact until it answers (acd.offers)


# A break is 'unavailable' with a reason code, not a state of its own: real ACDs' "not
# ready" with a reason, and every rule about an agent who takes no contact applies to it
# unchanged (acd/lua/03_agent_states.lua, "Agent states"). The code is part of events and
# statistics: short.
BREAK_REASON = r"^[a-z][a-z0-9_]{0,31}$"
_BREAK_REASON = re.compile(BREAK_REASON)


def check_reason(reason: str) -> str:
    """Return ``reason`` if it is a break reason code, else raise ValueError saying why."""
    if not isinstance(reason, str) or not _BREAK_REASON.fullmatch(reason):
        raise ValueError(f"break reason {reason!r} is not valid: a code of 1-32 lowercase "
                         "letters, digits or '_', starting with a letter (e.g. 'lunch')")
    return reason


BreakReason = Annotated[
    str, AfterValidator(check_reason), WithJsonSchema({"type": "string", "pattern": BREAK_REASON})]


class DispatchMode(StrEnum):
    """Who assigns a center's contacts."""

    AUTOMATIC = "automatic"  # the dispatcher services (python -m acd.dispatcher)
    MANUAL = "manual"  # only explicit Center.dispatch() calls: a lesson's own dispatcher


class AgentChoice(StrEnum):
    """Which qualified available agent a contact gets (acd.agent_choice)."""

    LONGEST_AVAILABLE = "longest_available"  # LAA: the default, the original demo's
    FEWEST_SKILLS = "fewest_skills"  # fewest skills in all, then LAA: generalists stay free
    # the highest lowest level over the contact's skills, then LAA (acd.proficiency)
    BEST_PROFICIENCY = "best_proficiency"


class ContactState(StrEnum):
    QUEUED = "queued"
    OFFERED = "offered"  # to one agent, until it answers or the offer times out (acd.offers)
    ASSIGNED = "assigned"
    COMPLETED = "completed"
    ABANDONED = "abandoned"
    CLOSED = "closed"  # a step by waiting time ended it (its maximum wait): acd.steps


def _unique_skills(skills: list[str]) -> list[str]:
    dupes = sorted({s for s in skills if skills.count(s) > 1})
    if dupes:
        raise ValueError(f"skills must be unique; repeated: {', '.join(dupes)}")
    return skills


Levels = Annotated[dict[str, int], Field(
    max_length=MAX_SKILLS, json_schema_extra={"additionalProperties": {
        "type": "integer", "minimum": MIN_LEVEL, "maximum": MAX_LEVEL}})]
"""skill -> level 1-5 (acd.levels); checked against the skills by the model using it."""


class AgentIn(StrictInput):
    """What a caller gives to create an agent."""

    fname: PersonName
    lname: PersonName
    skills: Annotated[list[Skill], Field(min_length=1, max_length=MAX_SKILLS)]
    levels: Levels = Field(default_factory=dict, description=(
        "level 1-5 of some of the skills (acd.levels); a skill not named here is at level "
        f"{DEFAULT_LEVEL}, the level of merely having it"))

    _unique = field_validator("skills")(_unique_skills)

    @model_validator(mode="after")
    def _levels_of_its_skills(self) -> AgentIn:
        check_levels("levels", self.levels, self.skills)
        return self

    def stored(self) -> str:
        """The document acd_agent_create gets: levels only above 1, none when none."""
        doc = self.model_dump(exclude={"levels"})
        if above_default(self.levels):
            doc["levels"] = above_default(self.levels)
        return json.dumps(doc)


class ContactIn(StrictInput):
    """What a caller gives to queue a contact: the skills an agent must all have."""

    skills: Annotated[list[Skill], Field(min_length=1, max_length=MAX_SKILLS)]
    priority: Annotated[int, Field(
        ge=0, le=MAX_PRIORITY,
        description="served as if it had waited priority x the center's seconds per point "
                    "longer (0: no head start; the center's default of 0 seconds per point "
                    "makes every priority 0)")] = 0
    steps: Annotated[list[StepIn] | None, Field(
        max_length=MAX_STEPS,
        description="steps by waiting time (acd.steps): relax or overflow its skills, or "
                    "close it, once it has waited after_s. None: the center's default for "
                    "its skills, if any; []: none")] = None

    min_levels: Levels = Field(default_factory=dict, description=(
        "the lowest level 1-5 an agent needs in some of the skills (acd.levels; "
        "a skill not named here: any level)"))

    _unique = field_validator("skills")(_unique_skills)

    @model_validator(mode="after")
    def _minimums_and_steps(self) -> ContactIn:
        check_levels("min_levels", self.min_levels, self.skills)
        if self.steps:
            check_sequence(self.skills, self.steps, bool(above_default(self.min_levels)))
        return self

    @property
    def signature(self) -> str:
        """The sorted skill list joined by commas, each minimum level above 1 after its
        skill ("Billing:3,English"): contacts with one signature are alike."""
        return signature(self.skills, self.min_levels)

    @property
    def stored_min_levels(self) -> str:
        """The minimums acd_contact_create stores (above 1 only), '' when none."""
        mins = above_default(self.min_levels)
        return json.dumps(mins) if mins else ""


class AgentNames(StrictInput):
    """An agent's two names (both are given together)."""

    fname: PersonName
    lname: PersonName


class Agent(BaseModel):
    id: str
    fname: str
    lname: str
    skills: list[str]
    state: AgentState
    # Stored only while they mean something (a JSON.MERGE with null deletes a member):
    available_since: int | None = None  # while available; its score in its skill sets
    contact: str | None = None  # while busy
    next_state: AgentState | None = None  # busy, wrap_up, offered: what it asked to be next
    reason: str | None = None  # while unavailable on a break: its reason code
    next_reason: str | None = None  # the break reason of a next_state 'unavailable'
    last_assigned_at: int | None = None  # after its first contact
    wrap_up_until: int | None = None  # while in wrap-up: the ms it ends (server clock)
    offer_until: int | None = None  # while offered a contact: its deadline (server clock)
    missed_offers: int | None = None  # offers missed in a row (none since the last accept)
    created_at: int
    levels: dict[str, int] = Field(default_factory=dict, description=(
        "every skill's level 1-5 (acd.levels: 1 unless set higher)"))

    @model_validator(mode="after")
    def _every_skill_levelled(self) -> Agent:
        # The document stores levels above 1 only: the others are the default.
        self.levels = {s: int(self.levels.get(s, DEFAULT_LEVEL)) for s in self.skills}
        return self

    def level(self, skill: str) -> int:
        """The agent's level of ``skill`` (0: it does not have it)."""
        return self.levels.get(skill, 0)


class Contact(BaseModel):
    id: str
    skills: list[str]
    state: ContactState
    agent: str | None = None  # while assigned, or offered to that agent
    queued_at: int
    offer_until: int | None = None  # while offered: the offer's deadline (server clock)
    assigned_at: int | None = None
    ended_at: int | None = None
    priority: int = 0
    min_levels: dict[str, int] = Field(default_factory=dict, description=(
        "the lowest level an agent needs in some skills (acd.levels; others: any)"))
    # Waiting the priority counts as done already, fixed when queued (priority x the
    # center's ms per point then): its place is as if queued at queued_at - head_start_ms.
    head_start_ms: int = 0
    # Steps by waiting time (acd.steps), only when it has some: skills above are what it
    # needs now; steps_taken says what it needed before and when that changed.
    steps: list[WaitStep] | None = None
    steps_taken: list[StepTaken] = []
    close_reason: str | None = None  # closed: the step's reason

    @property
    def wait_ms(self) -> int | None:
        """Time in queue until assignment, for assigned contacts."""
        return None if self.assigned_at is None else self.assigned_at - self.queued_at


def stored_contact(contact_id: str, raw: str | bytes | dict[str, Any]) -> Contact:
    """A contact document as stored: acd/lua/08_contacts.lua keeps no id in it
    (RedisJSON's string table, see contact_json there), so the id comes from its key.
    ``raw``: JSON text, or the document decoded already (see acd.commands.json_text)."""
    doc = raw if isinstance(raw, dict) else json.loads(raw)
    return Contact.model_validate({**doc, "id": contact_id})


class Assignment(BaseModel):
    contact: str
    agent: str


class Candidate(BaseModel):
    """An available agent with every skill a contact needs, as LAA ranks them."""

    agent: str
    available_since: int


class OrderRule(StrEnum):
    """Why a dispatch round served a contact when it did (acd.explanation)."""

    ARRIVAL = "arrival"  # the oldest contact an available agent could serve (FIFO)
    PRIORITY = "priority"  # its head start put it before contacts that arrived earlier


class Decider(StrEnum):
    """What made the winner first among the qualified agents (acd.explanation)."""

    LONGEST_AVAILABLE = "longest_available"  # available earlier than the runner-up
    FEWEST_SKILLS = "fewest_skills"  # fewer skills than the runner-up
    AGENT_ID = "agent_id"  # a tie on every score: Redis orders equal scores by member


class ExplainedCandidate(BaseModel):
    """A qualified available agent a dispatch round chose from, as it was then."""

    agent: str
    rank: int = Field(description="1: the winner; the order of the rule")
    score: float = Field(description="its score in the sets the round walked: the rule's "
                         "sort key (available_since, or skills x 1e13 + available_since)")
    available_since: int = Field(description="ms it had been available since")
    skills: int | None = Field(None, description="its skill count (fewest_skills)")


class ExplainedHead(BaseModel):
    """A contact the round served this one before: the next of its own combination, or
    the oldest of another combination some available agent could serve."""

    combination: str = Field(description="its skill combination ('a,b')")
    contact: str | None = Field(None, description="named for the same combination only")
    virtual_arrival: float = Field(description="its place: queue score minus head start")
    overtaken: bool = Field(description="it ranks before this contact's real arrival: "
                            "without its head start this contact would have waited for it")


class Explanation(BaseModel):
    """Why a contact went to its agent, recorded by the dispatch round that decided
    (GET /v1/centers/{c}/contacts/{id}/explanation, acd.explanation)."""

    contact: str
    agent: str
    assigned_at: int | None = Field(
        description="None while it is offered to the agent (acd.offers): not accepted yet")
    skills: list[str]
    rule: str = Field(description="the agent choice that chose (AgentChoice values)")
    decided_by: Decider
    candidates: list[ExplainedCandidate] = Field(
        description="the first qualified agents the round met, winner first")
    qualified: int = Field(description="qualified agents on the page the walk chose from "
                           "(candidates lists the first few); any other ranks after them")
    walked: tuple[str, int, int] = Field(
        description="the smallest set the walk read in order: skill, size, entries read")
    order: OrderRule
    queued_at: int
    priority: int
    head_start_ms: int
    virtual_arrival: float
    served_before: list[ExplainedHead] = Field(
        description="contacts the round had read that ranked after this one")
    summary: str = Field(description="the same, in one sentence")


class CenterStats(BaseModel):
    """Real-time figures of one center plus its cumulative counters."""

    center: str
    open: bool
    dispatch_mode: DispatchMode = DispatchMode.AUTOMATIC
    waiting: int
    oldest_wait_ms: int
    agents: dict[AgentState, int]
    breaks: dict[str, int] = Field(default_factory=dict,
                                   description="agents unavailable on a break, per reason")
    offered: int
    assigned: int
    completed: int
    abandoned: int
    mean_wait_ms: float | None
    # Steps by waiting time (acd.steps) and abandonment's wait: 0 / None when none.
    closed: int = 0
    relaxed: int = 0
    overflowed: int = 0
    mean_abandon_wait_ms: float | None = None


class CombinationState(StrEnum):
    """Where the waiting contacts' index (acd/lua/02_queue_index.lua) holds a skill combination."""

    READY = "ready"  # some available agent may serve it: the next dispatch round looks at it
    PARKED = "parked"  # nobody available could serve it when last looked at: rounds skip it


class CombinationStats(BaseModel):
    """The contacts waiting with one skill combination, and who could serve them."""

    skills: list[str] = Field(description="the skills an agent must all have (sorted)")
    min_levels: dict[str, int] = Field(default_factory=dict, description="the minimum "
                                       "levels above 1 these contacts ask for (acd.levels)")
    waiting: int = Field(description="contacts waiting with exactly these skills")
    oldest_wait_ms: int = Field(description="how long the oldest of them has waited")
    state: CombinationState = Field(description="ready: a dispatch round will look at it; "
                                    "parked: nobody available could serve it")
    eligible: int = Field(description="agents having every skill of the combination, "
                          "whatever their state")
    available: int = Field(description="of those, how many are available now")


class WaitingCombinations(BaseModel):
    """Waiting contacts per skill combination, oldest wait first (acd.stats)."""

    center: str
    waiting: int = Field(description="contacts in the queue")
    total: int = Field(description="skill combinations with waiting contacts")
    complete: bool = Field(description="false when there were more parked combinations "
                           "than one look reads: older ones may be missing from the list")
    combinations: list[CombinationStats] = Field(
        description="at most `limit` combinations, the longest waiting first")


# Plain dataclasses, not pydantic: the dispatcher, the simulator and the benchmark handle
# thousands of these per second, and nothing here comes from outside to be validated.
@dataclass(frozen=True, slots=True)
class CenterEvent:
    """One entry of a center's events stream (every state change, see acd.lifecycle)."""

    id: str  # stream id "<server ms>-<seq>"
    type: str
    fields: dict[str, str]  # every field of the entry, "type" included

    @property
    def ms(self) -> float:
        """When it happened: the server's clock in ms (the stream id's first part)."""
        return float(self.id.split("-", 1)[0])


class EventPage(NamedTuple):
    """Events read after an id, and the id to read after next time."""

    last_id: str
    events: list[CenterEvent]


@dataclass(frozen=True, slots=True)
class SkillDeletion:
    """What deleting a skill did."""

    skill: str
    agents: int  # agents that had it
    abandoned: int  # waiting contacts that needed it, abandoned (only when forced)


@dataclass(frozen=True, slots=True)
class DispatchRound:
    """What one acd_dispatch call did."""

    pairs: list[tuple[str, str]]  # (contact, agent) assigned, in assignment order
    wake_id: str  # the last wake-stream id it saw: block after it to miss no wake-up
    # ms until the center's next wrap-up ends or step by waiting time (acd.steps) is due
    # (None: none pending): wait no longer.
    wrap_up_in_ms: int | None = None


@dataclass(frozen=True, slots=True)
class QueueView:
    """The queue and the center's switches, read at one instant of the server's clock."""

    now_ms: int
    open: bool
    dispatch_mode: DispatchMode
    length: int
    oldest: list[tuple[str, int]] = field(default_factory=list)  # (contact, queued_at)
