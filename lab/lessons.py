"""The lessons as learners run them: in a lab that ./start.sh starts, with the environment
its JupyterLab gives every kernel.

``running_lab(folder)`` starts the embedded lab exactly as ./start.sh does (Redis with
RedisJSON, the REST API, two dispatchers, JupyterLab), in a home of its own on free ports,
and stops it with ./stop.sh --purge at the end. ``kernel_env(pid)`` reads the environment
of a running JupyterLab process (Linux /proc), which is what its kernels inherit: REDIS_URL,
API_URL, ACD_ENV, LAB_HOME... Used by ``python -m lab.execute_notebooks`` (the committed
outputs) and by the tests that run the notebooks where learners live them.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lab.embedded import free_port
from lab.errors import LabError

REPO = Path(__file__).resolve().parents[1]


class LessonLabError(LabError):
    """The lab for the lessons could not start: the message has start.sh's output."""


def kernel_env(jupyter_pid: int) -> dict[str, str]:
    """The environment of a running JupyterLab process: what its kernels inherit."""
    raw = Path(f"/proc/{jupyter_pid}/environ").read_bytes()
    pairs = (item.decode().split("=", 1) for item in raw.split(b"\0") if b"=" in item)
    return dict(pairs)


@dataclass
class RunningLab:
    env: dict[str, str]  # what started it (LAB_HOME, ports...)
    home: Path
    kernel_env: dict[str, str]  # what its JupyterLab gives kernels

    @property
    def jupyter_url(self) -> str:
        return self.kernel_env["JUPYTER_URL"]


@contextmanager
def running_lab(folder: Path, timeout: float = 300) -> Iterator[RunningLab]:
    """``./start.sh`` with its home in ``folder`` and free ports; ``./stop.sh --purge``
    at the end, whatever happens."""
    home = folder / "home"
    env = {**os.environ, "LAB_HOME": str(home), "LAB_ENV_FILE": str(folder / "lab.env"),
           "LAB_REDIS_PORT": str(free_port()), "LAB_API_PORT": str(free_port()),
           "LAB_JUPYTER_PORT": str(free_port())}
    try:
        started = time.monotonic()
        proc = subprocess.run(["./start.sh"], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=timeout)
        if proc.returncode != 0:
            raise LessonLabError(f"./start.sh failed:\n{proc.stdout}\n{proc.stderr}")
        print(f"./start.sh took {time.monotonic() - started:.1f} s")
        pid = int((home / "run" / "jupyter.pid").read_text())
        yield RunningLab(env, home, kernel_env(pid))
    finally:
        subprocess.run(["./stop.sh", "--purge"], cwd=REPO, env=env, capture_output=True,
                       timeout=120, check=False)
