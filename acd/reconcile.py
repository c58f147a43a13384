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
from collections.abc import Sequence
from typing import Any, cast

from redis.asyncio import Redis

from acd.center import Center
from acd.connection import connect
from acd.keys import CENTERS
from acd.models import DispatchMode
from acd.reconcile_agents import AgentChecks
from acd.reconcile_contacts import ContactChecks
from acd.reconcile_pass import Report
from acd.settings import get_settings

DEFAULT_BATCH = 200  # documents per read: a JSON.MGET of 200 stays well under a ms


class Reconciler(AgentChecks, ContactChecks):
    """One pass over one center (the checks: acd.reconcile_agents, acd.reconcile_contacts);
    :func:`reconcile` runs it."""

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
