"""The reconciler's checks of a center's agents: each agent document against its sets
(the agents set, availability per skill and level, wrap-up) and its contact, and each
member of those sets against its document; an agent that looks wrong is repaired with
acd_repair_agent (acd.reconcile_pass), which re-reads it."""

from __future__ import annotations

from typing import Any, cast

from acd.reconcile_pass import HELD, Doc, ReconcilePass, batches, read_docs, zset_members


def _levelled(doc: Doc | None) -> list[tuple[int, str]]:
    """The avail_at sets (level, skill) an agent with levels belongs to while available."""
    levels = (doc or {}).get("levels") or {}
    return [(level, skill) for skill in sorted(levels)
            if skill in (doc or {}).get("skills", [])
            for level in range(2, int(levels[skill]) + 1)]


class AgentChecks(ReconcilePass):
    """A pass's checks of the agents (see the module)."""

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
        docs = await read_docs(self.redis, [k.agent(a) for a in ids])
        on = [d.get("contact") if d and d.get("state") in ("busy", "offered") else None
              for d in docs]
        contacts = dict(zip([c for c in on if c],
                            await read_docs(self.redis, [k.contact(c) for c in on if c]),
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
            async for members in batches(zset_members(r.zscan_iter(k.avail(skill),
                                                              count=self.batch)), self.batch):
                docs = await read_docs(self.redis, [k.agent(a) for a in members])
                self.report.checked["availability"] += len(members)
                for aid, doc in zip(members, docs, strict=True):
                    if (doc is None or doc.get("state") != "available"
                            or skill not in doc.get("skills", [])):
                        await self.repair_agent(aid, [skill])

    async def wrap_ups(self) -> None:
        """Every member of the wrap-up set is an agent in wrap-up (else repaired), and the
        wrap-ups that are due end: no agent stays in wrap-up when no dispatcher runs."""
        k, r = self.keys, cast(Any, self.redis)
        async for members in batches(zset_members(r.zscan_iter(k.wrap_up, count=self.batch)),
                                      self.batch):
            docs = await read_docs(self.redis, [k.agent(a) for a in members])
            self.report.checked["wrap_ups"] += len(members)
            for aid, doc in zip(members, docs, strict=True):
                if doc is None or doc.get("state") != "wrap_up":
                    await self.repair_agent(aid)
        ended = await self.center.release_wrap_ups()
        if ended:
            self.report.repaired["wrap_up:ended"] += ended
