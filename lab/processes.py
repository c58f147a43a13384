"""Background services with pid files and log files, and waiting with deadlines."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.errors import LabError


class StartError(LabError):
    """A component did not come up; the message names it and its log file."""


def wait_until(check: Callable[[], bool], timeout: float, what: str,
               interval: float = 0.05) -> None:
    """Poll ``check`` until it is true; raise TimeoutError naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - a check that errors is a check that says no
            pass
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not ready after {timeout:.0f} s")
        time.sleep(interval)


def terminate(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """SIGTERM a child we started, SIGKILL it if it is still there after ``timeout``."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by us) is not alive.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


@dataclass
class Service:
    """A long-running process of the lab, detached so it outlives the starter."""

    name: str
    argv: Sequence[str]
    run_dir: Path
    healthy: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)
    start_timeout: float = 60.0
    cwd: Path | None = None

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "run" / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / "logs" / f"{self.name}.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def running(self) -> bool:
        return self.pid() is not None

    def start(self) -> bool:
        """Start unless running; wait until healthy. Returns False if it ran already."""
        if self.running():
            return False
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                list(self.argv), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, cwd=self.cwd, env={**os.environ, **self.env},
                start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))
        try:
            wait_until(lambda: _exited(proc) or self.healthy(), self.start_timeout, self.name)
            if proc.poll() is not None:
                raise TimeoutError
        except TimeoutError:
            code = proc.poll()
            self.stop()
            why = f"exited with code {code}" if code is not None else "did not answer in time"
            raise StartError(f"{self.name} {why}; see {self.log_file}") from None
        return True

    def stop(self, timeout: float = 10.0) -> bool:
        """SIGTERM the process group, SIGKILL at the deadline. False if it was not running."""
        pid = self.pid()
        self.pid_file.unlink(missing_ok=True)
        if pid is None:
            return False
        _signal_group(pid, signal.SIGTERM)
        try:
            wait_until(lambda: not pid_alive(pid), timeout, f"{self.name} stop")
        except TimeoutError:
            _signal_group(pid, signal.SIGKILL)
            wait_until(lambda: not pid_alive(pid), 5, f"{self.name} kill")
        return True


def _exited(proc: subprocess.Popen[bytes]) -> bool:
    return proc.poll() is not None


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
