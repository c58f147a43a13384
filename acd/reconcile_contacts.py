"""The reconciler's checks of a center's contacts and the waiting contacts' index: each
contact document against the queue, its combination's FIFO, its step timer and its agent;
each member of the queue and of every combination against its document; each
combination's count, ready and parked entries; the due timers (steps, offers); and the
index's totals. What looks wrong is repaired with acd_repair_contact, acd_repair_combo or
acd_repair_total (acd.reconcile_pass), which re-read it."""

from __future__ import annotations

from typing import Any, cast

from acd.functions import fcall
from acd.levels import needs, signature
from acd.priority import virtual_arrival
from acd.reconcile_pass import HELD, Doc, ReconcilePass, batches, read_docs, zset_members


def _step_due(doc: Doc) -> float | None:
    """When a queued contact's next step by waiting time is due (None: no step left)."""
    steps, taken = doc.get("steps") or [], doc.get("steps_taken") or []
    if len(taken) >= len(steps):
        return None
    return float(doc["queued_at"] + steps[len(taken)]["after_ms"])


def _sig(doc: Doc) -> str:
    return signature(doc.get("skills") or [], doc.get("min_levels"))


class ContactChecks(ReconcilePass):
    """A pass's checks of the contacts and the index (see the module)."""

    # -- contacts: each document against the queue, its FIFO and its agent ------------
    async def contacts(self) -> None:
        prefix = self.keys.contact("")
        scan = self.redis.scan_iter(match=self.keys.pattern("contact"), count=self.batch)
        async for keys in batches(scan, self.batch):
            ids = [key[len(prefix):] for key in keys]
            docs = await read_docs(self.redis, keys)
            named = [d.get("agent") if d and d.get("state") in HELD else None
                     for d in docs]
            agents = await read_docs(self.redis, [self.keys.agent(a) for a in named if a])
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
        async for members in batches(zset_members(scan), self.batch):
            docs = await read_docs(self.redis, [self.keys.contact(c) for c in members])
            self.report.checked["queue"] += len(members)
            for cid, doc in zip(members, docs, strict=True):
                if doc is None or doc.get("state") != "queued":
                    await self.repair_contact(cid)

    async def combos(self) -> None:
        k, r = self.keys, cast(Any, self.redis)
        sigs = {s[len(k.combo("")):] async for s in r.scan_iter(match=k.pattern("combo"),
                                                                 count=self.batch)}
        sigs |= {str(s) async for s in r.hscan_iter(k.waiting_sigs, no_values=True)}
        sigs |= {str(s) async for s in zset_members(r.zscan_iter(k.ready, count=self.batch))}
        sigs |= {str(s) async for s in r.hscan_iter(k.parked_on, no_values=True)}
        for sig in sorted(sigs):
            self.report.checked["combinations"] += 1
            async for members in batches(zset_members(r.zscan_iter(k.combo(sig),
                                                              count=self.batch)), self.batch):
                docs = await read_docs(self.redis, [k.contact(c) for c in members])
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
