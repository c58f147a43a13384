"""The notebooks' exercise checks, and hints for the mistakes learners make most.

Each check prints what is right, or what is wrong and how to fix it, and returns
True/False; it never raises, so "Run All" goes on past an unfinished exercise. ``...`` (the
placeholder in every exercise cell) means "not answered yet"; anything else, ``None``
included, is an answer and gets a hint of its own: ``None`` is what BZPOPMIN answers after
its timeout and what a dispatcher step returns when it assigned nobody, so it usually says
something about the state of Redis. A coroutine means a missing ``await``.

Hints in place of tracebacks for common mistakes: ``lab.notebook.hints``.

Solutions are in each exercise's collapsed "Solution" block, never in a cell that runs.
"""

from __future__ import annotations

import inspect
import json
import math
import re
from typing import TYPE_CHECKING, Any

from acd import NotFound
from acd.keys import Keys
from lab.notebook.cluster import slot
from lab.notebook.session import lesson_center

if TYPE_CHECKING:
    from lab.notebook.session import Lab


def _ok(message: str) -> bool:
    print("✔ " + message)
    return True


def _wrong(message: str) -> bool:
    print("✘ " + message)
    return False


def _unanswered(answer: object, how: str) -> bool | None:
    """The verdict for a missing answer or an un-awaited call; None if there is an answer
    to look at."""
    if answer is Ellipsis:
        return _wrong(f"Not answered yet: {how}")
    if inspect.iscoroutine(answer):
        answer.close()  # never awaited: close it, or Python warns about it later
        return _wrong("That is a coroutine, not its result: put await in front of the call "
                      "(await r.bzpopmin(...), await naive_step()).")
    return None


# -- 00 · key names --------------------------------------------------------------------
def check_key_name(answer: object, center: str, agent_id: str) -> bool:
    """The key of agent ``agent_id`` in center ``center`` (the learner's ``alice.<center>``
    in a workshop: lab.notebook.session.lesson_center)."""
    center = lesson_center(center)
    if (verdict := _unanswered(answer, "replace ... with the key name, as a string.")
            ) is not None:
        return verdict
    expected = Keys(center).agent(agent_id)
    if not isinstance(answer, str):
        return _wrong(f"The key is a string; you gave {answer!r} ({type(answer).__name__}).")
    if answer == expected:
        return _ok(f"{answer} - the part in braces decides the slot.")
    if "{" not in answer or "}" not in answer:
        return _wrong("Missing the hash tag: every key of a center starts with "
                      f"{{acd:{center}}} (with the braces), so all of them share one slot.")
    if not answer.startswith("{acd:" + center + "}"):
        return _wrong(f"The hash tag must be exactly {{acd:{center}}} at the start of the key.")
    return _wrong(f"Right tag, wrong rest: after the tag comes ':agent:' and the id "
                  f"{agent_id!r}.")


# -- 01 · JSON documents ----------------------------------------------------------------
async def check_agent_skills(lab: Lab, agent_id: str, expected: list[str]) -> bool:
    """The agent document's skills array is exactly ``expected``."""
    raw = await lab.redis.execute_command(  # type: ignore[no-untyped-call]
        "JSON.GET", lab.keys.agent(agent_id), "$.skills")
    if raw is None:
        return _wrong(f"There is no document at {lab.keys.agent(agent_id)}: run the cells "
                      "that create it first.")
    found = json.loads(raw)
    if not found or not isinstance(found[0], list):
        return _wrong(f"The document has no skills array any more ({found}): run the cell "
                      "again to recreate it, then change the array with JSON.ARRAPPEND / "
                      "JSON.ARRPOP instead of replacing it.")
    found = found[0]
    if found == expected:
        return _ok(f"skills are {found}")
    missing = [s for s in expected if s not in found]
    extra = [s for s in found if s not in expected]
    hints = []
    if any(isinstance(s, list) for s in found):
        hints.append("an element is itself an array: append each skill as its own JSON "
                     "string ('\"Support\"', '\"Sales\"'), not a JSON list")
    if missing:
        hints.append(f"missing {missing} - JSON.ARRAPPEND key $.skills '\"Skill\"' adds one "
                     "(the value is JSON, so the string needs its double quotes)")
    if extra:
        hints.append(f"unexpected {extra} - JSON.ARRPOP key $.skills <index> removes one")
    if len(found) != len(set(map(str, found))):
        hints.append("a skill appears twice: did you run the append cell twice? Re-run the "
                     "cell that creates a2, then append once")
    if not missing and not extra and not hints:
        hints.append(f"right skills, wrong order {found}: ARRAPPEND adds at the end")
    return _wrong("; ".join(hints))


