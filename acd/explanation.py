"""Why a contact went to its agent: the explanation a dispatch round records as it decides.

Off by default (``Center.set_explanations(True)``, ``PUT /v1/centers/{c}/explanations``):
a record costs Redis time and memory per assignment (README, "Explanations"). While it is
on, the round that assigns a contact writes what it chose from into the contact's document
(member ``explanation``, in the JSON.MERGE that assigns it: no extra Redis command; see
"Explanations" in acd/lua/09_dispatch.lua): the agent choice's rule, the first qualified agents
its walk met with their scores (the winner first), the smallest set it walked and how far,
the contact's queue score and virtual arrival, and the contacts it ranked before (the next
of its combination, the heads of the next ready combinations). This module reads that
record back (as :class:`Explanation`, the API's reply too) and says which rule decided:

- *order*: ``priority`` when one of those contacts ranks before this one's real arrival
  (only its head start put it first), else ``arrival`` (first come, first served);
- *agent*: the winner against the runner-up, by the rule's keys in turn: fewer skills
  (fewest_skills), then earlier available_since (longest available), then the agent id
  (Redis orders equal scores by member). An agent the walk did not reach ranks after
  every one listed, so the winner is first by the rule among all qualified agents.

A rule added later (proficiency, offers) records its name and its candidates' scores the
same way and adds its reading here: ``SCORES`` (score -> the keys it sorts by, as named
Deciders) and ``describe``. The record lives as long as the contact's document (an ended
contact: ``contact_keep_seconds``); a contact never assigned has none (NotFound).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum
from typing import Any, cast

from pydantic import BaseModel, Field

from acd.agent_choice import FEWEST_SPAN
from acd.center_part import CenterPart
from acd.commands import json_get
from acd.errors import NotFound
from acd.keys import valid_name
from acd.levels import signature
from acd.models import AgentChoice, valid_flag


class OrderRule(StrEnum):
    """Why a dispatch round served a contact when it did."""

    ARRIVAL = "arrival"  # the oldest contact an available agent could serve (FIFO)
    PRIORITY = "priority"  # its head start put it before contacts that arrived earlier


class Decider(StrEnum):
    """What made the winner first among the qualified agents."""

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
    (GET /v1/centers/{c}/contacts/{id}/explanation)."""

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


