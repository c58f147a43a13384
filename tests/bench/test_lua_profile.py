"""lab.bench.lua_profile: the library timed from inside, per Lua function and command.

Checks what the profile says, not timings: the instrumented library assigns exactly as
the plain one does, and the commands the profile saw in each phase are the ones Redis
counted (INFO commandstats), call for call.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import redis

from acd.functions import LIBRARY
from lab.bench.interleave import Version
from lab.bench.lua_profile import instrumented, main, run
from lab.bench.workload import Workload
from lab.embedded import throwaway_redis

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with throwaway_redis("lua-profile-test") as found:
        yield found


def test_the_profiled_library_assigns_as_the_plain_one(url: str, tmp_path: Path) -> None:
    r = redis.Redis.from_url(url, decode_responses=True)
    r.flushall()
    r.function_flush()
    profiled = tmp_path / "profiled.lua"
    profiled.write_text(instrumented(LIBRARY))
    plain = tmp_path / "plain.lua"
    plain.write_text(LIBRARY)
    workload = Workload.generate(300, 150)
    pairs = []
    for n, path in enumerate([plain, profiled], start=1):
        version = Version(r, str(path), n)
        version.start("same")
        for i, skills in enumerate(workload.agent_skill_sets):
            version.create_agent(workload.agent_id(i), skills)
        for cid, skills in workload.contact_specs:
            version.create_contact(cid, skills)
        served: list[str] = []
        for _ in range(100):
            got = version.dispatch()
            if not got:
                break
            served += got
        agents = [json.loads(cast(Any, r).execute_command(
            "JSON.GET", version.keys.contact(c), "."))["agent"] for c in served]
        pairs.append(list(zip(served, agents, strict=True)))
    assert len(pairs[0]) == workload.contacts
    assert pairs[1] == pairs[0]
    r.function_flush()


def test_the_profile_sees_the_commands_redis_counts(url: str) -> None:
    phases = run(url, "here", agents=300, contacts=150, top=1000)
    assert [p["phase"] for p in phases] == ["create", "assign", "complete"]
    for record in phases:
        seen = {row["name"].removeprefix("CMD ").lower(): row["calls"]
                for row in record["rows"] if row["name"].startswith("CMD ")}
        assert seen == record["server_commands"], record["phase"]
        assert record["self_us_per_unit"] > 0
    assign = {row["name"]: row for row in phases[1]["rows"]}
    assert assign["CMD JSON.MERGE"]["calls"] == 2  # the agent's and the contact's
    assert assign["claim"]["calls"] == 1 and assign["claim"]["incl_us"] >= assign[
        "claim"]["self_us"]


def test_a_file_without_a_library_header_is_refused() -> None:
    with pytest.raises(ValueError, match="#!lua"):
        instrumented("return 1")


def test_the_command_prints_a_line_per_phase(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--agents", "200", "--contacts", "50", "--top", "5"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["phase"] for line in lines] == ["create", "assign", "complete"]
    assert all(len(line["rows"]) == 5 for line in lines)
