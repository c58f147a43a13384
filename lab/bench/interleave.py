"""Benchmark: versions of the acd library side by side in one Redis, their calls interleaved.

    python -m lab.bench.interleave --against 7edc752 main     # throw-away Redis, ~1 min
    python -m lab.bench.interleave --against 7edc752 --agents 1000 10000 --rounds 6

This VM's speed changes by up to 2x from one minute to the next (other work on the
host), so runs of ``python -m lab.bench`` one after the other cannot tell apart versions
within 20% of each other. Here every version's library is loaded into the same Redis
(renamed: ``v1_acd_dispatch``...), each gets a center of its own with the same agents, and
the driver calls them in turn, one call each: a create of each version, then the next
contact; a dispatch round of each; a completion of each. A change of the machine's speed
hits every version alike. What each call cost is the server's own figure: INFO
commandstats after every call (FCALL's usec: the call's time; the other commands': what it
ran).

Versions: ``here`` (this worktree's acd/lua/) and each ``--against``: a git
revision, or a file ending in .lua (a variant being tried).
The workload is lab.bench's (``--agents`` agents with 8 of 20 skills, all available;
``--contacts`` contacts needing 2-3 of them, fewer than the agents so each finds one).
Prints one JSON line per round, version and agent count, then one summary line per agent
count (medians over the rounds): per version, the µs of a create, of an assignment (a
dispatch round's time over the contacts it assigned) and of a completion, as the median
call (``_us``), the mean (``_mean_us``: the VM's pauses land in it) and the median of the
call-by-call ratios to ``here``'s same calls (``_vs_first``: -0.10 is 10% less time than
here), and the Redis commands an assignment ran (``_commands``; ``_by_command``: per
command, as INFO commandstats names them; ``_by_command_us``: their µs, the rest of a
call's time is Lua's).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, cast

import redis

from acd.functions import LIBRARY, join_library
from acd.keys import Keys
from lab.bench.flood import realtime
from lab.bench.workload import Workload
from lab.embedded import on_redis

REPO = Path(__file__).resolve().parents[2]
BATCH = 25  # acd.center.DEFAULT_BATCH, as the dispatchers call it
BUDGET = 400
IGNORED = {"fcall", "info", "flushall", "function|flush", "function|load"}


def library(rev: str) -> str:
    """The acd library of ``rev``: ``here`` (this worktree's), a .lua file, or a git revision
    (its acd/lua/*.lua joined as acd.functions joins them; before the split, its acd.lua)."""
    if rev == "here":
        return LIBRARY
    if rev.endswith(".lua"):
        return Path(rev).read_text()
    names = _git("ls-tree", "--name-only", f"{rev}:acd/lua").split()
    return join_library([_git("show", f"{rev}:acd/lua/{name}")
                         for name in sorted(names) if name.endswith(".lua")])


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args],
                          check=True, capture_output=True, text=True).stdout


def renamed(source: str, prefix: str) -> str:
    """The library under another name, its functions prefixed (``v1_acd_dispatch``)."""
    source = re.sub(r"^#!lua name=acd\b", f"#!lua name={prefix}acd", source, count=1)
    return re.sub(r"(register(?:_function)?\(\s*')acd_", rf"\g<1>{prefix}acd_", source)


Stats = dict[str, tuple[int, float]]  # command -> (calls, usec)


def commandstats(info: dict[str, Any]) -> Stats:
    return {str(key).removeprefix("cmdstat_"): (int(v["calls"]), float(v["usec"]))
            for key, v in info.items()}


class Version:
    """One version's library in the shared Redis, and its center for the current round."""

    stats: ClassVar[Stats] = {}  # INFO commandstats after the last timed call of any version

    def __init__(self, r: redis.Redis, rev: str, n: int) -> None:
        self.r, self.rev, self.prefix = r, rev, f"v{n}_"
        cast(Any, r).execute_command("FUNCTION", "LOAD", "REPLACE",
                                     renamed(library(rev), self.prefix))
        self.keys = Keys("unset")
        self.us: list[float] = []  # the server time of each timed call, in order
        self.commands = 0  # the Redis commands the timed calls ran, FCALL excluded
        self.by_command: dict[str, tuple[int, float]] = {}  # per command: calls, usec

    def start(self, label: str) -> None:
        self.keys = Keys(f"il-{self.prefix}{label}")
        Version.stats = commandstats(self.r.info("commandstats"))

    def call(self, name: str, keys: Sequence[str], args: Sequence[Any], timed: bool = True
             ) -> Any:
        """FCALL, then INFO commandstats in the same round trip: FCALL's usec grew by this
        call's time (nobody else uses this Redis), the other commands' calls by what it ran."""
        fcall = ("FCALL", f"{self.prefix}acd_{name}", len(keys), *keys, *args)
        if not timed:
            return cast(Any, self.r).execute_command(*fcall)
        pipe: Any = self.r.pipeline(transaction=False)
        pipe.execute_command(*fcall)
        pipe.info("commandstats")
        reply, info = pipe.execute()
        stats = commandstats(info)
        last = Version.stats
        self.us.append(stats["fcall"][1] - last.get("fcall", (0, 0.0))[1])
        for name, (calls, usec) in stats.items():
            before = last.get(name, (0, 0.0))
            ran = calls - before[0]
            if ran and name not in IGNORED:
                self.commands += ran
                so_far = self.by_command.get(name, (0, 0.0))
                self.by_command[name] = (so_far[0] + ran, so_far[1] + usec - before[1])
        Version.stats = stats
        return reply

    def create_agent(self, aid: str, skills: list[str]) -> None:
        k = self.keys
        doc = json.dumps({"fname": "Bench", "lname": aid, "skills": skills})
        self.call("agent_create", [k.agent(aid), k.agents, k.skills], [aid, doc, "1"],
                  timed=False)

    def create_contact(self, cid: str, skills: list[str]) -> None:
        k = self.keys
        self.call("contact_create", [k.contact(cid), k.queue, k.waiting_sigs, k.stats, k.meta],
                  [cid, json.dumps(skills), ",".join(skills), 0, 0])

    def dispatch(self) -> list[str]:
        k = self.keys
        reply = self.call("dispatch", [k.queue, k.waiting_sigs, k.stats, k.meta],
                          [BATCH, BUDGET, "explicit"])
        flat = reply[2:2 + 2 * int(reply[0])]
        return [str(flat[i]) for i in range(0, len(flat), 2)]

    def complete(self, cid: str) -> None:
        k = self.keys
        self.call("contact_end", [k.contact(cid), k.queue, k.waiting_sigs, k.stats],
                  [cid, "complete", 60])

    def timings(self) -> tuple[list[float], int, dict[str, tuple[int, float]]]:
        """The phase's call times, command count and counts per command; a fresh start."""
        out = self.us, self.commands, self.by_command
        self.us, self.commands, self.by_command = [], 0, {}
        return out


def figures(name: str, per_unit: list[float], first: list[float]) -> dict[str, float]:
    """Median and mean per unit of work, and the median of the call-by-call ratios to the
    first version's same calls: a descheduled Redis (the VM's other work) makes single
    calls of every version slow, which the medians leave out."""
    paired = [a / b for a, b in zip(per_unit, first, strict=True) if b > 0]
    return {f"{name}_us": round(statistics.median(per_unit), 2),
            f"{name}_mean_us": round(statistics.fmean(per_unit), 2),
            f"{name}_vs_first": round(statistics.median(paired) - 1, 3)}


def one_round(r: redis.Redis, versions: list[Version], workload: Workload, label: str
              ) -> list[dict[str, Any]]:
    for v in versions:
        v.start(label)
    for i, skills in enumerate(workload.agent_skill_sets):
        for v in versions:
            v.create_agent(workload.agent_id(i), skills)
    for v in versions:
        v.start(label)  # again: the counts from here on
    results: dict[str, dict[str, Any]] = {v.prefix: {"rev": v.rev} for v in versions}
    first = "v1_"  # here: the ratios are to its calls

    def report(name: str, units: dict[str, list[int]]) -> None:
        per: dict[str, list[float]] = {}
        for v in versions:
            us, commands, by_command = v.timings()
            per[v.prefix] = [t / n for t, n in zip(us, units[v.prefix], strict=True) if n > 0]
            done = max(1, sum(units[v.prefix]))
            results[v.prefix][f"{name}_commands"] = round(commands / done, 2)
            results[v.prefix][f"{name}_by_command"] = {
                c: round(n / done, 2) for c, (n, _) in sorted(by_command.items())}
            results[v.prefix][f"{name}_by_command_us"] = {
                c: round(us / done, 2) for c, (_, us) in sorted(by_command.items())}
        for v in versions:
            results[v.prefix].update(figures(name, per[v.prefix], per[first]))

    for cid, skills in workload.contact_specs:
        for v in versions:
            v.create_contact(cid, skills)
    report("create", {v.prefix: [1] * workload.contacts for v in versions})
    assigned: dict[str, list[list[str]]] = {v.prefix: [] for v in versions}
    while not all(sum(map(len, a)) >= workload.contacts for a in assigned.values()):
        if len(assigned[first]) > 10 * workload.contacts // BATCH + 10:
            raise SystemExit(f"round {label}: the contacts are not all assigned")
        for v in versions:
            assigned[v.prefix].append(v.dispatch())
    report("assign", {v.prefix: [len(p) for p in assigned[v.prefix]] for v in versions})
    served = {v.prefix: [c for p in assigned[v.prefix] for c in p] for v in versions}
    for i in range(min(len(c) for c in served.values())):
        for v in versions:
            v.complete(served[v.prefix][i])
    report("complete", {v.prefix: [1] * len(served[v.prefix]) for v in versions})
    r.flushall()
    return [{"agents": workload.agents, "round": label, **results[v.prefix]} for v in versions]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m lab.bench.interleave", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--redis-url", help="use this Redis, FLUSHALL between rounds (default: "
                                       "a throw-away embedded one)")
    p.add_argument("--against", nargs="+", default=[], help="git revisions to compare")
    p.add_argument("--agents", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--contacts", type=int, default=600,
                   help="contacts per round (at most 0.6 x agents)")
    p.add_argument("--rounds", type=int, default=3,
                   help="a multiple of the number of versions, so each goes first as often")
    p.add_argument("--no-realtime", dest="realtime", action="store_false",
                   help="leave Redis's scheduling alone (default: a real-time priority for "
                        "Redis, when root, so that the other work of a busy VM does not "
                        "pause it in the middle of a call and blur the comparison)")
    return p.parse_args(argv)


def run(url: str, args: argparse.Namespace) -> int:
    r = redis.Redis.from_url(url, decode_responses=True)
    r.flushall()
    pid = int(r.info("server")["process_id"])
    print(json.dumps({"redis_realtime": args.realtime and realtime(pid),
                      "load_average": os.getloadavg()}), flush=True)
    revs = ["here", *args.against]
    if args.rounds % len(revs):
        # Round n starts with version n: over rounds not a multiple of the versions, some
        # go first (colder caches) more often; two identical libraries then differ by ~4%.
        print(f"warning: --rounds {args.rounds} is not a multiple of the {len(revs)} versions: "
              "the order is not balanced", file=sys.stderr)
    for agents in args.agents:
        workload = Workload.generate(agents, min(args.contacts, int(agents * 0.6)))
        rows: list[dict[str, Any]] = []
        for n in range(args.rounds):
            r.function_flush()
            # A different order each round: whoever goes first meets a colder cache.
            order = revs[n % len(revs):] + revs[:n % len(revs)]
            versions = [Version(r, rev, revs.index(rev) + 1) for rev in order]
            started = time.perf_counter()
            for row in one_round(r, versions, workload, str(n)):
                row["seconds"] = round(time.perf_counter() - started, 1)
                print(json.dumps(row), flush=True)
                rows.append(row)
        summary: dict[str, Any] = {"agents": agents, "rounds": args.rounds, "versions": {}}
        keys = [k for k in rows[0] if k.endswith(("_us", "_vs_first", "_commands"))
                and "_by_command" not in k]
        for rev in revs:
            mine = [row for row in rows if row["rev"] == rev]
            summary["versions"][rev] = {
                key: round(statistics.median(row[key] for row in mine), 3) for key in keys}
            for key in [k for k in mine[0] if k.endswith(("_by_command", "_by_command_us"))]:
                summary["versions"][rev][key] = {  # (the counts are the same in every round)
                    c: round(statistics.median(row[key].get(c, 0.0) for row in mine), 2)
                    for c in mine[0][key]}
        print(json.dumps(summary), flush=True)
    r.function_flush()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return on_redis(args.redis_url, "interleave", lambda url: run(url, args))


if __name__ == "__main__":
    sys.exit(main())
