"""Every Redis key the ACD uses, in one place.

All keys of one contact center share the hash tag ``{acd:<center>}``, so they live in one
hash slot: every script, function, MULTI and multi-key command of a center is legal on a
sharded database (Redis Cluster, Redis Enterprise), and several centers share one database
without touching each other's keys. ``acd/lua/`` builds the same names from the
tag it finds in its first key; ``tests/test_keys.py`` checks the two agree.
"""

from __future__ import annotations

import re
import unicodedata

from acd.errors import InvalidInput

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
"""Centers, agent ids, contact ids and skills: they become parts of key names."""

_NAME = re.compile(NAME_PATTERN)


def check_printable(kind: str, value: str) -> str:
    """Return ``value`` if every character is printable, else raise ValueError naming the
    first one that is not. Control characters and bidi controls (U+202E shows "txt.exe" as
    "exe.txt") would make what a supervisor reads differ from what is stored; spaces and
    letters of any script are fine. The one home of that rule: person names, and (through
    check_name) every id, skill and center name. ``kind`` ('' for none) starts the message."""
    for ch in value:
        if not ch.isprintable():
            raise ValueError(f"{kind + ': ' if kind else ''}U+{ord(ch):04X} {_char_name(ch)} "
                             "is not allowed in a name (only printable characters, no bidi "
                             "controls)")
    return value


def _char_name(ch: str) -> str:
    # Control characters have no name in the Unicode database: say what they are.
    return unicodedata.name(ch, f"<{_CATEGORY.get(unicodedata.category(ch), 'unassigned')}>")


_CATEGORY = {"Cc": "control", "Cf": "format", "Cs": "surrogate", "Co": "private use"}


def check_name(kind: str, value: str) -> str:
    """Return ``value`` if it may be part of a key name, else raise ValueError naming it
    (and the character, when one is not printable). ``kind`` ('' for none) starts it."""
    if not isinstance(value, str):
        raise ValueError(f"{kind or 'a name'} must be a string, not {type(value).__name__}")
    check_printable(kind, value)
    if not _NAME.fullmatch(value):
        shown = repr(value if len(value) <= 70 else value[:67] + "...")
        raise ValueError(
            f"{kind + ' ' if kind else ''}{shown} is not valid: use 1-64 letters, digits, "
            "'_', '.', '-', starting with a letter or digit"
        )
    return value


LEARNER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"
"""A workshop learner's name: a name without '.', the separator of the centers it owns."""

_LEARNER = re.compile(LEARNER_PATTERN)



def valid_name(kind: str, value: str) -> str:
    """check_name for input from outside: InvalidInput (HTTP 422) instead of ValueError."""
    try:
        return check_name(kind, value)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None

def check_learner(value: str) -> str:
    """Return ``value`` if it may name a workshop learner, else raise ValueError."""
    if not isinstance(value, str) or not _LEARNER.fullmatch(check_printable("learner", value)):
        raise ValueError(f"learner {value!r} is not valid: use 1-32 letters, digits, '_', "
                         "'-', starting with a letter or digit (no '.': it separates the "
                         "learner from the center, alice.nb02)")
    return value


LEARNER_USER_PREFIX = "learner-"
"""A workshop learner's Redis user is ``learner-<name>`` (lab.redis_users): it may not SCAN."""


def learner_owns(learner: str, center: str) -> bool:
    """Whether ``center`` is one of the learner's: ``alice`` owns ``alice`` and
    ``alice.<anything>``, never ``alicea`` nor ``alice-b``."""
    return center == learner or center.startswith(learner + ".")


CENTERS = "acd:centers"
"""Set of every center's name, so dispatchers can serve all of them. A database-wide key
outside every center's slot: it is only read and added to, never inside a script."""

DISPATCHERS = "acd:dispatchers"
"""Sorted set: each running dispatcher process (host:pid), score = the server's ms at its
last heartbeat. /health counts the recent ones."""

CENTERS_STREAM = "acd:centers:new"
"""Stream with an entry per newly registered center: dispatchers start serving it at once."""

API_KEYS = "acd:apikeys"
"""Hash: the REST API's keys, id -> JSON {sha256, center (null: admin), label, created_ms}
(acd/api/apikeys.py). Only the API reads it and only an admin writes it: whoever may
write it may give themselves a key."""


