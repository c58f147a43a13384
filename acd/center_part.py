"""What every part of :class:`acd.center.Center` may use of the center.

Center is put together from parts, each in the module of its feature (acd.priority,
acd.offers, acd.stats, acd.bulk, ...), so that center.py stays the agents', contacts' and
dispatch's home. A part inherits :class:`CenterPart`, which declares for mypy what
Center's ``__init__`` sets up and which of Center's methods a part may call.
"""

from __future__ import annotations

from redis.asyncio import Redis

from acd.functions import Functions
from acd.keys import Keys


class CenterPart:
    """The attributes and methods of acd.center.Center a part of it uses."""

    redis: Redis
    keys: Keys
    name: str
    _fn: Functions

    async def register(self) -> None: ...  # acd.center.Center's