# -- 02 · LAA ----------------------------------------------------------------------------
async def check_laa(lab: Lab, skills: list[str], answer: object) -> bool:
    """The longest available agent having every one of ``skills``."""
    if (verdict := _unanswered(answer, "set the answer to an agent id (a string).")
            ) is not None:
        return verdict
    ranked = await lab.center.candidates(skills)
    if not ranked:
        return _wrong(f"Nobody available has all of {skills}: check the agents' state.")
    best = ranked[0].agent
    if answer == best:
        return _ok(f"{best} has been available the longest among agents with {skills}")
    if answer is None:
        return _wrong("None is not an agent id: r.zinter(...) answers a list of agent ids; "
                      "take its first element, ranked[0].")
    if isinstance(answer, tuple) and len(answer) == 2 and isinstance(answer[1], float):
        return _wrong(f"{answer!r} is (member, score), from withscores=True: the answer is "
                      "the member, answer[0].")
    if isinstance(answer, list | tuple):
        if not answer:
            return _wrong("An empty ranking: did you intersect the right keys "
                          "(k.avail(skill), not the skill names)?")
        return _wrong("Give one agent id, the first of the ranking, not the whole ranking.")
    sum_rank: Any = await lab.redis.zinter([lab.keys.avail(s) for s in skills])
    if sum_rank and answer == sum_rank[0]:
        return _wrong(f"{answer} is first with the default AGGREGATE SUM, which ranks by the "
                      "sum of the timestamps. Use aggregate='MIN' (or MAX): an agent's score "
                      "is then the time it became available.")
    if answer in [c.agent for c in ranked]:
        return _wrong(f"{answer} qualifies, but {best} has waited longer: the lowest score "
                      "(oldest timestamp) comes first in a sorted set.")
    return _wrong(f"{answer!r} is not an available agent with all of {skills}.")


# -- 03 · FIFO ---------------------------------------------------------------------------
async def check_fifo(lab: Lab, popped: object, expected_first: str) -> bool:
    """The contact popped first is the oldest one."""
    if (verdict := _unanswered(popped, "pop with BZPOPMIN and a timeout, keep the reply.")
            ) is not None:
        return verdict
    if popped is None:
        return _wrong("BZPOPMIN answered None: its timeout expired with nothing to pop. "
                      "Pop the demo queue q (not k.queue), in the same cell as the ZADD "
                      "that fills it.")
    if isinstance(popped, list) and popped and isinstance(popped[0], tuple):
        return _wrong(f"{popped!r} is ZPOPMIN's answer (a list of (member, score)): use "
                      "BZPOPMIN, which blocks up to a timeout and answers (key, member, "
                      "score).")
    if not isinstance(popped, list | tuple) or len(popped) != 3:
        return _wrong("BZPOPMIN answers (key, member, score) - or None when the timeout "
                      f"expires with nothing to pop. You have {popped!r}.")
    _key, member, _score = popped
    if member == expected_first:
        return _ok(f"{member} was the oldest: FIFO by enqueue time")
    return _wrong(f"You popped {member}, but {expected_first} was queued first: use BZPOPMIN "
                  "(lowest score = oldest), not BZPOPMAX.")


