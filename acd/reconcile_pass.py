"""One pass of the reconciler (acd.reconcile) over one center: its report, its reads in
short batches, and its calls of the repair functions ("Repairs" in acd/lua/11_repairs.lua), which
re-read and repair one entry atomically. The checks that decide what to repair are in
acd.reconcile_agents and acd.reconcile_contacts."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from acd.center import Center
from acd.commands import command
from acd.functions import fcall

Doc = dict[str, Any]


@dataclass
class Report:
    """What one pass over a center found and did."""

    center: str
    checked: Counter[str] = field(default_factory=Counter)
    repaired: Counter[str] = field(default_factory=Counter)
    reported: list[str] = field(default_factory=list)
    skipped: str | None = None

    @property
    def repairs(self) -> int:
        return sum(self.repaired.values())

    def as_dict(self) -> dict[str, Any]:
        return {"center": self.center, "checked": dict(self.checked),
                "repairs": self.repairs, "repaired": dict(sorted(self.repaired.items())),
                "reported": self.reported, "skipped": self.skipped}


async def batches(source: AsyncIterator[Any], size: int) -> AsyncIterator[list[str]]:
    """What ``source`` yields, as text, in lists of ``size`` (the last one shorter)."""
    batch: list[str] = []
    async for item in source:
        batch.append(str(item))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


async def read_docs(redis: Redis, keys: Sequence[str]) -> list[Doc | None]:
    """The JSON documents at ``keys``, in order (one JSON.MGET); None for one not found."""
    if not keys:
        return []
    return [json.loads(d) if d else None for d in await command(redis, "JSON.MGET", *keys, ".")]


async def zset_members(pairs: AsyncIterator[Any]) -> AsyncIterator[str]:
    """Members of a ZSCAN (which yields (member, score))."""
    async for member, _score in pairs:
        yield str(member)


# A contact an agent holds: its state -> the agent's (assigned: busy; offered: offered).
HELD = {"assigned": "busy", "offered": "offered"}


class ReconcilePass:
    """What every check of a pass uses: the center, the batch size, the report, and the
    three repair calls, which note what they changed in the report."""

    def __init__(self, center: Center, batch: int) -> None:
        if batch < 1:
            raise ValueError(f"batch must be at least 1, not {batch}")
        self.center, self.batch = center, batch
        self.redis, self.keys = center.redis, center.keys
        self.report = Report(center.name)

    def _note(self, kind: str, changes: Any) -> None:
        for change in changes or []:
            self.report.repaired[f"{kind}:{str(change).split(':')[0]}"] += 1

    async def repair_contact(self, cid: str, combos: Sequence[str] = ()) -> None:
        k = self.keys
        self._note("contact", await fcall(self.redis, "acd_repair_contact",
                                          [k.contact(cid), k.queue], [cid, *combos]))

    async def repair_agent(self, aid: str, skills: Sequence[str] = ()) -> None:
        k = self.keys
        self._note("agent", await fcall(self.redis, "acd_repair_agent",
                                        [k.agent(aid), k.agents], [aid, *skills]))

    async def repair_combo(self, sig: str) -> None:
        k = self.keys
        self._note("combo", await fcall(self.redis, "acd_repair_combo",
                                        [k.waiting_sigs, k.meta], [sig]))
