"""What to simulate: agents, traffic, handle times, patience, and the draws made from a seed.

Every random quantity is drawn up front by :meth:`Scenario.draw` from one
``random.Random(seed)``: the same scenario and seed give the same agents' skills, arrival
times, contact skills, handle times and patience, whatever the backend or the machine.

All durations here are in *scenario* seconds. ``time_scale`` is how many scenario seconds
pass per real second: 60 runs an hour of traffic in a minute. KPIs are reported in
scenario time.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from acd.levels import above_default, check_levels, signature
from acd.models import MAX_PRIORITY, AgentChoice, Skill
from acd.steps import StepIn, check_sequence


class AgentGroup(BaseModel):
    """``count`` agents that all have exactly ``skills``, at ``levels`` (skill -> 1-5;
    a skill not named: level 1, acd.levels)."""

    model_config = ConfigDict(extra="forbid")
    count: Annotated[int, Field(ge=1)]
    skills: Annotated[list[Skill], Field(min_length=1)]
    levels: dict[str, int] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _levels_of_its_skills(self) -> AgentGroup:
        check_levels("levels", self.levels, self.skills)
        return self


class ContactType(BaseModel):
    """Contacts needing every one of ``skills`` (at ``min_levels``: skill -> 1-5, the
    others at any level; acd.levels), drawn with relative ``weight``."""

    model_config = ConfigDict(extra="forbid")
    skills: Annotated[list[Skill], Field(min_length=1)]
    weight: Annotated[float, Field(gt=0)] = 1.0
    min_levels: dict[str, int] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _minimums_of_its_skills(self) -> ContactType:
        check_levels("min_levels", self.min_levels, self.skills)
        return self

    @property
    def signature(self) -> str:
        """Its skills sorted, each minimum above 1 after its skill ("billing:3,en")."""
        return signature(set(self.skills), self.min_levels)


class PriorityClass(BaseModel):
    """Contacts of ``priority`` (acd.priority), drawn with relative ``weight``."""

    model_config = ConfigDict(extra="forbid")
    priority: Annotated[int, Field(ge=0, le=MAX_PRIORITY)]
    weight: Annotated[float, Field(gt=0)] = 1.0


class RateStep(BaseModel):
    """From ``start`` (scenario seconds) on, contacts arrive at ``per_hour``."""

    model_config = ConfigDict(extra="forbid")
    start: Annotated[float, Field(ge=0)]
    per_hour: Annotated[float, Field(ge=0)]


class HandleTime(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mean: Annotated[float, Field(gt=0)] = 240.0
    dist: Literal["exponential", "lognormal"] = "exponential"
    cv: Annotated[float, Field(gt=0)] = 1.0  # lognormal only: std dev / mean

    def draw(self, rng: random.Random) -> float:
        if self.dist == "exponential":
            return rng.expovariate(1.0 / self.mean)
        sigma2 = math.log(1.0 + self.cv**2)
        return rng.lognormvariate(math.log(self.mean) - sigma2 / 2, math.sqrt(sigma2))


class Scenario(BaseModel):
    """A simulation. Durations in scenario seconds; rates per scenario hour."""

    model_config = ConfigDict(extra="forbid")

    center: str | None = None  # None: the settings' center (ACD_CENTER)
    # Agents: either explicit groups, or ``agents`` agents each given ``skills_per_agent``
    # distinct skills drawn from ``skills``.
    agents: Annotated[int, Field(ge=1)] = 10
    skills: Annotated[list[Skill], Field(min_length=1)] = ["support"]
    skills_per_agent: Annotated[int, Field(ge=1)] = 1
    groups: list[AgentGroup] | None = None
    # Which qualified available agent a contact gets (acd.agent_choice): set on the
    # center before the run.
    agent_choice: AgentChoice = AgentChoice.LONGEST_AVAILABLE
    # Contacts: each needs the skills of one contact type (default: one skill of
    # ``skills``, uniformly).
    contact_types: list[ContactType] | None = None
    # Arrivals: Poisson at ``rate_per_hour``, or piecewise constant ``profile``.
    rate_per_hour: Annotated[float, Field(gt=0)] = 120.0
    profile: list[RateStep] | None = None
    handle: HandleTime = HandleTime()
    patience: Annotated[float | None, Field(gt=0)] = None  # mean, exponential; None: infinite
    # The priority mix: each contact's priority is drawn from these classes (None: all 0);
    # one point is worth ``priority_seconds`` of waiting (the center's setting, scaled).
    priorities: list[PriorityClass] | None = None
    priority_seconds: Annotated[float, Field(ge=0)] = 60.0
    # After-contact work: each agent is in wrap-up this long after each contact (the
    # center's option, set to wrap_up_seconds / time_scale real seconds, to the ms).
    wrap_up_seconds: Annotated[float, Field(ge=0)] = 0.0
    # Steps by waiting time (acd.steps), scenario seconds: the steps a contact of a
    # combination ("billing,spanish") gets (its center's default, set scaled), and a
    # maximum wait after which a contact still waiting is closed (reason max_wait).
    relaxation: dict[str, list[StepIn]] | None = None
    max_wait: Annotated[float | None, Field(gt=0)] = None
    # Offers (acd.offers): 0 assigns at once; else each contact is offered to an agent who
    # accepts at once with accept_probability, or lets the offer time out after this long
    # (the center's offer timeout, offer_timeout_seconds / time_scale real seconds).
    offer_timeout_seconds: Annotated[float, Field(ge=0)] = 0.0
    accept_probability: Annotated[float, Field(gt=0, le=1)] = 1.0
    # Stop arrivals at ``duration`` or after ``contacts`` contacts, whichever comes first.
    duration: Annotated[float | None, Field(gt=0)] = 3600.0
    contacts: Annotated[int | None, Field(ge=1)] = None
    warmup: Annotated[float, Field(ge=0)] = 0.0  # arrivals before this are left out of KPIs
    seed: int = 1
    time_scale: Annotated[float, Field(gt=0)] = 60.0
    sl_threshold: Annotated[float, Field(ge=0)] = 20.0  # T of the service level, seconds
    # A contact "waited" when not answered within this much *real* time: dispatch takes a
    # few milliseconds, so a zero-wait contact never measures exactly 0.
    wait_epsilon_ms: Annotated[float, Field(ge=0)] = 5.0
    # Real seconds to wait after the last arrival for every contact to end.
    drain_timeout: Annotated[float, Field(gt=0)] = 60.0

    @model_validator(mode="after")
    def _checks(self) -> Scenario:
        if self.duration is None and self.contacts is None:
            raise ValueError("set duration or contacts (or both)")
        for combination, steps in (self.relaxation or {}).items():
            check_sequence(combination.split(","), steps)
            if self.max_wait is not None and any(s.after_s >= self.max_wait for s in steps):
                raise ValueError(f"relaxation {combination}: a step at or after max_wait "
                                 f"{self.max_wait:g} s would never run")
        if self.priorities is not None and not self.priorities:
            raise ValueError("priorities: give at least one class, or None")
        if self.groups is None and self.skills_per_agent > len(set(self.skills)):
            raise ValueError("skills_per_agent is more than the number of skills")
        if self.profile is not None:
            if not self.profile or self.profile[0].start != 0:
                raise ValueError("profile must start at 0")
            starts = [s.start for s in self.profile]
            if starts != sorted(set(starts)):
                raise ValueError("profile starts must increase")
            if self.duration is None and self.profile[-1].per_hour == 0:
                raise ValueError("a profile ending at rate 0 needs a duration")
        return self

    # -- derived -------------------------------------------------------------------
    def default_steps(self, combinations: set[str]) -> dict[str, list[dict[str, float | str
                                                                       | list[str]]]]:
        """The center's default steps per combination, in the ACD's real seconds (each
        after_s divided by time_scale, to the ms): ``relaxation``'s, then a close at
        ``max_wait`` for every combination of ``combinations``."""
        found: dict[str, list[dict[str, float | str | list[str]]]] = {}
        for combination in sorted(combinations | set(self.relaxation or {})):
            steps: list[dict[str, float | str | list[str]]] = [
                {"after_s": round(s.after_s / self.time_scale * 1000) / 1000,
                 "skills": sorted(s.skills or [])} for s in (self.relaxation or {}).get(
                     combination, [])]
            if self.max_wait is not None:
                steps.append({"after_s": round(self.max_wait / self.time_scale * 1000) / 1000,
                              "close": "max_wait"})
            if steps:
                found[",".join(sorted(combination.split(",")))] = steps
        return found

    @property
    def wrap_up_real(self) -> float:
        """The center's wrap-up time in real seconds, as it stores it (whole ms)."""
        return round(self.wrap_up_seconds / self.time_scale * 1000) / 1000

    @property
    def wrap_up_effective(self) -> float:
        """The wrap-up the agents really get, in scenario seconds (after the ms rounding):
        what an agent's every contact costs it on top of its handle time."""
        return self.wrap_up_real * self.time_scale

    @property
    def offer_timeout_real(self) -> float:
        """The center's offer timeout in real seconds, as it stores it (whole ms)."""
        return round(self.offer_timeout_seconds / self.time_scale * 1000) / 1000

    @property
    def offer_timeout_effective(self) -> float:
        """What each missed offer costs its contact, in scenario seconds."""
        return self.offer_timeout_real * self.time_scale

    def accepts(self, index: int, offer: int) -> bool:
        """Whether the agent accepts contact ``index``'s offer number ``offer`` (0 first):
        a draw of its own, so a run and the ideal model's replay agree on every answer."""
        if self.accept_probability >= 1:
            return True
        return random.Random(f"{self.seed}-offer-{index}-{offer}").random() < \
            self.accept_probability

    def types(self) -> list[ContactType]:
        return self.contact_types or [ContactType(skills=[s]) for s in dict.fromkeys(
            self.skills)]

    def steps(self) -> list[RateStep]:
        return self.profile or [RateStep(start=0, per_hour=self.rate_per_hour)]

    @property
    def constant_rate(self) -> bool:
        return len({s.per_hour for s in self.steps()}) == 1

    def draw(self) -> Draw:
        """Every random quantity of the run, from ``seed``."""
        rng = random.Random(self.seed)
        # Its own stream: a priority mix leaves the traffic of a seed as it was.
        ranks = random.Random(f"{self.seed}:priorities")
        classes = self.priorities or [PriorityClass(priority=0)]
        agents: list[list[str]] = []
        levels: list[dict[str, int]] = []
        if self.groups:
            for g in self.groups:
                agents += [sorted(set(g.skills)) for _ in range(g.count)]
                levels += [above_default(g.levels) for _ in range(g.count)]
        else:
            pool = list(dict.fromkeys(self.skills))
            agents = [sorted(rng.sample(pool, self.skills_per_agent))
                      for _ in range(self.agents)]
        types = self.types()
        weights = [t.weight for t in types]
        arrivals: list[Arrival] = []
        steps = self.steps()
        t, i = 0.0, 0
        limit = self.duration if self.duration is not None else math.inf
        while self.contacts is None or len(arrivals) < self.contacts:
            while i + 1 < len(steps) and steps[i + 1].start <= t:
                i += 1
            rate = steps[i].per_hour / 3600.0
            end = steps[i + 1].start if i + 1 < len(steps) else math.inf
            if rate == 0:
                if end == math.inf:
                    break
                t = end  # memoryless: restarting at the boundary is exact
                continue
            gap = rng.expovariate(rate)
            if t + gap >= end:
                t = end
                continue
            t += gap
            if t >= limit:
                break
            kind = rng.choices(types, weights)[0]
            handle = self.handle.draw(rng)
            patience = rng.expovariate(1.0 / self.patience) if self.patience else None
            priority = ranks.choices(classes, [c.weight for c in classes])[0].priority
            arrivals.append(Arrival(len(arrivals), t, sorted(set(kind.skills)), handle,
                                    patience, priority, above_default(kind.min_levels)))
        return Draw(agents, arrivals, levels or [{} for _ in agents])


@dataclass(frozen=True)
class Arrival:
    index: int
    at: float  # scenario seconds from the start
    skills: list[str]
    handle: float  # scenario seconds
    patience: float | None  # scenario seconds; None: waits for ever
    priority: int = 0
    min_levels: dict[str, int] = field(default_factory=dict)  # above 1 (acd.levels)

    @property
    def signature(self) -> str:
        return signature(self.skills, self.min_levels)


@dataclass(frozen=True)
class Draw:
    agents: list[list[str]]  # skills of agent i
    arrivals: list[Arrival]
    agent_levels: list[dict[str, int]] = field(default_factory=list)  # above 1, of agent i

    @property
    def span(self) -> float:
        return self.arrivals[-1].at if self.arrivals else 0.0
