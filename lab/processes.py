"""Processes of the lab: start one detached with a pid file and a log file, tell whether
it still lives, end it, and wait for a condition with a deadline.

The embedded lab's services (:class:`Service`) and the HA lab's processes in network
namespaces (``lab.ha.procs``) are started, watched and stopped with these. A child that
ended but that nobody reaped stays a zombie (for our own children until we wait for them,
and on machines whose init does not reap orphans): :func:`pid_alive` counts it as dead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.errors import LabError

# The children this Python process started, so that pid_alive can reap them.
_children: dict[int, subprocess.Popen[bytes]] = {}


class StartError(LabError):
    """A component did not come up; the message names it and its log file."""


class WaitTimeout(LabError):
    """A :func:`wait_until` deadline passed; the message names what was awaited."""


def wait_until(condition: Callable[[], object], timeout: float, what: str, *,
               interval: float = 0.05) -> None:
    """Poll ``condition`` until it returns something true; at the deadline raise
    WaitTimeout naming ``what`` and the condition's last error.

    An exception from ``condition`` means "not yet" (a component refuses connections while
    it starts), except StartError: a component that failed does not come up by waiting
    longer, so it ends the wait at once."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            if condition():
                return
        except StartError:
            raise
        except Exception as exc:  # noqa: BLE001 - see the docstring: "not yet"
            last_error = exc
        if time.monotonic() >= deadline:
            detail = (f" (last error: {type(last_error).__name__}: {last_error})"
                      if last_error else "")
            raise WaitTimeout(f"timed out after {timeout:g} s waiting for {what}{detail}")
        time.sleep(interval)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) readable by its owner only: the lab's data, logs
    and pid folders hold the AOF and logs, which other users of the machine must not read."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, text: str) -> Path:
    """Write a file that holds a secret (a password, its hash): its owner's only, from
    the first byte on."""
    private_dir(path.parent)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return path


def spawn(argv: Sequence[str], *, log: Path, pid_file: Path,
          env: Mapping[str, str] | None = None, cwd: Path | None = None
          ) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a session of its own (it outlives us and leads its own process
    group), its output appended to ``log``, its pid written to ``pid_file``; ``env`` is
    added to this process's environment. The folders are private (0700) and the files
    the process creates are its owner's only (umask 077: the AOF, the log)."""
    private_dir(log.parent)
    private_dir(pid_file.parent)
    with open(os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab") as out:
        os.fchmod(out.fileno(), 0o600)
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True,
            umask=0o077)
    _children[proc.pid] = proc
    pid_file.write_text(f"{proc.pid}\n")
    return proc


def pid_alive(pid: int | None) -> bool:
    """True when process ``pid`` exists and is not a zombie."""
    if not pid:
        return False
    for child_pid, child in list(_children.items()):
        if child.poll() is not None:  # reaps it
            del _children[child_pid]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it is not ours to signal
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc to ask: the signal said it exists
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def cmdline(pid: int) -> str:
    """The command line of ``pid`` ('' when it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def command_lines() -> dict[int, str]:
    """Every live process's whole command line by pid (Linux /proc). Not ``ps``: ps cuts
    a line at the terminal's width (80 columns without one), hiding what follows."""
    lines = {}
    for entry in Path("/proc").glob("[0-9]*"):
        line = cmdline(int(entry.name))
        if line:
            lines[int(entry.name)] = line
    return lines


def group_members(pgid: int) -> list[int]:
    """The live processes of process group ``pgid`` (Linux /proc; [] without it): what
    is left of a service whose leader died, e.g. uvicorn's workers after kill -9 of uvicorn."""
    members = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            state, _ppid, pgrp = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue  # ended while we looked
        if int(pgrp) == pgid and state not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def stop_pids(pids: Iterable[int], timeout: float = 10.0, *, sig: int = signal.SIGTERM,
              group: bool = False) -> None:
    """Send ``sig`` to every pid (``group``: to the process group each one leads), wait up
    to ``timeout`` for all of them to end, SIGKILL what is left; WaitTimeout if anything
    outlives the SIGKILL by 5 s. All at once: one slow process does not delay the others."""
    pids = [p for p in pids if pid_alive(p)]
    for pid in pids:
        _send(pid, sig, group)
    try:
        wait_until(lambda: not any(pid_alive(p) for p in pids), timeout,
                   f"pids {pids} to end after signal {sig}")
    except WaitTimeout:
        for pid in pids:
            _send(pid, signal.SIGKILL, group)
        wait_until(lambda: not any(pid_alive(p) for p in pids), 5,
                   f"pids {pids} to end after SIGKILL")


def terminate(process: subprocess.Popen[Any] | int | None, timeout: float = 10.0) -> None:
    """SIGTERM a process (our child's Popen, or a pid), SIGKILL it if it is still there
    after ``timeout``."""
    if not isinstance(process, subprocess.Popen):
        if process:
            stop_pids([process], timeout)
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def _send(pid: int, sig: int, group: bool) -> None:
    if group:
        try:
            os.killpg(pid, sig)
            return
        except (ProcessLookupError, PermissionError):
            pass  # not a group leader (any more): the process alone
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


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

    def launch(self) -> subprocess.Popen[bytes]:
        """Start it without waiting for it to be healthy (the supervisor's restart: it
        watches many services and must not wait on one)."""
        return spawn(self.argv, log=self.log_file, pid_file=self.pid_file, env=self.env,
                     cwd=self.cwd)

    def start(self) -> bool:
        """Start unless running; wait until healthy. Returns False if it ran already."""
        if self.running():
            return False
        proc = self.launch()

        def ready() -> bool:
            if proc.poll() is not None:
                raise StartError(f"{self.name} exited with code {proc.returncode}; "
                                 f"see {self.log_file}")
            return self.healthy()

        try:
            wait_until(ready, self.start_timeout, self.name)
        except (StartError, WaitTimeout) as exc:
            self.stop()
            if isinstance(exc, StartError):
                raise
            raise StartError(f"{self.name} did not answer in time; see {self.log_file}"
                             ) from None
        return True

    def stop(self, timeout: float = 10.0) -> bool:
        """SIGTERM the process group, SIGKILL at the deadline. False if it was not running."""
        pid = self.pid()
        self.pid_file.unlink(missing_ok=True)
        if pid is None:
            return False
        stop_pids([pid], timeout, group=True)
        return True
