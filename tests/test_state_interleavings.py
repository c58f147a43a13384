"""Property: any interleaving of contacts, dispatch rounds, completions, abandons, agent
state and skill changes and center open/close keeps one contact per agent, from both sides, and
does exactly what a small reference model of the state rules says.

Hypothesis draws the interleavings (and shrinks a failing one to a short story); every
step runs on the real Redis, and after every step the whole center is checked with
acd.invariants and compared with the model.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from test_dispatch_rules import expected_round

from acd import Center, InvalidState, connect
from acd.invariants import violations

AGENTS = {"a1": ["en"], "a2": ["en", "fr"], "a3": ["fr"]}
NEEDS = [["en"], ["fr"], ["en", "fr"], ["de"], ["de", "en"]]  # nobody has de at first
SKILLS = ["de", "en", "fr"]


@dataclass
class ModelAgent:
    skills: list[str]
    state: str = "unavailable"
    contact: str | None = None
    next_state: str | None = None


@dataclass
class Model:
    """The state rules, written down as plainly as possible."""

    agents: dict[str, ModelAgent] = field(
        default_factory=lambda: {a: ModelAgent(list(s)) for a, s in AGENTS.items()})
    contacts: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # state, agent

    def set_state(self, aid: str, state: str) -> bool:
        """False when the change is refused (available on a busy agent, nothing pending)."""
        agent = self.agents[aid]
        if agent.state == "busy":
            if state == "unavailable":
                agent.next_state = "unavailable"
            elif agent.next_state is None:
                return False
            else:
                agent.next_state = None
            return True
        agent.state = state
        return True

    def center(self, state: str) -> None:
        for aid in self.agents:
            agent = self.agents[aid]
            if agent.state != "busy" or (agent.next_state is None) == (state == "unavailable"):
                self.set_state(aid, state)

    def end(self, cid: str, how: str) -> bool:
        """False when refused (abandoning an assigned contact)."""
        state, aid = self.contacts[cid]
        if state == "assigned" and how == "abandon":
            return False
        if state == "queued":
            self.contacts[cid] = ("abandoned", None)
        elif state == "assigned":
            self.contacts[cid] = ("completed", aid)
            assert aid is not None
            agent = self.agents[aid]
            agent.state = agent.next_state or "available"
            agent.contact = agent.next_state = None
        return True

    def assign(self, cid: str, aid: str) -> None:
        self.contacts[cid] = ("assigned", aid)
        self.agents[aid].state, self.agents[aid].contact = "busy", cid


class Interleavings(RuleBasedStateMachine):
    redis_url = ""

    contacts = Bundle("contacts")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.redis = connect(self.redis_url)
        self.center = Center(self.redis, f"prop-{uuid.uuid4().hex[:10]}")
        self.model = Model()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.center.wipe())
        self.run(self.redis.aclose())
        self.loop.close()

    @initialize()
    def agents(self) -> None:
        for aid, skills in AGENTS.items():
            self.run(self.center.create_agent(aid, "F", aid, skills))

    @rule(target=contacts, needs=st.sampled_from(NEEDS))
    def queue(self, needs: list[str]) -> str:
        contact = self.run(self.center.create_contact(needs))
        self.model.contacts[contact.id] = ("queued", None)
        return str(contact.id)

    @rule()
    def dispatch(self) -> None:
        c, m = self.center, self.model
        available = {a.id: (a.available_since or 0, set(a.skills))
                     for a in self.run(c.list_agents()) if a.state == "available"}
        queue = [(cid, set(self.run(c.get_contact(cid)).skills))
                 for cid, _ in self.run(c.queue(limit=1000))]
        want = expected_round(available, queue)
        got = [(a.contact, a.agent) for a in self.run(c.dispatch(most=1000))]
        assert got == want
        for cid, aid in got:
            m.assign(cid, aid)

    @rule(aid=st.sampled_from(sorted(AGENTS)), state=st.sampled_from(["available",
                                                                      "unavailable"]))
    def set_state(self, aid: str, state: str) -> None:
        allowed = self.model.set_state(aid, state)
        try:
            self.run(self.center.set_agent_state(aid, state))
        except InvalidState as exc:
            assert not allowed, f"refused: {exc}"
            assert str(self.model.agents[aid].contact) in str(exc), "names the contact"
        else:
            assert allowed, f"{state} on {aid} should have been refused"

    @rule(aid=st.sampled_from(sorted(AGENTS)), skill=st.sampled_from(SKILLS))
    def toggle_skill(self, aid: str, skill: str) -> None:
        """Gain or lose a skill (not while on a contact: its contact needs its skills)."""
        agent = self.model.agents[aid]
        if agent.state == "busy" or agent.skills == [skill]:
            return
        if skill in agent.skills:
            self.run(self.center.remove_skill(aid, skill))
            agent.skills.remove(skill)
        else:
            self.run(self.center.add_skill(aid, skill))
            agent.skills.append(skill)

    @rule(cid=contacts, how=st.sampled_from(["complete", "abandon"]))
    def end(self, cid: str, how: str) -> None:
        allowed = self.model.end(cid, how)
        call = self.center.complete_contact if how == "complete" else self.center.abandon_contact
        try:
            self.run(call(cid))
        except InvalidState:
            assert not allowed
        else:
            assert allowed

    @rule(open_=st.booleans())
    def open_or_close(self, open_: bool) -> None:
        self.model.center("available" if open_ else "unavailable")
        self.run(self.center.open() if open_ else self.center.close())

    @invariant()
    def agrees_with_the_model_and_keeps_its_promises(self) -> None:
        found = self.run(violations(self.center))
        assert not found, found
        for agent in self.run(self.center.list_agents()):
            m = self.model.agents[agent.id]
            assert (agent.state, agent.contact, agent.next_state) == (
                m.state, m.contact, m.next_state), agent.id
        for cid, (state, aid) in self.model.contacts.items():
            contact = self.run(self.center.get_contact(cid))
            assert (contact.state, contact.agent) == (state, aid), cid


@pytest.mark.timeout(300)
def test_any_interleaving_keeps_one_contact_per_agent(redis_url: str) -> None:
    Interleavings.redis_url = redis_url
    run_state_machine_as_test(Interleavings, settings=settings(
        max_examples=80, stateful_step_count=40, deadline=None, derandomize=True,
        suppress_health_check=[HealthCheck.too_slow]))
