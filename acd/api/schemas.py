"""Request and response bodies of the REST API that are not the stored documents."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    WithJsonSchema,
    field_validator,
)

from acd.agent_choice import parse
from acd.errors import InvalidInput
from acd.keys import NAME_PATTERN, check_name, check_printable
from acd.levels import MAX_LEVEL, MIN_LEVEL
from acd.models import (
    MAX_SKILLS,
    AgentChoice,
    AgentIn,
    BreakReason,
    ContactIn,
    DispatchMode,
    Id,
    PersonName,
    Skill,
    StrictInput,
)
from acd.priority import MAX_SECONDS_PER_POINT
from acd.wrap_up import MAX_WRAP_UP_SECONDS

NAME_BODY = NAME_PATTERN.removeprefix("^").removesuffix("$")
"""NAME_PATTERN without its anchors, to build the original demo's ``agent:<id>`` keys."""

AGENT_KEY_PATTERN = rf"^agent:{NAME_BODY}$"
CONTACT_KEY_PATTERN = rf"^contact:{NAME_BODY}$"


def _demo_key(kind: str, value: str) -> str:
    """``value`` if it is ``<kind>:<id>`` with a valid id, else ValueError naming why."""
    check_printable("", value)
    prefix, sep, rest = value.partition(":")
    if not sep or prefix != kind:
        raise ValueError(f"a key of the form {kind}:<id> is expected")
    check_name(f"{kind} id", rest)
    return value


AgentKeyStr = Annotated[str, AfterValidator(lambda v: _demo_key("agent", v)),
                        WithJsonSchema({"type": "string", "pattern": AGENT_KEY_PATTERN})]
ContactKeyStr = Annotated[str, AfterValidator(lambda v: _demo_key("contact", v)),
                          WithJsonSchema({"type": "string", "pattern": CONTACT_KEY_PATTERN})]

OnOff = Annotated[StrictInt, Field(ge=0, le=1)]
"""The demo's 1/0 switches: a number, never true/false or "1" (a typed client's bug)."""

MAX_BLOCK_MS = 5000

Responses = dict[int | str, dict[str, Any]]
"""The type of FastAPI's ``responses=`` argument."""

LAST_SKILL = ("the agent's last skill (or its others are being deleted): an agent keeps at "
              "least one")


# -- /v1 ------------------------------------------------------------------------------
class AgentCreate(AgentIn):
    """A new agent: its id, names, skills, and whether it starts available."""

    id: Id
    available: bool = False


class AgentStateIn(StrictInput):
    state: Literal["available", "unavailable", "logged_out"]
    reason: BreakReason | None = Field(
        None, description="a break's reason code ('lunch'), with state unavailable only")


class LevelIn(StrictInput):
    level: int = Field(ge=MIN_LEVEL, le=MAX_LEVEL, description="1 (merely having the skill, "
                       "every skill's default) to 5")


class SkillDeleted(BaseModel):
    skill: str
    agents: int = Field(description="how many agents had the skill")
    abandoned: int = Field(0, description="waiting contacts that needed it, abandoned "
                                          "(only with force=true)")


class CenterStateIn(StrictInput):
    open: bool


class CenterStateOut(BaseModel):
    open: bool
    changed: int = Field(description="how many agents changed state")


class CenterDeleted(BaseModel):
    center: str
    agents: int = Field(description="agents deleted")
    abandoned: int = Field(description="waiting contacts abandoned (each stays readable, "
                                       "state abandoned, until it expires)")


class DispatchModeIn(StrictInput):
    # strict=False here only: FastAPI validates the decoded JSON in Python mode, where a
    # strict enum field wants an enum member; lax, it takes the string values and no other.
    mode: DispatchMode = Field(strict=False, description="automatic: the dispatcher "
                               "services assign; manual: only explicit dispatch calls")


class DispatchModeOut(BaseModel):
    mode: DispatchMode
    previous: DispatchMode


