"""Where a function call's time goes inside the Lua: time per Lua function and per command.

    python -m lab.bench.lua_profile                       # throw-away Redis, ~1 minute
    python -m lab.bench.lua_profile --rev 7edc752 --agents 1000 --top 15

INFO commandstats says what each Redis command inside a call cost; the rest of the call
is Lua (argument and reply conversion, tables, strings, JSON decoding), and nothing in
Redis says which part of the Lua. This loads an instrumented copy of the library: every
top-level ``local function`` is wrapped to time itself with ``os.clock()`` (a CPU clock
Redis allows inside functions, at run time only), every ``redis.call`` is timed under
its command's name, and an extra function returns the totals. Then lab.bench's workload
runs through it (``--agents`` agents with 8 of 20 skills, ``--contacts`` contacts of 2-3)
in three phases: creates, dispatch rounds of 25 until every contact is assigned,
completions.

Prints one JSON line per phase: per unit (a create, an assignment, a completion), each
Lua function's and command's calls, inclusive µs and self µs (inclusive minus what it
called), the largest self first. The wrappers cost about a µs per call and land in their
callers' self time, so the figures are for comparing parts with each other, not absolute
(``python -m lab.bench.interleave`` measures calls as they run).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import redis

from lab.bench.interleave import Version, library
from lab.bench.workload import Workload
from lab.embedded import on_redis

# Too small to time without the wrapper costing more than they do (key names, errors).
NOT_WRAPPED = re.compile(r"^(k_|fail$|register$)")

PROFILER = r"""
local __acc, __stack = {}, {}
local function __enter(name) __stack[#__stack + 1] = {name, os.clock(), 0} end
local function __leave(...)
  local top = table.remove(__stack)
  local spent = os.clock() - top[2]
  local acc = __acc[top[1]] or {0, 0, 0}
  acc[1], acc[2], acc[3] = acc[1] + 1, acc[2] + spent, acc[3] + spent - top[3]
  __acc[top[1]] = acc
  local parent = __stack[#__stack]
  if parent then parent[3] = parent[3] + spent end
  return ...
end
local function __wrap(name, f) return function(...) __enter(name) return __leave(f(...)) end end
local function __rcall(cmd, ...) __enter('CMD ' .. cmd) return __leave(redis.call(cmd, ...)) end
"""

REPORT = r"""
redis.register_function('acd_lua_profile', function(keys, args)
  local out = {}
  for name, acc in pairs(__acc) do
    out[#out + 1] = {name, acc[1], tostring(acc[2]), tostring(acc[3])}
  end
  __acc = {}
  return out
end)
"""


def instrumented(source: str) -> str:
    """The library with every top-level local function and every redis.call timed, and
    ``acd_lua_profile`` (returns the totals since its last call, and starts again).

    The wrappers are assigned at the end of the library, where every top-level local is
    in scope: the functions that call them hold the variable, not the value, so they call
    the wrapped one; the entry points were registered with their own values (unwrapped,
    the phase's unit is their caller's work)."""
    header, _, body = source.partition("\n")
    if not header.startswith("#!lua"):
        raise ValueError("not a Redis Functions library (no #!lua header)")
    names = dict.fromkeys(re.findall(r"^local function ([A-Za-z_]\w*)\s*\(", body, re.M))
    wraps = "\n".join(f"{n} = __wrap('{n}', {n})" for n in names if not NOT_WRAPPED.match(n))
    body = body.replace("redis.call(", "__rcall(")
    return f"{header}\n{PROFILER}{body}\n{wraps}\n{REPORT}"


def totals(r: redis.Redis, prefix: str) -> dict[str, tuple[int, float, float]]:
    rows = cast(Any, r).execute_command("FCALL", f"{prefix}acd_lua_profile", 0)
    return {str(n): (int(c), float(t), float(s)) for n, c, t, s in rows}


def phase(name: str, spent: dict[str, tuple[int, float, float]], version: Version,
          units: int, top: int) -> dict[str, Any]:
    """A phase's record; ``server_commands`` is INFO commandstats's count of the same
    calls' commands (per unit), which the profile's ``CMD`` rows must match."""
    rows = sorted(spent.items(), key=lambda kv: -kv[1][2])
    _, _, by_command = version.timings()
    return {"phase": name, "units": units,
            "server_commands": {c: round(n / units, 2) for c, (n, _) in sorted(by_command.items())},
            "self_us_per_unit": round(sum(s for _, _, s in spent.values()) / units * 1e6, 1),
            "rows": [{"name": n, "calls": round(c / units, 2),
                      "incl_us": round(t / units * 1e6, 1), "self_us": round(s / units * 1e6, 1)}
                     for n, (c, t, s) in rows[:top]]}


def run(url: str, rev: str, agents: int, contacts: int, top: int) -> list[dict[str, Any]]:
    """The three phases' profiles of ``rev``'s library on a fresh workload."""
    r = redis.Redis.from_url(url, decode_responses=True)
    r.flushall()
    r.function_flush()
    workload = Workload.generate(agents, min(contacts, int(agents * 0.6)))
    with tempfile.TemporaryDirectory(prefix="acd-lua-profile-") as tmp:
        path = Path(tmp) / "profiled.lua"
        path.write_text(instrumented(library(rev)))
        version = Version(r, str(path), 1)
    version.start("profile")
    for i, skills in enumerate(workload.agent_skill_sets):
        version.create_agent(workload.agent_id(i), skills)
    version.start("profile")  # the same center: its commands are counted from here
    totals(r, version.prefix)  # (and its Lua: the agents' creation is dropped)
    out = []
    for cid, skills in workload.contact_specs:
        version.create_contact(cid, skills)
    out.append(phase("create", totals(r, version.prefix), version, workload.contacts, top))
    served: list[str] = []
    for _ in range(10 * workload.contacts):
        if len(served) >= workload.contacts:
            break
        served += version.dispatch()
    else:
        raise RuntimeError("the contacts were not all assigned")
    out.append(phase("assign", totals(r, version.prefix), version, len(served), top))
    for cid in served:
        version.complete(cid)
    out.append(phase("complete", totals(r, version.prefix), version, len(served), top))
    r.flushall()
    r.function_flush()
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m lab.bench.lua_profile", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--redis-url", help="use this Redis, FLUSHALL and FUNCTION FLUSH first "
                                       "(default: a throw-away embedded one)")
    p.add_argument("--rev", default="here",
                   help="a git revision or a .lua file (default: this worktree's acd/lua/)")
    p.add_argument("--agents", type=int, default=10_000)
    p.add_argument("--contacts", type=int, default=2_000, help="at most 0.6 x agents")
    p.add_argument("--top", type=int, default=25, help="rows per phase")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    records = on_redis(args.redis_url, "lua-profile",
                       lambda url: run(url, args.rev, args.agents, args.contacts, args.top))
    for record in records:
        print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
