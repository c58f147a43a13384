"""The ACD's exceptions: small, typed, each message names what is wrong."""

from __future__ import annotations


class ACDError(Exception):
    """Base class of every error the acd package raises on purpose."""


class InvalidInput(ACDError, ValueError):
    """An argument is malformed: an id, a skill, a name or a skill list."""


class NotFound(ACDError, LookupError):
    """An agent, contact or skill that does not exist."""


class Conflict(ACDError):
    """The thing exists already, or its state forbids the operation."""


class AlreadyExists(Conflict):
    """An agent or contact with that id exists already."""


class InvalidState(Conflict):
    """The operation does not apply in the current state (e.g. deleting a busy agent)."""


class Overloaded(ACDError):
    """A stated limit was reached (a center's queued contacts, this process's connections
    to Redis); nothing was written, and retrying later is safe."""


class NotDurable(ACDError):
    """Fewer replicas than required acknowledged a write in time; retrying is safe."""


_CODES: dict[str, type[ACDError]] = {
    "INVALID": InvalidInput,
    "NOTFOUND": NotFound,
    "EXISTS": AlreadyExists,
    "STATE": InvalidState,
    "LIMIT": Overloaded,
}


def from_reply(message: str) -> ACDError | None:
    """Map an error reply of the acd Lua library ('NOTFOUND agent 7') to an exception."""
    code, _, rest = message.partition(" ")
    kind = _CODES.get(code)
    # Redis appends where the error was raised: " script: acd_x, on @user_function:27."
    return kind(rest.split(" script: ")[0]) if kind else None
