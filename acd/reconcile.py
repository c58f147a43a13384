"""The reconciler: finds and repairs what writes outside the ACD's functions left behind.

A crash of Redis cannot leave a function call half-done (see "Repairs" in
acd/lua/, and README's Reliability section for the evidence): what can be
inconsistent is state written around the functions (a lesson's textbook dispatcher, a
hand edit, a partial restore) and what is split between Redis and its clients. The
reconciler reads a center in short batches (SCAN, JSON.MGET of ``batch`` documents,
pipelines), and for each entry that looks wrong calls one repair function that re-reads
and repairs that entry atomically: safe while dispatchers run (a dispatch round is
before or after a repair, never inside it), idempotent (a second run finds nothing).

    python -m acd.reconcile                    # every registered center
    python -m acd.reconcile --center c1 --batch 100

Prints one JSON line per center: what it checked, what it repaired (by kind), and what it
only reports (interrupted bulk operations: run the DELETE again; index totals).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from redis.asyncio import Redis

from acd.center import Center
from acd.commands import command
from acd.connection import connect
from acd.functions import fcall
from acd.keys import CENTERS
from acd.levels import needs, signature
from acd.models import DispatchMode
from acd.priority import virtual_arrival
from acd.settings import get_settings

DEFAULT_BATCH = 200  # documents per read: a JSON.MGET of 200 stays well under a ms

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


async def _batches(source: AsyncIterator[Any], size: int) -> AsyncIterator[list[str]]:
    batch: list[str] = []
    async for item in source:
        batch.append(str(item))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


async def _mget(redis: Redis, keys: Sequence[str]) -> list[Doc | None]:
    if not keys:
        return []
    return [json.loads(d) if d else None for d in await command(redis, "JSON.MGET", *keys, ".")]


def _levelled(doc: Doc | None) -> list[tuple[int, str]]:
    """The avail_at sets (level, skill) an agent with levels belongs to while available."""
    levels = (doc or {}).get("levels") or {}
    return [(level, skill) for skill in sorted(levels)
            if skill in (doc or {}).get("skills", [])
            for level in range(2, int(levels[skill]) + 1)]


def _step_due(doc: Doc) -> float | None:
    """When a queued contact's next step by waiting time is due (None: no step left)."""
    steps, taken = doc.get("steps") or [], doc.get("steps_taken") or []
    if len(taken) >= len(steps):
        return None
    return float(doc["queued_at"] + steps[len(taken)]["after_ms"])


# A contact an agent holds: its state -> the agent's (assigned: busy; offered: offered).
HELD = {"assigned": "busy", "offered": "offered"}


def _sig(doc: Doc) -> str:
    return signature(doc.get("skills") or [], doc.get("min_levels"))


