"""Agents, contacts and their states, as stored in the RedisJSON documents; the center's
events, dispatch rounds and queue as Center reads them."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, NamedTuple

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import ErrorDetails

from acd.errors import InvalidInput
from acd.keys import NAME_PATTERN, check_name, check_printable

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

    UNAVAILABLE = "unavailable"
    AVAILABLE = "available"
    BUSY = "busy"  # on a contact
    WRAP_UP = "wrap_up"  # after-contact work: on no contact, available when it ends


class DispatchMode(StrEnum):
    """Who assigns a center's contacts."""

    AUTOMATIC = "automatic"  # the dispatcher services (python -m acd.dispatcher)
    MANUAL = "manual"  # only explicit Center.dispatch() calls: a lesson's own dispatcher


class AgentChoice(StrEnum):
    """Which qualified available agent a contact gets (acd.agent_choice)."""

    LONGEST_AVAILABLE = "longest_available"  # LAA: the default, the original demo's
    FEWEST_SKILLS = "fewest_skills"  # fewest skills in all, then LAA: generalists stay free


class ContactState(StrEnum):
    QUEUED = "queued"
    ASSIGNED = "assigned"
    COMPLETED = "completed"
    ABANDONED = "abandoned"


def _unique_skills(skills: list[str]) -> list[str]:
    dupes = sorted({s for s in skills if skills.count(s) > 1})
    if dupes:
        raise ValueError(f"skills must be unique; repeated: {', '.join(dupes)}")
    return skills


class AgentIn(StrictInput):
    """What a caller gives to create an agent."""

    fname: PersonName
    lname: PersonName
    skills: Annotated[list[Skill], Field(min_length=1, max_length=MAX_SKILLS)]

    _unique = field_validator("skills")(_unique_skills)


class ContactIn(StrictInput):
    """What a caller gives to queue a contact: the skills an agent must all have."""

    skills: Annotated[list[Skill], Field(min_length=1, max_length=MAX_SKILLS)]
    priority: Annotated[int, Field(
        ge=0, le=MAX_PRIORITY,
        description="served as if it had waited priority x the center's seconds per point "
                    "longer (0: no head start; the center's default of 0 seconds per point "
                    "makes every priority 0)")] = 0

    _unique = field_validator("skills")(_unique_skills)

    @property
    def signature(self) -> str:
        """The sorted skill list joined by commas: contacts with one signature are alike."""
        return ",".join(sorted(self.skills))


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
    next_state: AgentState | None = None  # busy or wrap_up: 'unavailable' once asked for
    last_assigned_at: int | None = None  # after its first contact
    wrap_up_until: int | None = None  # while in wrap-up: the ms it ends (server clock)
    created_at: int


class Contact(BaseModel):
    id: str
    skills: list[str]
    state: ContactState
    agent: str | None = None
    queued_at: int
    assigned_at: int | None = None
    ended_at: int | None = None
    priority: int = 0
    # Waiting the priority counts as done already, fixed when queued (priority x the
    # center's ms per point then): its place is as if queued at queued_at - head_start_ms.
    head_start_ms: int = 0

    @property
    def wait_ms(self) -> int | None:
        """Time in queue until assignment, for assigned contacts."""
        return None if self.assigned_at is None else self.assigned_at - self.queued_at


def stored_contact(contact_id: str, raw: str | bytes) -> Contact:
    """A contact document as stored: acd.lua keeps no id in it (RedisJSON's string table,
    see contact_json there), so the id comes from its key."""
    return Contact.model_validate({**json.loads(raw), "id": contact_id})


class Assignment(BaseModel):
    contact: str
    agent: str


class Candidate(BaseModel):
    """An available agent with every skill a contact needs, as LAA ranks them."""

    agent: str
    available_since: int


class CenterStats(BaseModel):
    """Real-time figures of one center plus its cumulative counters."""

    center: str
    open: bool
    dispatch_mode: DispatchMode = DispatchMode.AUTOMATIC
    waiting: int
    oldest_wait_ms: int
    agents: dict[AgentState, int]
    offered: int
    assigned: int
    completed: int
    abandoned: int
    mean_wait_ms: float | None


class CombinationState(StrEnum):
    """Where the waiting contacts' index (acd/lua/acd.lua) holds a skill combination."""

    READY = "ready"  # some available agent may serve it: the next dispatch round looks at it
    PARKED = "parked"  # nobody available could serve it when last looked at: rounds skip it


class CombinationStats(BaseModel):
    """The contacts waiting with one skill combination, and who could serve them."""

    skills: list[str] = Field(description="the skills an agent must all have (sorted)")
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
    # ms until the center's next wrap-up ends (None: none pending): wait no longer.
    wrap_up_in_ms: int | None = None


@dataclass(frozen=True, slots=True)
class QueueView:
    """The queue and the center's switches, read at one instant of the server's clock."""

    now_ms: int
    open: bool
    dispatch_mode: DispatchMode
    length: int
    oldest: list[tuple[str, int]] = field(default_factory=list)  # (contact, queued_at)
