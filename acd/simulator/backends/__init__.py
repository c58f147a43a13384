"""How the simulator reaches the ACD: in-process through acd.Center (``in_process``), or
through the REST API (``api``). Both implement :class:`Backend` (``base``); every call
has a deadline."""

from acd.simulator.backends.api import ApiBackend, ApiError, DemoApiBackend
from acd.simulator.backends.base import Backend, ClockSync, Event
from acd.simulator.backends.in_process import RedisBackend

__all__ = ["ApiBackend", "ApiError", "Backend", "ClockSync", "DemoApiBackend", "Event",
           "RedisBackend"]