# -- 04 · the naive step -----------------------------------------------------------------
async def check_naive_step(lab: Lab, assigned: object, contact_id: str, laa: str) -> bool:
    """The naive step assigned ``contact_id`` to the LAA."""
    if (verdict := _unanswered(assigned, "run your step and keep the agent it returns.")
            ) is not None:
        return verdict
    raw = await lab.redis.execute_command(  # type: ignore[no-untyped-call]
        "JSON.GET", lab.keys.contact(contact_id), ".")
    if raw is None:
        return _wrong(f"Contact {contact_id} does not exist: run the whole exercise cell, "
                      "which queues it.")
    contact = json.loads(raw)
    if assigned is None:
        if contact.get("state") == "assigned":
            return _wrong(f"Your step returned None, but {contact_id} is assigned to "
                          f"{contact.get('agent')}: was it assigned by another step before "
                          "(did you run the cell twice)? Re-run the exercise cell.")
        if await lab.redis.zscore(lab.keys.queue, contact_id) is None:
            return _wrong(f"Your step returned None and {contact_id} is no longer in the "
                          "queue: a step that pops and then assigns nobody must put the "
                          "contact back (ZADD).")
        return _wrong(f"Your step returned None: it assigned nobody. {contact_id} is still "
                      "queued; was the queue popped at all (k.queue), and does the ranking "
                      f"come from the contact's skill sets? {laa} is available and qualified.")
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


# -- 05 · no head-of-line blocking -------------------------------------------------------
async def check_no_hol(lab: Lab, served: str, blocked: str) -> bool:
    """With the atomic dispatch, ``served`` is assigned while ``blocked`` (nobody can serve
    it) keeps its place at the head of the queue."""
    first = await lab.redis.zrange(lab.keys.queue, 0, 0)
    try:
        c_served = await lab.center.get_contact(served)
    except NotFound:
        return _wrong(f"There is no contact {served!r} yet: create it with "
                      f"center.create_contact([...], contact_id={served!r}).")
    if c_served.state.value != "assigned":
        return _wrong(f"{served} is {c_served.state.value}: call await center.dispatch() "
                      "after queueing it (and give it a skill an available agent has: "
                      "English).")
    if not first or first[0] != blocked:
        return _wrong(f"{blocked} should still wait at the head of the queue, with its "
                      f"original score; the head is {first}. The textbook dispatcher "
                      "moves it; one atomic center.dispatch() does not.")
    return _ok(f"{served} was served although {blocked}, ahead of it, cannot be: "
               "no head-of-line blocking, and nobody lost their place")


# -- 06 · staffing -----------------------------------------------------------------------
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
    """The smallest number of agents meeting the service level target."""
    from acd.simulator.erlang import ErlangC

    if (verdict := _unanswered(answer, "set agents to a whole number of agents.")
            ) is not None:
        return verdict
    goal = f"{target:.0%} answered within {threshold:g} s"
    if isinstance(answer, float) and answer.is_integer():
        answer = int(answer)
    if isinstance(answer, bool) or not isinstance(answer, int):
        return _wrong(f"Agents come whole: give an int, not {answer!r} "
                      "(round up, never down).")
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


# -- 07 · hash slots ----------------------------------------------------------------------
def check_same_slot(answer: object, center: str) -> bool:
    """A name for a new key of ``center`` that lands in the center's slot (so functions
    and multi-key commands may use it with the center's other keys). In a workshop the
    center is the learner's ``alice.<center>``."""
    center = lesson_center(center)
    if (verdict := _unanswered(answer, "give the new key's name, as a string.")
            ) is not None:
        return verdict
    tag = Keys(center).tag
    if not isinstance(answer, str):
        return _wrong(f"A key name is a string; you gave {answer!r} ({type(answer).__name__}).")
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


# -- 08 · min-replicas-to-write -----------------------------------------------------------
def check_min_replicas(answer: object, nodes: int = 3) -> bool:
    """min-replicas-to-write for 3 Redis nodes (1 primary, 2 replicas)."""
    if (verdict := _unanswered(answer, "set min_replicas to a whole number.")) is not None:
        return verdict
    if isinstance(answer, str) and answer.strip().isdigit():
        return _wrong(f"{answer!r} is text: give the number itself, {int(answer)} (no quotes).")
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
