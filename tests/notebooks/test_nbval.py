"""Every notebook, run with nbval STRICT: outputs compared with the committed ones.

The notebooks run in a child ``pytest --nbval`` (not --nbval-lax) so the main suite
(``pytest tests``) needs no special collection rules; the child's kernels use this
session's Redis through REDIS_URL (``--nbval-current-env``: the same Python). Volatile
text (ports, ids, times) is normalised by sanitize.cfg; cells whose output cannot be
stable carry the ``nbval-ignore-output`` tag and are followed by assert cells.

Notebook 08 takes its recorded-drill branch here (ACD_ENV is pinned to embedded); 06 runs
the REST API in the kernel and a ~12 s simulation; 07 starts a one-node cluster for CROSSSLOT.

Re-record the outputs after changing a notebook: ``python -m lab.execute_notebooks``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CELL_TIMEOUT = 60


def nbval_command(notebooks: list[Path]) -> list[str]:
    return [sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env",
            "--nbval-sanitize-with", str(HERE / "sanitize.cfg"),
            "--nbval-cell-timeout", str(CELL_TIMEOUT),
            "-p", "no:cacheprovider", "-o", "addopts=", "-q", "--rootdir", str(REPO),
            *[str(n) for n in notebooks]]


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_notebooks_nbval_strict(redis_url: str) -> None:
    assert NOTEBOOKS, "no notebooks found"
    numbers = {n.name[:2] for n in NOTEBOOKS}
    assert {f"{i:02d}" for i in range(9)} <= numbers, f"notebooks 00-08 expected, found {numbers}"
    # The kernels inherit this environment: the test's Redis, a pinned ACD_ENV (the
    # committed outputs name it) and the repository on the import path.
    env = {**os.environ, "REDIS_URL": redis_url, "ACD_ENV": "embedded",
           "PYTHONPATH": str(REPO)}
    started = time.monotonic()
    proc = subprocess.run(nbval_command(NOTEBOOKS), cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=360)
    took = time.monotonic() - started
    print(proc.stdout[-3000:])
    assert proc.returncode == 0, (
        f"nbval failed (exit {proc.returncode}) after {took:.0f} s:\n"
        f"{proc.stdout[-12000:]}\n{proc.stderr[-3000:]}")
    assert took < 180, f"the notebook series took {took:.0f} s, more than 3 minutes"
