"""A small pure-Python model of one center of the ACD: what acd/lua/ promises,
written down as plainly as possible, for the model-based tests (tests/test_model.py,
tests/cluster/test_sharded.py).

Time is logical: ``tick`` is the step number, and the tests make sure the server's clock
moves on between steps, so an agent that became available at an earlier step has an
earlier ``available_since`` and agents made available in the same step (opening the
center) share one; ties are broken by agent id, as a sorted set orders equal scores.

Each operation returns what the real call returns, or raises the acd exception it raises,
and changes the model only when it succeeds (the functions check before they write).

Priorities (acd.priority): the tests set the center's point to an hour, far more than any
sequence lasts, so a higher priority always comes first and arrival orders equals: a
contact's place is (-priority, arrival). That a point is an age, not a rank, is
tests/test_priority.py's to show.

Wrap-up time is abstract too: the center's option is "off", "tiny" (1 ms: over by the
next step, whose server time is at least 2 ms later) or "long" (an hour: never over
during a test). A tiny wrap-up started at step k ends at k + 0.5 on the model's clock:
after step k, before step k + 1, as its real end lies between theirs.

Proficiency (acd.levels): an agent's levels above 1 and a contact's minimums above 1;
a contact's combination is its signature ("billing:3,en"); the agent choice
best_proficiency ranks by the lowest level over the contact's skills, then LAA.
Offers (acd.offers) likewise: "off", "long" (10 minutes to answer, an hour of back-off, a
break after 2 misses in a row: only explicit accept and reject steps end one) or "tiny"
(1 ms to answer, no back-off, a break after 2 misses: over by the next step, and the next
round, or the reconciler's step, expires it).

Explanations (acd.explanation): while the center records them, each assignment (or offer)
a round makes gets an MExplanation, what of the record the model can foresee: the rule,
the candidates in order with what their scores are made of (available since, on the
model's clock, and skill count), the set walked, the next contact of the combination and
the ready combinations after it. An assignment made while off has none, and neither has a
contact an offer miss puts back in the queue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from acd import AlreadyExists, InvalidInput, InvalidState, NotFound
from acd.levels import needs, qualifies, signature


@dataclass
class MAgent:
    skills: list[str]
    state: str = "unavailable"
    since: float | None = None  # the tick it became available, while available
    contact: str | None = None
    next_state: str | None = None
    wrap_up_end: float | None = None  # while in wrap-up: the tick it ends (inf: never)
    levels: dict[str, int] = field(default_factory=dict)  # above 1 only

    def level(self, skill: str) -> int:
        return self.levels.get(skill, 1)
    reason: str | None = None  # on a break (unavailable with a reason)
    missed: int = 0  # offers missed in a row
    offer_end: float | None = None  # while offered: the tick its offer ends
    next_reason: str | None = None  # the break asked for after the contact

    def keeps_own_state(self) -> bool:
        """On a break or logged out, now or after its contact: opening or closing the
        center leaves it alone."""
        return (self.state == "logged_out" or self.reason is not None
                or self.next_state == "logged_out" or self.next_reason is not None)

    def leave(self) -> str:
        """Leaves its contact (or wrap-up) for what it asked meanwhile; returns that."""
        after = self.next_state or "available"
        self.state, self.reason, self.contact = after, self.next_reason, None
        self.next_state = self.next_reason = self.wrap_up_end = self.offer_end = None
        if after != "available":
            self.since = None
        return after


WRAP_UP_SECONDS = {"off": 0.0, "tiny": 0.001, "long": 3600.0}
WRAP_UP_RELEASES = 25  # the acd library's: most wrap-ups one call ends
# The offers options: (timeout s, max misses, back-off s); see the module's docstring.
OFFERS = {"off": (0.0, 0, 0.0), "long": (600.0, 2, 3600.0), "tiny": (0.001, 2, 0.0)}
OFFER_EXPIRIES = 25


@dataclass
class MContact:
    skills: list[str]  # sorted, as stored
    state: str = "queued"
    agent: str | None = None
    priority: int = 0
    min_levels: dict[str, int] = field(default_factory=dict)  # above 1 only
    steps: list[dict[str, Any]] = field(default_factory=list)  # acd.steps, as given
    taken: int = 0  # how many of them it took

    @property
    def sig(self) -> str:
        return signature(self.skills, self.min_levels)


EXPLAIN_CANDIDATES = 5  # the acd library's: most candidates a record lists
EXPLAIN_HEADS = 3  # most ready combinations after the contact's that it lists


@dataclass
class MExplanation:
    """The checkable part of an assignment's explanation, as decided at ``tick``."""

    rule: str  # the agent choice that decided (best_proficiency may leave it to LAA)
    candidates: list[str]  # the qualified agents the walk met, winner first
    since: dict[str, float]  # theirs on the model's clock (the real score: that ms)
    skill_count: dict[str, int]  # theirs (fewest_skills scores count * 1e13 + since)
    qualified: int  # how many the walk met (candidates lists the first few)
    walked: tuple[str, int]  # the set it walked (its need item) and that set's size
    next: str | None  # the next contact of its combination
    after: list[tuple[str, str]]  # the ready combinations after its own, in order, and
    # their heads (the record lists the first few of them)
    overtook: set[str]  # of those heads and ``next``: the ones only its head start passed
    tick: int