class PriorityIn(StrictInput):
    seconds_per_point: float = Field(
        ge=0, le=MAX_SECONDS_PER_POINT, allow_inf_nan=False,
        description="seconds of waiting one priority point is worth, for contacts queued "
                    "from now on (0, the default: priorities change nothing)")


class PriorityOut(BaseModel):
    seconds_per_point: float
    previous: float


class AgentChoiceIn(StrictInput):
    # strict=False as in DispatchModeIn: the string values and no other.
    choice: AgentChoice = Field(strict=False, description="longest_available (the default): "
                                "the agent available the longest; fewest_skills: the agent "
                                "with the fewest skills, then the longest available; "
                                "best_proficiency: the agent whose lowest level over the "
                                "contact's skills is highest, then the longest available")

    @field_validator("choice", mode="before")
    @classmethod
    def _named(cls, value: object) -> object:
        # The same message as acd.Center's: it names the bad value, not only the good ones.
        if isinstance(value, str) and value not in set(AgentChoice):
            try:
                parse(value)
            except InvalidInput as exc:
                raise ValueError(str(exc)) from None
        return value


class AgentChoiceOut(BaseModel):
    choice: AgentChoice
    previous: AgentChoice | None = Field(default=None, description="on PUT: the choice "
                                         "before")


class WrapUpIn(StrictInput):
    wrap_up_seconds: float = Field(
        ge=0, le=MAX_WRAP_UP_SECONDS, allow_inf_nan=False,
        description="after-contact work: how long an agent whose contact is completed "
                    "stays in wrap_up before it is available (0: none; kept to the ms)")


class WrapUpOut(BaseModel):
    wrap_up_seconds: float
    previous: float | None = Field(None, description="the value before this change")


class ContactCreate(ContactIn):
    """A contact to queue. Give ``id`` to make retries idempotent."""

    id: Id | None = None


class QueueEntry(BaseModel):
    contact: str
    queued_at: int = Field(description="ms since the epoch, server clock")
    wait_ms: int


class Event(BaseModel):
    """One entry of the center's event stream: its id, its type and its other fields."""

    model_config = ConfigDict(extra="allow")

    id: str
    type: str


class EventsPage(BaseModel):
    last_id: str = Field(description="pass it as `after` to read the events that follow")
    events: list[Event]


class Liveness(BaseModel):
    """GET /health/live: this API worker and its Redis answer."""

    status: Literal["ok", "redis down"]
    redis: Literal["ok", "down"]


class Health(Liveness):
    """GET /health: the ACD serves, i.e. Redis answers and a dispatcher assigns."""

    status: Literal["ok", "redis down", "no dispatcher"]  # type: ignore[assignment]
    dispatchers: int | None = Field(
        description="dispatchers that beat within the staleness window (null: Redis down)")


class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationProblem(BaseModel):
    detail: list[ErrorItem]


class Problem(BaseModel):
    detail: str


# -- the original demo's routes ---------------------------------------------------------
class AcdStateIn(StrictInput):
    state: OnOff = Field(description="1 open, 0 closed")


class AcdStateOut(BaseModel):
    acd_state: int
    changed: int


class CompatContactIn(StrictInput):
    skills: Annotated[list[Skill], Field(min_length=1, max_length=MAX_SKILLS)]


class ContactKey(BaseModel):
    contact_key: str


class CompatContact(BaseModel):
    skills: list[str]
    state: int = Field(description="1 queued, 2 assigned, 3 complete (or abandoned)")
    agent: str | None = Field(description="agent:<id> while or after assigned")


class CompatAgentIn(StrictInput):
    fname: PersonName
    lname: PersonName
    skills: Annotated[list[Skill], Field(min_length=1, max_length=MAX_SKILLS)]


class CompatAgentStateIn(StrictInput):
    state: OnOff = Field(description="1 available, 0 unavailable")


class CompatSkillIn(StrictInput):
    skill: Skill


class AgentKey(BaseModel):
    agent_key: str


class SkillName(BaseModel):
    skill: str
