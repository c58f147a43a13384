"""The root of every error the lab raises on purpose.

Each message names what failed and what to do about it; ``except LabError`` in a script or
a notebook catches them all (and nothing else)."""


class LabError(RuntimeError):
    """A lab step failed for a reason the user can act on (named in the message)."""
