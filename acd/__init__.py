"""A skills-based contact-center ACD on Redis: the package the lab teaches.

Start with :class:`acd.center.Center` for operations and :mod:`acd.dispatcher` for the
dispatcher; key names live in :mod:`acd.keys`, the atomic operations in ``acd/lua/``.
"""

from acd.center import Center
from acd.connection import connect
from acd.errors import (
    ACDError,
    AlreadyExists,
    Conflict,
    InvalidInput,
    InvalidState,
    NotDurable,
    NotFound,
    Overloaded,
)
from acd.models import (
    Agent,
    AgentChoice,
    AgentState,
    Assignment,
    Contact,
    ContactState,
    DispatchMode,
)

__all__ = [
    "ACDError", "Agent", "AgentChoice", "AgentState", "AlreadyExists", "Assignment", "Center",
    "Conflict",
    "Contact", "ContactState", "DispatchMode", "InvalidInput", "InvalidState", "NotDurable",
    "NotFound", "Overloaded", "connect",
]