@dataclass
class Model:
    agents: dict[str, MAgent] = field(default_factory=dict)
    contacts: dict[str, MContact] = field(default_factory=dict)
    queue: list[str] = field(default_factory=list)  # waiting contacts, arrival order
    ready: set[str] = field(default_factory=set)  # combinations a round looks at
    parked: set[str] = field(default_factory=set)  # combinations found unservable
    counters: dict[str, int] = field(default_factory=dict)
    mode: str = "automatic"
    choice: str = "longest_available"  # the agent choice (acd.agent_choice)
    wrap_up: str = "off"  # see WRAP_UP_SECONDS
    offers: str = "off"  # see OFFERS
    excluded: set[tuple[str, str]] = field(default_factory=set)  # (contact, agent)
    arrival: dict[str, int] = field(default_factory=dict)  # contact -> its place in line
    explain: bool = False  # record explanations (acd.explanation)
    explanations: dict[str, MExplanation] = field(default_factory=dict)  # by contact
    tick: int = 0

    # -- reading --------------------------------------------------------------------
    def ranking(self, skills: list[str], mins: dict[str, int] | None = None) -> list[str]:
        """Longest available first (acd/laa.py): available agents with every skill (at
        the minimum levels), by the tick they became available, then by id."""
        wanted = {s: (mins or {}).get(s, 1) for s in skills}
        able = [(a.since or 0, aid) for aid, a in self.agents.items()
                if a.state == "available" and qualifies(a.levels, a.skills, wanted)]
        return [aid for _, aid in sorted(able)]

    def place(self, cid: str) -> tuple[int, int]:
        """Where a waiting contact stands among those an agent can serve: higher priority
        first, then arrival (see the module's docstring)."""
        return -self.contacts[cid].priority, self.queue.index(cid)

    def chosen(self, contact: MContact) -> list[str]:
        """Who dispatch gives such a contact, best first: LAA among those at its minimum
        levels, or with the agent choice fewest_skills the fewest skills in all first, or
        with best_proficiency the highest lowest level over its skills first; then LAA."""
        laa = self.ranking(contact.skills, contact.min_levels)
        if self.choice == "fewest_skills":
            return sorted(laa, key=lambda aid: len(self.agents[aid].skills))  # stable: LAA
        if self.choice == "best_proficiency":
            return sorted(laa, key=lambda aid: -min(self.agents[aid].level(s)
                                                    for s in contact.skills))
        return laa

    def waiting(self, sig: str) -> list[str]:
        """A combination's waiting contacts, in its FIFO's order (by place)."""
        return sorted((cid for cid in self.queue if self.contacts[cid].sig == sig),
                      key=self.place)

    def skills(self) -> set[str]:
        """The center's skill list: the skills some agent has."""
        return {s for a in self.agents.values() for s in a.skills}

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    # -- the waiting contacts' index --------------------------------------------------
    def _wake_parked(self, agent: MAgent) -> None:
        for sig in sorted(self.parked):
            if qualifies(agent.levels, agent.skills, needs(sig)):
                self.parked.discard(sig)
                self.ready.add(sig)

    def _unqueue(self, cid: str) -> None:
        self.queue.remove(cid)
        sig = self.contacts[cid].sig
        if not self.waiting(sig):
            self.ready.discard(sig)
            self.parked.discard(sig)

    def _make_available(self, aid: str) -> None:
        agent = self.agents[aid]
        agent.state, agent.since = "available", self.tick
        self._wake_parked(agent)

    # -- agents -----------------------------------------------------------------------
    def create_agent(self, aid: str, skills: list[str], available: bool,
                     levels: dict[str, int] | None = None) -> MAgent:
        if aid in self.agents:
            raise AlreadyExists(f"agent {aid}")
        self.agents[aid] = MAgent(list(skills), levels={
            s: v for s, v in (levels or {}).items() if v > 1})
        if available:
            self._make_available(aid)
        return self.agents[aid]

    def _agent(self, aid: str) -> MAgent:
        if aid not in self.agents:
            raise NotFound(f"agent {aid}")
        return self.agents[aid]

    def delete_agent(self, aid: str) -> None:
        if self._agent(aid).state in ("busy", "offered"):
            raise InvalidState(f"agent {aid} is on a contact")
        del self.agents[aid]

    def set_state(self, aid: str, state: str, reason: str | None = None) -> MAgent:
        if reason is not None and state != "unavailable":
            raise InvalidInput(f"reason {reason}: only a break has one")
        agent = self._agent(aid)
        if agent.state in ("busy", "wrap_up", "offered"):
            if state == "available" and agent.next_state is None:
                raise InvalidState(f"agent {aid} is on contact {agent.contact}")
            agent.next_state = None if state == "available" else state
            agent.next_reason = reason
        elif (agent.state, agent.reason) != (state, reason):
            agent.reason = reason
            if state == "available":
                self._make_available(aid)
            else:
                agent.state, agent.since = state, None
        return agent

    def add_skill(self, aid: str, skill: str) -> MAgent:
        agent = self._agent(aid)
        if skill in agent.skills:
            raise AlreadyExists(f"skill {skill} of agent {aid}")
        agent.skills.append(skill)
        if agent.state == "available":
            self._wake_parked(agent)
        return agent

    def set_level(self, aid: str, skill: str, level: int) -> MAgent:
        agent = self._agent(aid)
        if skill not in agent.skills:
            raise NotFound(f"skill {skill} of agent {aid}")
        if agent.level(skill) == level:
            return agent
        agent.levels.pop(skill, None)
        if level > 1:
            agent.levels[skill] = level
        if agent.state == "available":
            self._wake_parked(agent)
        return agent

    def remove_skill(self, aid: str, skill: str) -> MAgent:
        agent = self._agent(aid)
        if skill not in agent.skills:
            raise NotFound(f"skill {skill} of agent {aid}")
        if agent.skills == [skill]:
            raise InvalidState(f"skill {skill} is the only skill of agent {aid}")
        agent.skills.remove(skill)
        agent.levels.pop(skill, None)
        return agent

    def delete_skill(self, skill: str, force: bool) -> tuple[int, int]:
        """(agents that had it, contacts abandoned)."""
        needing = [cid for cid in self.queue if skill in self.contacts[cid].skills]
        if needing and not force:
            raise InvalidState(f"skill {skill} is needed by {len(needing)} waiting contacts")
        if not needing and skill not in self.skills():
            raise NotFound(f"skill {skill}")
        if any(a.skills == [skill] for a in self.agents.values()):
            raise InvalidState(f"skill {skill} is the only skill of an agent")
        for cid in needing:
            self._unqueue(cid)
            self.contacts[cid].state = "abandoned"
        if needing:
            self.count("abandoned", len(needing))
        had = [a for a in self.agents.values() if skill in a.skills]
        for agent in had:
            agent.skills.remove(skill)
            agent.levels.pop(skill, None)
        return len(had), len(needing)

    def set_open(self, is_open: bool) -> int:
        """Opening makes every agent not on a contact available (closing: unavailable);
        one on a contact gets (or loses) 'unavailable' as its next state."""
        target = "available" if is_open else "unavailable"
        changed = 0
        for aid in sorted(self.agents):
            agent = self.agents[aid]
            if agent.keeps_own_state():
                continue
            if agent.state in ("busy", "wrap_up", "offered"):
                agent.next_state = None if is_open else "unavailable"
            elif agent.state != target:
                self.set_state(aid, target)
                changed += 1
        return changed

    # -- contacts ---------------------------------------------------------------------
    def create_contact(self, cid: str, skills: list[str], priority: int = 0,
                       min_levels: dict[str, int] | None = None,
                       steps: list[dict[str, Any]] | None = None) -> MContact:
        if cid in self.contacts:
            raise AlreadyExists(f"contact {cid}")
        contact = MContact(sorted(skills), priority=priority, min_levels={
            s: v for s, v in (min_levels or {}).items() if v > 1}, steps=list(steps or []))
        self.contacts[cid] = contact
        self.queue.append(cid)
        self.arrival[cid] = len(self.arrival)
        self.count("offered")
        if len(self.waiting(contact.sig)) == 1:  # new to the index
            if self.ranking(contact.skills, contact.min_levels):
                self.ready.add(contact.sig)
            else:
                self.parked.add(contact.sig)
        return contact

    def end_contact(self, cid: str, how: str) -> MContact:
        if cid not in self.contacts:
            raise NotFound(f"contact {cid}")
        contact = self.contacts[cid]
        if contact.state == "assigned" and how == "abandon":
            raise InvalidState(f"contact {cid} is assigned: complete it instead")
        if contact.state == "offered":  # never answered: abandoned, its agent freed
            assert contact.agent is not None
            contact.state, aid, contact.agent = "abandoned", contact.agent, None
            self.count("abandoned")
            if self.agents[aid].leave() == "available":
                self._make_available(aid)
        elif contact.state == "queued":  # completing a queued contact: never answered
            self._unqueue(cid)
            contact.state = "abandoned"
            self.count("abandoned")
        elif contact.state == "assigned":
            contact.state = "completed"
            self.count("completed")
            assert contact.agent is not None
            agent = self.agents[contact.agent]
            if self.wrap_up != "off":  # next_state stays: it applies at the wrap-up's end
                agent.state, agent.contact = "wrap_up", None
                agent.wrap_up_end = self.tick + 0.5 if self.wrap_up == "tiny" else math.inf
                return contact
            if agent.leave() == "available":
                self._make_available(contact.agent)
        return contact

    # -- wrap-up ------------------------------------------------------------------------
    def set_wrap_up(self, option: str) -> float:
        """The previous wrap-up time in seconds; wrap-ups under way keep their end."""
        before, self.wrap_up = self.wrap_up, option
        return WRAP_UP_SECONDS[before]

    def _finish_wrap_up(self, aid: str, since: float) -> None:
        agent = self.agents[aid]
        if agent.leave() == "available":
            agent.since = since
            self._wake_parked(agent)

    def end_wrap_up(self, aid: str) -> MAgent:
        agent = self._agent(aid)
        if agent.state != "wrap_up":
            raise InvalidState(f"agent {aid} is {agent.state}, not in wrap-up")
        self._finish_wrap_up(aid, self.tick)
        return agent

    def release_wrap_ups(self, most: int = WRAP_UP_RELEASES) -> int:
        """End the wrap-ups that are over, the earliest end first (then by id, as a sorted
        set orders equal scores), available since that end; at most ``most``."""
        due = sorted((a.wrap_up_end, aid) for aid, a in self.agents.items()
                     if a.state == "wrap_up" and (a.wrap_up_end or 0) <= self.tick)
        for end, aid in due[:most]:
            self._finish_wrap_up(aid, end or 0)
        return len(due[:most])

    # -- dispatch -----------------------------------------------------------------------
    def set_mode(self, mode: str) -> str:
        before, self.mode = self.mode, mode
        return before

    def set_choice(self, choice: str) -> str:
        before, self.choice = self.choice, choice
        return before

    def dispatch(self, most: int, budget: int, service: bool = False) -> list[tuple[str, str]]:
        """One round: the ready combination with the first-placed contact gets the longest
        available agent with all its skills (or, with the agent choice fewest_skills, the
        one with the fewest skills, then LAA), or is parked when nobody has them; at most
        ``most`` assignments and ``budget`` combinations looked at. Wrap-ups that are over
        end first, in manual mode too (only assigning is the lesson's there)."""
        self.release_wrap_ups()
        self.expire_offers()
        if service and self.mode == "manual":
            return []
        timeout = OFFERS[self.offers][0]
        done: list[tuple[str, str]] = []
        examined = 0
        while len(done) < most and examined < budget and self.ready:
            sig = min(self.ready, key=lambda s: self.place(self.waiting(s)[0]))
            examined += 1
            cid = self.waiting(sig)[0]
            best = [aid for aid in self.chosen(self.contacts[cid])
                    if not timeout or (cid, aid) not in self.excluded]
            if not best:
                self.ready.discard(sig)
                self.parked.add(sig)
                continue
            if self.explain:
                self.explanations[cid] = self._explanation(cid, best)
            else:
                self.explanations.pop(cid, None)
            aid = best[0]
            agent = self.agents[aid]
            agent.state, agent.since, agent.contact = "offered" if timeout else "busy", None, cid
            self.contacts[cid].state = "offered" if timeout else "assigned"
            self.contacts[cid].agent = aid
            if timeout:
                agent.offer_end = self.tick + 0.5 if self.offers == "tiny" else math.inf
            self._unqueue(cid)
            done.append((cid, aid))
        if done and not timeout:
            self.count("assigned", len(done))
        return done


    # -- steps by waiting time (acd.steps) ------------------------------------------------
    def take_due_step(self, cid: str) -> int:
        """The contact's next step comes due (its wait reached after_s): a queued contact
        takes it, keeping its place by arrival; an assigned or ended one does nothing.
        Returns how many steps were taken (0 or 1)."""
        contact = self.contacts.get(cid)
        if contact is None or contact.state != "queued" or contact.taken >= len(contact.steps):
            return 0
        step = contact.steps[contact.taken]
        contact.taken += 1
        if "close" in step:
            self._unqueue(cid)
            contact.state = "closed"
            self.count("closed")
            return 1
        # A step's skills are needed at any level: it drops the minimum levels too.
        before, before_sig = contact.skills, contact.sig
        contact.skills, contact.min_levels = sorted(step["skills"]), {}
        if contact.sig == before_sig:
            return 1
        if not self.waiting(before_sig):
            self.ready.discard(before_sig)
            self.parked.discard(before_sig)
        if self.waiting(contact.sig) == [cid]:  # new to the index
            (self.ready if self.ranking(contact.skills) else self.parked).add(contact.sig)
        self.count("relaxed" if set(contact.skills) <= set(before) else "overflowed")
        return 1

    # -- offers -------------------------------------------------------------------------
    def set_offers(self, option: str) -> tuple[float, int, float]:
        """The previous settings; offers under way keep their deadline."""
        before, self.offers = self.offers, option
        return OFFERS[before]

    def answer(self, aid: str, accept: bool) -> MAgent:
        agent = self._agent(aid)
        if agent.state != "offered":
            raise InvalidState(f"agent {aid} has no offer")
        assert agent.contact is not None
        if accept:
            contact = self.contacts[agent.contact]
            agent.state, agent.missed, agent.offer_end = "busy", 0, None
            contact.state = "assigned"
            self.count("assigned")
        else:
            self._miss(aid)
        return agent

    def _miss(self, aid: str) -> None:
        """The contact back at its place; the agent excluded from it for the back-off,
        available again, or on a break after the center's misses in a row."""
        agent = self.agents[aid]
        cid = agent.contact
        assert cid is not None
        contact = self.contacts[cid]
        contact.state, contact.agent = "queued", None
        self.explanations.pop(cid, None)  # its next assignment explains itself
        self.queue.append(cid)
        self.queue.sort(key=self.arrival.__getitem__)
        if len(self.waiting(contact.sig)) == 1:  # new to the index
            (self.ready if self.ranking(contact.skills, contact.min_levels)
             else self.parked).add(contact.sig)
        _, most, backoff = OFFERS[self.offers]
        if backoff:
            self.excluded.add((cid, aid))
        agent.missed += 1
        if agent.next_state is None and most and agent.missed >= most:
            agent.next_state, agent.next_reason = "unavailable", "missed_offers"
        if agent.next_state is not None:
            agent.missed = 0
        if agent.leave() == "available":
            self._make_available(aid)

    def expire_offers(self, most: int = OFFER_EXPIRIES) -> int:
        """Miss the offers whose time is over, the earliest first (then by contact id, as
        the timers' set orders them); at most ``most``."""
        due = sorted((a.offer_end, a.contact or "", aid) for aid, a in self.agents.items()
                     if a.state == "offered" and (a.offer_end or 0) <= self.tick)
        for _, _, aid in due[:most]:
            self._miss(aid)
        return len(due[:most])

    # -- explanations -------------------------------------------------------------------
    def set_explain(self, on: bool) -> bool:
        before, self.explain = self.explain, on
        return before

    def _weakest(self, aid: str, contact: MContact) -> int:
        return min(self.agents[aid].level(s) for s in contact.skills)

    def _explanation(self, cid: str, best: list[str]) -> MExplanation:
        """What a round records for serving ``cid`` with ``best`` (its agents, best first,
        the contact's exclusions left out), before it claims the first."""
        contact, sig = self.contacts[cid], self.contacts[cid].sig
        rule, level, met = self.choice, 0, best
        if rule == "best_proficiency":
            # The walks by level (5 down to 2) stop at the contact's own lowest minimum;
            # below it (or with nobody above level 1) LAA decides, among all of them.
            level = self._weakest(best[0], contact)
            floor = min(contact.min_levels.get(s, 1) for s in contact.skills)
            if level < 2 or level <= floor:
                rule, level = "longest_available", 0
            else:  # the walk at that level meets only those at it
                met = [aid for aid in best if self._weakest(aid, contact) == level]
        # The walk reads the smallest set of the needs, the first of equal ones.
        items = [s if rule == "fewest_skills" else _need(s, max(
            contact.min_levels.get(s, 1), level)) for s in contact.skills]
        sizes = [sum(a.state == "available" and s in a.skills and a.level(s) >= m
                     for a in self.agents.values())
                 for s, m in (_split(item) for item in items)]
        smallest = sizes.index(min(sizes))
        ranked = sorted(self.ready, key=lambda s: self.place(self.waiting(s)[0]))
        same = self.waiting(sig)
        following = [same[1]] if len(same) > 1 else []
        heads = following + [self.waiting(s)[0] for s in ranked if s != sig]
        mine = self.arrival[cid]
        return MExplanation(
            rule=rule, candidates=met[:EXPLAIN_CANDIDATES],
            since={aid: self.agents[aid].since or 0.0 for aid in met},
            skill_count={aid: len(self.agents[aid].skills) for aid in met},
            qualified=len(met), walked=(items[smallest], sizes[smallest]),
            next=same[1] if len(same) > 1 else None,
            after=[(s, self.waiting(s)[0]) for s in ranked if s != sig],
            # Overtaken: ranked after it only by its head start (priority 0, it would
            # have come after them), see acd.explanation.
            overtook={h for h in heads
                      if (-self.contacts[h].priority, self.arrival[h]) < (0, mine)},
            tick=self.tick)


def _need(skill: str, level: int) -> str:
    """A combination's need item: 'en' (any level) or 'en:3'."""
    return f"{skill}:{level}" if level > 1 else skill


def _split(item: str) -> tuple[str, int]:
    skill, _, level = item.partition(":")
    return skill, int(level) if level else 1