# rule -> (score in the walked sets -> its sort keys, each with the Decider it stands for)
SCORES: dict[str, Callable[[float], list[tuple[Decider, float]]]] = {
    AgentChoice.LONGEST_AVAILABLE: lambda s: [(Decider.LONGEST_AVAILABLE, s)],
    AgentChoice.FEWEST_SKILLS: lambda s: [(Decider.FEWEST_SKILLS, s // FEWEST_SPAN),
                                          (Decider.LONGEST_AVAILABLE, s % FEWEST_SPAN)],
    # The walk that answered was over avail_at sets of one level (the record's skill names
    # it, 'Billing:4'): everyone it met has that level; among them, LAA.
    AgentChoice.BEST_PROFICIENCY: lambda s: [(Decider.LONGEST_AVAILABLE, s)],
}


def candidate(rule: str, rank: int, agent: str, score: float) -> ExplainedCandidate:
    keys = dict(_keys(rule, score))
    skills = keys.get(Decider.FEWEST_SKILLS)
    return ExplainedCandidate(agent=agent, rank=rank, score=score,
                              available_since=int(keys[Decider.LONGEST_AVAILABLE]),
                              skills=None if skills is None else int(skills))


def _keys(rule: str, score: float) -> list[tuple[Decider, float]]:
    read = SCORES.get(rule)
    if read is None:
        raise ValueError(f"explanation of an unknown rule {rule!r}")
    return read(score)


def decided_by(rule: str, ranked: list[ExplainedCandidate]) -> Decider:
    """The first of the rule's keys on which the winner beats the runner-up; with no
    runner-up met, the rule's first key (every agent not met ranks after the winner)."""
    keys = _keys(rule, ranked[0].score)
    if len(ranked) < 2:
        return keys[0][0]
    for (decider, mine), (_, theirs) in zip(keys, _keys(rule, ranked[1].score), strict=True):
        if mine != theirs:
            return decider
    return Decider.AGENT_ID


def served_before(record: dict[str, Any], queue_score: float, sig: str) -> list[ExplainedHead]:
    heads = []
    following = record.get("next")
    if following:
        heads.append(ExplainedHead(combination=sig, contact=following[0],
                                   virtual_arrival=following[1],
                                   overtaken=following[1] < queue_score))
    heads += [ExplainedHead(combination=combination, virtual_arrival=at,
                            overtaken=at < queue_score)
              for combination, at in record.get("heads", []) if at is not None]
    return heads


def explain(doc: dict[str, Any]) -> Explanation | None:
    """The explanation of a contact document's current assignment; None when it has none
    (never assigned, or requeued since by a repair)."""
    record = doc.get("explanation")
    # Stored as JSON text: see "Explanations" in acd/lua/09_dispatch.lua.
    if isinstance(record, str):
        record = json.loads(record)
    agent = doc.get("agent")
    if not isinstance(record, dict) or not isinstance(agent, str):
        return None
    rule = str(record["rule"])
    # A score is null when it was not finite (written around the functions): unranked.
    scored = [(a, s) for a, s in record["candidates"] if s is not None]
    ranked = [candidate(rule, i + 1, a, s) for i, (a, s) in enumerate(scored)]
    if not ranked or ranked[0].agent != agent or record["virtual_arrival"] is None:
        return None  # not this assignment's record, or not one to read
    queue_score = float(record["queue_score"] or 0)
    sig = signature(doc["skills"], doc.get("min_levels"))
    before = served_before(record, queue_score, sig)
    overtook = [h for h in before if h.overtaken]
    order = OrderRule.PRIORITY if overtook else OrderRule.ARRIVAL
    decider = decided_by(rule, ranked)
    explanation = Explanation(
        contact=doc["id"], agent=agent, assigned_at=doc["assigned_at"], skills=doc["skills"],
        rule=rule, decided_by=decider, candidates=ranked, qualified=record["qualified"],
        walked=tuple(record["walked"]), order=order, queued_at=doc["queued_at"],
        priority=doc.get("priority", 0), head_start_ms=doc.get("head_start_ms", 0),
        virtual_arrival=float(record["virtual_arrival"]), served_before=before, summary="")
    explanation.summary = describe(explanation)
    return explanation


def describe(e: Explanation) -> str:
    """One sentence a supervisor reads: why this contact then, why this agent."""
    if e.order is OrderRule.PRIORITY:
        n = sum(h.overtaken for h in e.served_before)
        why_now = (f"its priority {e.priority} ({e.head_start_ms / 1000:g} s head start) put "
                   f"it before {n} contact{'s' * (n != 1)} that arrived earlier")
    else:
        why_now = "it was the oldest contact an available agent could serve"
    winner = e.candidates[0]
    if len(e.candidates) < 2:
        why_agent = (f"{winner.agent} was the first qualified agent by {e.rule} (read "
                     f"{e.walked[2]} of {e.walked[1]} agents with {e.walked[0]})")
    else:
        other = e.candidates[1]
        longer = (other.available_since - winner.available_since) / 1000
        why_agent = {
            Decider.FEWEST_SKILLS: f"{winner.agent} has {_skills(winner.skills)}, "
                                   f"{other.agent} {_skills(other.skills)}",
            Decider.LONGEST_AVAILABLE: f"{winner.agent} was available {longer:g} s "
                                       f"longer than {other.agent}",
            Decider.AGENT_ID: f"{winner.agent} and {other.agent} tie on every score; "
                              "Redis ranks equal scores by id",
        }[e.decided_by]
    return f"Contact {e.contact} went to {e.agent}: {why_now}; {why_agent}."


def _skills(n: int | None) -> str:
    return f"{n} skill{'s' * (n != 1)}"


class CenterExplanations(CenterPart):
    """Center's reading of its assignments' explanations (a part of Center: see the module)."""

    async def set_explanations(self, record: bool) -> bool:
        """Whether dispatch rounds record why they assign each contact (off by default:
        see the module); returns the previous setting. Assignments made meanwhile keep
        the record they have, or have none."""
        valid_flag("record", record)
        await self.register()
        return await self._fn.explain(record)

    async def explanations(self) -> bool:
        """Whether dispatch rounds record explanations."""
        return bool(await cast(Any, self.redis.hget(self.keys.meta, "explain")) == "1")

    async def explanation(self, contact_id: str) -> Explanation:
        """Why the contact went to its agent, as the round that assigned it recorded.
        NotFound for a contact that does not exist (or expired) or was never assigned;
        InvalidInput for a malformed id."""
        valid_name("contact id", contact_id)
        doc = await json_get(self.redis, self.keys.contact(contact_id))
        if not isinstance(doc, dict):
            raise NotFound(f"contact {contact_id}")
        found = explain({**doc, "id": contact_id})  # the id is in the key only (acd.models)
        if found is None:
            off = "" if await self.explanations() else (
                "; this center records none: turn explanations on first")
            raise NotFound(f"explanation of contact {contact_id}: it is {doc.get('state')}, "
                           f"with no assignment recorded{off}")
        return found
