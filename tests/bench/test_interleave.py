"""lab.bench.interleave: versions of the library side by side in one throw-away Redis.

Checks what the tool reports, not timings: two copies of today's library run the very same
commands per create, assignment and completion, named one by one (``_by_command``), and
a version given as a .lua file loads under its own names.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acd.functions import LIBRARY
from lab.bench.interleave import main

pytestmark = pytest.mark.timeout(120)


def test_two_copies_of_a_library_run_the_same_commands(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "copy.lua"
    copy.write_text(LIBRARY)
    assert main(["--against", str(copy), "--agents", "300", "--contacts", "60",
                 "--rounds", "2", "--no-realtime"]) == 0
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    summary = lines[-1]["versions"]
    assert set(summary) == {"here", str(copy)}
    here, other = summary["here"], summary[str(copy)]
    for phase in ("create", "assign", "complete"):
        assert here[f"{phase}_by_command"] == other[f"{phase}_by_command"], phase
        assert sum(here[f"{phase}_by_command"].values()) == pytest.approx(
            here[f"{phase}_commands"], abs=0.1), phase
        assert set(here[f"{phase}_by_command_us"]) == set(here[f"{phase}_by_command"])
    assert here["assign_by_command"]["json.merge"] == 2  # the agent's and the contact's
    assert "warning" not in err  # 2 rounds of 2 versions: balanced


def test_unbalanced_rounds_are_warned_about(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "copy.lua"
    copy.write_text(LIBRARY)
    assert main(["--against", str(copy), "--agents", "300", "--contacts", "30",
                 "--rounds", "1", "--no-realtime"]) == 0
    assert "not a multiple" in capsys.readouterr().err
