"""nbval over the notebooks in a child pytest, with the environment of a lab's kernels
(lab.lessons): strict mode, outputs compared with the committed ones, volatile text
normalised by tests/notebooks/sanitize.cfg."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SANITIZE = REPO / "tests" / "notebooks" / "sanitize.cfg"
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def nbval(notebooks: list[Path], env: dict[str, str], cell_timeout: int = 90,
          timeout: float = 600, lax: bool = False) -> subprocess.CompletedProcess[str]:
    """``pytest --nbval`` (strict) over ``notebooks`` in a child with ``env``; ``lax``:
    ``--nbval-lax``, every cell must run without error, outputs are not compared."""
    cmd = [sys.executable, "-m", "pytest", "--nbval-lax" if lax else "--nbval",
           "--nbval-current-env",
           "--nbval-sanitize-with", str(SANITIZE), "--nbval-cell-timeout", str(cell_timeout),
           "-p", "no:cacheprovider", "-o", "addopts=", "-q", "--rootdir", str(REPO),
           *[str(n) for n in notebooks]]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)
