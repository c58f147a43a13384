"""Every notebook, run with nbval STRICT in the lab as ./start.sh leaves it: its Redis, its
REST API, its two dispatchers, and the environment its JupyterLab gives every kernel.

Outputs are compared with the committed ones (re-record them with ``python -m
lab.execute_notebooks``, which runs them in the same kind of lab); volatile text (ports,
ids, times) is normalised by sanitize.cfg, and cells whose output cannot be stable carry
the ``nbval-ignore-output`` tag and are followed by assert cells. tests/ha runs the same
series in the HA lab.
"""

from __future__ import annotations

import time

import pytest
from lab_runs import NOTEBOOKS, nbval

from lab.lessons import RunningLab


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_notebooks_nbval_strict_in_the_running_lab(running_lab: RunningLab) -> None:
    numbers = {n.name[:2] for n in NOTEBOOKS}
    assert {f"{i:02d}" for i in range(9)} <= numbers, f"notebooks 00-08 expected, found {numbers}"
    started = time.monotonic()
    proc = nbval(NOTEBOOKS, running_lab.kernel_env)
    took = time.monotonic() - started
    print(proc.stdout[-3000:], f"\nthe series took {took:.0f} s in the embedded lab")
    assert proc.returncode == 0, (
        f"nbval failed (exit {proc.returncode}) after {took:.0f} s:\n"
        f"{proc.stdout[-12000:]}\n{proc.stderr[-3000:]}")