class Reconciler:
    """One pass over one center; :func:`reconcile` runs it."""

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

    # -- contacts: each document against the queue, its FIFO and its agent ------------
    async def contacts(self) -> None:
        prefix = self.keys.contact("")
        scan = self.redis.scan_iter(match=self.keys.pattern("contact"), count=self.batch)
        async for keys in _batches(scan, self.batch):
            ids = [key[len(prefix):] for key in keys]
            docs = await _mget(self.redis, keys)
            named = [d.get("agent") if d and d.get("state") in HELD else None
                     for d in docs]
            agents = await _mget(self.redis, [self.keys.agent(a) for a in named if a])
            by_id = dict(zip([a for a in named if a], agents, strict=True))
            async with self.redis.pipeline(transaction=False) as pipe:
                for cid, doc in zip(ids, docs, strict=True):
                    pipe.zscore(self.keys.queue, cid)
                    pipe.zscore(self.keys.combo(_sig(doc or {})), cid)
                    pipe.zscore(self.keys.steps_due, cid)
                scores = await pipe.execute()
            self.report.checked["contacts"] += len(ids)
            for i, (cid, doc) in enumerate(zip(ids, docs, strict=True)):
                if doc is None:
                    continue  # expired between SCAN and MGET
                queued, indexed, due = scores[3 * i], scores[3 * i + 1], scores[3 * i + 2]
                agent = by_id.get(doc.get("agent") or "")
                if doc.get("state") == "queued":
                    wrong = queued is None or indexed != virtual_arrival(
                        queued, doc.get("head_start_ms")) or due != _step_due(doc)
                elif doc.get("state") in HELD:  # its agent holds it, busy or offered
                    wrong = (queued is not None or indexed is not None or agent is None
                             or agent.get("state") != HELD[doc["state"]]
                             or agent.get("contact") != cid)
                    if doc["state"] == "offered" and not wrong:  # and its deadline is set
                        wrong = await self.redis.zscore(self.keys.offers, f"o|{cid}") is None
                else:
                    wrong = queued is not None or indexed is not None
                if wrong:
                    await self.repair_contact(cid)

    # -- the queue and the index: every member names a queued contact -----------------
    async def queue(self) -> None:
        scan = self.redis.zscan_iter(self.keys.queue, count=self.batch)
        async for members in _batches(_first(scan), self.batch):
            docs = await _mget(self.redis, [self.keys.contact(c) for c in members])
            self.report.checked["queue"] += len(members)
            for cid, doc in zip(members, docs, strict=True):
                if doc is None or doc.get("state") != "queued":
                    await self.repair_contact(cid)

    async def combos(self) -> None:
        k, r = self.keys, cast(Any, self.redis)
        sigs = {s[len(k.combo("")):] async for s in r.scan_iter(match=k.pattern("combo"),
                                                                 count=self.batch)}
        sigs |= {str(s) async for s in r.hscan_iter(k.waiting_sigs, no_values=True)}
        sigs |= {str(s) async for s in _first(r.zscan_iter(k.ready, count=self.batch))}
        sigs |= {str(s) async for s in r.hscan_iter(k.parked_on, no_values=True)}
        for sig in sorted(sigs):
            self.report.checked["combinations"] += 1
            async for members in _batches(_first(r.zscan_iter(k.combo(sig),
                                                              count=self.batch)), self.batch):
                docs = await _mget(self.redis, [k.contact(c) for c in members])
                for cid, doc in zip(members, docs, strict=True):
                    if doc is None or doc.get("state") != "queued" or _sig(doc) != sig:
                        await self.repair_contact(cid, [sig])
            if await self._combo_wrong(sig):
                await self.repair_combo(sig)

    async def _combo_wrong(self, sig: str) -> bool:
        k = self.keys
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(k.combo(sig))
            pipe.hget(k.waiting_sigs, sig)
            pipe.zscore(k.ready, sig)
            pipe.hget(k.parked_on, sig)
            pipe.zrange(k.combo(sig), 0, 0, withscores=True)
            mins = needs(sig)
            pipe.execute_command("ZINTERCARD", len(mins), *[
                k.avail_at(m, s) if m > 1 else k.avail(s) for s, m in mins.items()], "LIMIT", 1)
            n, counted, ready, filed, head, servable = await pipe.execute()
        if n != int(counted or 0):
            return True
        if n == 0:
            return ready is not None or filed is not None
        if (ready is None) == (filed is None):
            return True
        if filed is not None:
            shelved = await cast(Any, self.redis).sismember(k.parked(filed), sig)
            return not shelved or int(servable) > 0
        return float(ready) != float(head[0][1])

    # -- agents: each document against its sets and its contact -----------------------
    async def agents(self) -> None:
        k, r = self.keys, cast(Any, self.redis)
        prefix = k.agent("")
        ids = {key[len(prefix):] async for key in r.scan_iter(match=k.pattern("agent"),
                                                               count=self.batch)}
        ids |= {str(a) async for a in r.sscan_iter(k.agents, count=self.batch)}
        ordered = sorted(ids)
        for start in range(0, len(ordered), self.batch):
            await self._agents(ordered[start:start + self.batch])

    async def _agents(self, ids: list[str]) -> None:
        k = self.keys
        docs = await _mget(self.redis, [k.agent(a) for a in ids])
        on = [d.get("contact") if d and d.get("state") in ("busy", "offered") else None
              for d in docs]
        contacts = dict(zip([c for c in on if c],
                            await _mget(self.redis, [k.contact(c) for c in on if c]),
                            strict=True))
        async with self.redis.pipeline(transaction=False) as pipe:
            for aid, doc in zip(ids, docs, strict=True):
                pipe.sismember(k.agents, aid)
                pipe.zscore(k.wrap_up, aid)
                for skill in (doc or {}).get("skills", []):
                    pipe.zscore(k.avail(skill), aid)
                    pipe.sismember(k.skill_agents(skill), aid)
                for level, skill in _levelled(doc):
                    pipe.zscore(k.avail_at(level, skill), aid)
            replies = iter(await pipe.execute())
        self.report.checked["agents"] += len(ids)
        for aid, doc in zip(ids, docs, strict=True):
            listed, wrap_up_end = next(replies), next(replies)
            if doc is None:
                if listed or wrap_up_end is not None:
                    await self.repair_agent(aid)
                continue
            scores, member = [], True
            for _ in doc.get("skills", []):
                scores.append(next(replies))
                member = member and bool(next(replies))
            scores += [next(replies) for _ in _levelled(doc)]  # the same rule as avail's
            since = doc.get("available_since") if doc.get("state") == "available" else None
            wrong = not listed or not member or any(
                (s is None) if since is not None else (s is not None) for s in scores
            ) or (since is not None and any(float(s) != float(since) for s in scores))
            if doc.get("state") in ("busy", "offered"):
                contact = contacts.get(doc.get("contact") or "")
                wrong = wrong or contact is None or contact.get("agent") != aid \
                    or HELD.get(contact.get("state") or "") != doc.get("state")
            elif doc.get("state") == "wrap_up":
                wrong = wrong or doc.get("contact") is not None or wrap_up_end is None \
                    or float(wrap_up_end) != float(doc.get("wrap_up_until") or -1)
            elif doc.get("contact") is not None or doc.get("next_state") is not None:
                wrong = True
            if doc.get("state") != "wrap_up" and wrap_up_end is not None:
                wrong = True
            if wrong:
                await self.repair_agent(aid)

    async def availability(self) -> None:
        """Every member of every availability set is available with that skill."""
        k, r = self.keys, cast(Any, self.redis)
        skills = {str(s) async for s in r.sscan_iter(k.skills, count=self.batch)}
        skills |= {key[len(k.avail("")):] async for key in r.scan_iter(
            match=k.pattern("avail"), count=self.batch)}
        for skill in sorted(skills):
            async for members in _batches(_first(r.zscan_iter(k.avail(skill),
                                                              count=self.batch)), self.batch):
                docs = await _mget(self.redis, [k.agent(a) for a in members])
                self.report.checked["availability"] += len(members)
                for aid, doc in zip(members, docs, strict=True):
                    if (doc is None or doc.get("state") != "available"
                            or skill not in doc.get("skills", [])):
                        await self.repair_agent(aid, [skill])

    async def wrap_ups(self) -> None:
        """Every member of the wrap-up set is an agent in wrap-up (else repaired), and the
        wrap-ups that are due end: no agent stays in wrap-up when no dispatcher runs."""
        k, r = self.keys, cast(Any, self.redis)
        async for members in _batches(_first(r.zscan_iter(k.wrap_up, count=self.batch)),
                                      self.batch):
            docs = await _mget(self.redis, [k.agent(a) for a in members])
            self.report.checked["wrap_ups"] += len(members)
            for aid, doc in zip(members, docs, strict=True):
                if doc is None or doc.get("state") != "wrap_up":
                    await self.repair_agent(aid)
        ended = await self.center.release_wrap_ups()
        if ended:
            self.report.repaired["wrap_up:ended"] += ended

    async def steps(self) -> None:
        """The steps by waiting time that are due are taken (no contact keeps waiting
        for a step when no dispatcher runs); the center's next due time is the due set's
        first entry (acd_steps_release repairs it)."""
        taken = await self.center.release_steps()
        if taken:
            self.report.repaired["steps:taken"] += taken

    async def offers(self) -> None:
        """The offers and exclusions that are due end (acd.offers): no agent stays
        offered, and no contact reserved, when no dispatcher runs. (An offered contact or
        agent whose other side is lost is repaired by the contacts and agents steps.)"""
        done = await self.center.release_offers()
        if done:
            self.report.repaired["offer:expired"] += done

    async def totals(self) -> None:
        """Reported, not repaired: the index's total (acd_dispatch rebuilds the index when
        it disagrees with the queue) and bulk operations an interruption left marked."""
        k, r = self.keys, cast(Any, self.redis)
        meta = {str(a): str(b) for a, b in (await r.hgetall(k.meta)).items()}
        for name, value in sorted(meta.items()):
            if name == "deleting" or name.startswith("deleting_skill:"):
                what = ("center" if name == "deleting" else
                        "skill " + name.split(":", 1)[1])
                self.report.reported.append(f"{what} is being deleted ({value}): an "
                                            "interrupted DELETE, run it again")
        queued, counted, indexed = await self._totals()
        if queued == counted != indexed:
            self._note("index", await fcall(self.redis, "acd_repair_total",
                                            [k.waiting_sigs, k.meta, k.queue], []))
            queued, counted, indexed = await self._totals()
        if not queued == counted == indexed:
            self.report.reported.append(f"the queue holds {queued}, the index counts "
                                        f"{indexed} and its combinations {counted}")

    async def _totals(self) -> tuple[int, int, int]:
        """The queue's length, the sum of the combinations' counts, the index's total."""
        k, r = self.keys, cast(Any, self.redis)
        counted = 0
        async for _sig, n in r.hscan_iter(k.waiting_sigs):
            counted += int(n)
        return (int(await r.zcard(k.queue)), counted,
                int(await r.hget(k.meta, "indexed") or 0))

    async def run(self) -> Report:
        if await self.center.dispatch_mode() is DispatchMode.MANUAL:
            self.report.skipped = ("manual dispatch mode: a lesson's own dispatcher may "
                                   "hold a contact between its commands")
            return self.report
        # Agents first: a contact whose agent is repaired may then look right.
        for step in (self.agents, self.availability, self.wrap_ups, self.offers, self.contacts,
                     self.queue, self.combos, self.steps, self.totals):
            await step()
        return self.report