class Keys:
    """Key names of one contact center."""

    __slots__ = ("center", "tag")

    def __init__(self, center: str) -> None:
        self.center = check_name("center", center)
        self.tag = "{acd:" + center + "}"

    # Documents
    def agent(self, agent_id: str) -> str:
        return f"{self.tag}:agent:{agent_id}"

    def contact(self, contact_id: str) -> str:
        return f"{self.tag}:contact:{contact_id}"

    # Sorted sets: member agent id, score = ms the agent became available
    def avail(self, skill: str) -> str:
        return f"{self.tag}:avail:{skill}"

    # Sorted sets, level 2..5: the available agents with the skill at that level or above,
    # score = the ms they became available, as in avail (acd.levels, acd.proficiency)
    def avail_at(self, level: int, skill: str) -> str:
        return f"{self.tag}:avail_at:{level}:{skill}"

    # Sorted sets, only while a center's agent choice is fewest_skills (acd.agent_choice):
    # avail's agents, score = their skill count * 1e13 + the ms they became available
    def fewest(self, skill: str) -> str:
        return f"{self.tag}:fewest:{skill}"

    # Sets: every agent that has the skill, available or not (to delete a skill everywhere)
    def skill_agents(self, skill: str) -> str:
        return f"{self.tag}:skill:{skill}"

    @property
    def queue(self) -> str:
        """Sorted set: member contact id, score = ms it was queued (FIFO)."""
        return f"{self.tag}:queue"

    @property
    def agents(self) -> str:
        """Set of every agent id of the center."""
        return f"{self.tag}:agents"

    @property
    def skills(self) -> str:
        """Set of every skill some agent of the center has."""
        return f"{self.tag}:skills"

    # The waiting contacts' index (see "The waiting contacts' index" in acd/lua/02_queue_index.lua):
    # a dispatch round looks only at skill combinations some available agent may serve.
    @property
    def waiting_sigs(self) -> str:
        """Hash: skill combination of waiting contacts ("a,b") -> how many wait with it."""
        return f"{self.tag}:sigs"

    def combo(self, signature: str) -> str:
        """Sorted set: the contacts waiting with one skill combination, queue scores (FIFO)."""
        return f"{self.tag}:combo:{signature}"

    @property
    def ready(self) -> str:
        """Sorted set: combinations some available agent may serve, score = their oldest
        contact's queue score."""
        return f"{self.tag}:ready"

    def parked(self, skill: str) -> str:
        """Set: combinations nobody available could serve, filed under one of their skills."""
        return f"{self.tag}:parked:{skill}"

    @property
    def parked_on(self) -> str:
        """Hash: parked combination -> the skill it is filed under."""
        return f"{self.tag}:parked_on"

    @property
    def unpark(self) -> str:
        """List: agents' wake-ups whose parked combinations are not all ready again yet
        (bounded work: each call moves a few; dispatch finishes them before assigning)."""
        return f"{self.tag}:unpark"

    @property
    def meta(self) -> str:
        """Hash: center settings (open flag, dispatch mode), the last queue score and how
        many contacts the index holds."""
        return f"{self.tag}:meta"

    @property
    def wrap_up(self) -> str:
        """Sorted set: agents in wrap-up, score = the ms it ends (server clock)."""
        return f"{self.tag}:wrap_up"

    @property
    def steps_due(self) -> str:
        """Sorted set: contacts with a step by waiting time to take (acd.steps), score =
        the ms it is due (server clock)."""
        return f"{self.tag}:steps_due"

    @property
    def step_defaults(self) -> str:
        """Hash: skill combination -> the steps a contact queued with it gets by default."""
        return f"{self.tag}:steps"

    @property
    def outcomes(self) -> str:
        """Hash: '<outcome>|<combination>' -> count (relaxed, overflowed, closed,
        abandoned, abandon_wait_ms): acd.relaxation."""
        return f"{self.tag}:outcomes"

    @property
    def offers(self) -> str:
        """Sorted set: offer deadlines ('o|<contact>') and exclusion ends
        ('x|<contact>|<agent>'), score = the ms (server clock); see acd.offers."""
        return f"{self.tag}:offers"

    @property
    def excluded(self) -> str:
        """Hash: contact -> JSON {agent: ms} of the agents it may not be offered until then."""
        return f"{self.tag}:excluded"

    @property
    def stats(self) -> str:
        """Hash: cumulative counters (offered, assigned, completed, abandoned, wait_ms)."""
        return f"{self.tag}:stats"

    @property
    def events(self) -> str:
        """Stream: every state change, capped, for live views and audits."""
        return f"{self.tag}:events"

    @property
    def wake(self) -> str:
        """Stream: 'something may be assignable now' signals that wake the dispatchers."""
        return f"{self.tag}:wake"

    @property
    def kpis(self) -> str:
        """JSON document: the KPIs of the last simulator run on this center."""
        return f"{self.tag}:kpis"

    def pattern(self, kind: str = "") -> str:
        """SCAN pattern matching every key of the center (for cleanup), or every key of
        one kind ("contact" matches every contact document)."""
        tag = self.tag.replace("{", "\\{").replace("}", "\\}")
        return f"{tag}:{kind}:*" if kind else f"{tag}:*"
