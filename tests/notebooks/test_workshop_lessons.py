"""The lessons run unchanged as a workshop learner (lab/workshop.py): every notebook under
nbval in the lab as ./start.sh leaves it, in a kernel whose connection file is a learner's
(``python -m lab workshop add``), so every Redis call is that learner's user and every
center the learner's ``<learner>.nbNN``.

Outputs are not compared (``--nbval-lax``): they name the learner's centers, and a center's
hash slot follows its name; the assert cells of the lessons still check what they teach.
Long tier; after test_secrets in a plain -m long run (file order), whose empty ACL LOG
check must not see a learner's refusals."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from lab_runs import NOTEBOOKS, nbval

from lab.envfile import read_env
from lab.learners import connection_file
from lab.lessons import RunningLab

REPO = Path(__file__).resolve().parents[2]
LEARNER = "wsl"


def _lab(running_lab: RunningLab, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab", "workshop", *args], cwd=REPO,
                          env=running_lab.env, capture_output=True, text=True, timeout=60)


@pytest.mark.long
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_lessons_run_unchanged_as_a_workshop_learner(running_lab: RunningLab) -> None:
    added = _lab(running_lab, "add", LEARNER)
    assert added.returncode == 0, added.stderr
    path = connection_file(running_lab.home, LEARNER)
    assert str(path) in added.stdout
    admin_url = read_env(Path(running_lab.env["LAB_ENV_FILE"]))["REDIS_ADMIN_URL"]
    try:
        with redis.Redis.from_url(admin_url, decode_responses=True, socket_timeout=5) as admin:
            admin.acl_log_reset()
        started = time.monotonic()
        proc = nbval(NOTEBOOKS, {**running_lab.kernel_env, "ACD_CONNECTION_FILE": str(path)},
                     lax=True)
        took = time.monotonic() - started
        print(proc.stdout[-3000:], f"\nthe series took {took:.0f} s as learner {LEARNER}")
        assert proc.returncode == 0, (
            f"nbval failed (exit {proc.returncode}) after {took:.0f} s:\n"
            f"{proc.stdout[-12000:]}\n{proc.stderr[-3000:]}")
        with redis.Redis.from_url(admin_url, decode_responses=True, socket_timeout=5) as admin:
            refused = [(e["username"], e["reason"], e["object"]) for e in admin.acl_log()]
            theirs = [k for k in admin.scan_iter(match="*") if LEARNER in k]
        print("refused to the learner:", refused)
        # Nothing was refused: the lessons never try what a learner may not do.
        assert refused == [], refused
        own = (f"{{acd:{LEARNER}.", f"{{acd:{LEARNER}}}")
        assert all(k.startswith(own) for k in theirs), theirs
    finally:
        removed = _lab(running_lab, "remove", LEARNER)
        assert removed.returncode == 0, removed.stderr