async def _first(pairs: AsyncIterator[Any]) -> AsyncIterator[str]:
    """Members of a ZSCAN (which yields (member, score))."""
    async for member, _score in pairs:
        yield str(member)


async def reconcile(center: Center, batch: int = DEFAULT_BATCH) -> Report:
    """Check every entry of ``center`` and repair those a write around the functions
    left inconsistent; see the module docstring."""
    return await Reconciler(center, batch).run()


async def reconcile_all(redis: Redis, centers: Sequence[str] = (),
                        batch: int = DEFAULT_BATCH) -> list[Report]:
    """:func:`reconcile` each of ``centers`` (default: every registered center)."""
    names = list(centers) or sorted(map(str, await cast(Any, redis.smembers(CENTERS))))
    return [await reconcile(Center(redis, name), batch) for name in names]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m acd.reconcile", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--redis-url", default=None, help="default: REDIS_URL (.env)")
    p.add_argument("--center", action="append", default=[],
                   help="center to reconcile; repeat for several (default: every "
                        "registered center)")
    p.add_argument("--batch", type=int, default=DEFAULT_BATCH,
                   help="entries per read (default: %(default)s)")
    return p.parse_args(argv)


async def amain(args: argparse.Namespace) -> int:
    redis = connect(args.redis_url or get_settings().redis_url)
    try:
        for report in await reconcile_all(redis, args.center, args.batch):
            print(json.dumps(report.as_dict()), flush=True)
    finally:
        await redis.aclose()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.batch < 1:
        raise SystemExit(f"--batch must be at least 1, not {args.batch}")
    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
