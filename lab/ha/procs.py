"""Processes of the HA lab: started in a namespace, with a pid file and a log file.

Processes run in the foreground (no self-daemonizing) in their own session, so the lab
knows their pid exactly and can reap them. A dead process that nobody reaped stays a
zombie (on machines whose init does not reap orphans): liveness checks treat a zombie
as dead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .net import LabError, ns_name

# Popen handles of the processes this Python process started, to reap them.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def spawn(
    host: str | None,
    cmd: Sequence[str],
    *,
    log: Path,
    pidfile: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start ``cmd`` inside namespace acd-<host> (or on the machine when host is None)."""
    argv = list(cmd) if host is None else ["ip", "netns", "exec", ns_name(host), *cmd]
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=str(cwd) if cwd else None,
            start_new_session=True,
        )
    _CHILDREN[proc.pid] = proc
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    pidfile.write_text(f"{proc.pid}\n")
    return proc.pid


def reap() -> None:
    for pid, proc in list(_CHILDREN.items()):
        if proc.poll() is not None:
            del _CHILDREN[pid]


def alive(pid: int | None) -> bool:
    """True when the process exists and is not a zombie."""
    if not pid:
        return False
    reap()
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def signal_pid(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def terminate(pid: int | None, *, timeout: float = 5.0, sig: int = signal.SIGTERM) -> None:
    """Send ``sig``, wait up to ``timeout`` for the process to end, then SIGKILL it."""
    if not pid or not alive(pid):
        return
    signal_pid(pid, sig)
    if wait_until(lambda: not alive(pid), timeout, raise_on_timeout=False):
        return
    signal_pid(pid, signal.SIGKILL)
    wait_until(lambda: not alive(pid), 5, what=f"pid {pid} to die after SIGKILL")


def wait_until(
    predicate: Callable[[], object],
    timeout: float,
    *,
    interval: float = 0.1,
    what: str = "condition",
    raise_on_timeout: bool = True,
) -> bool:
    """Poll ``predicate`` until it is truthy or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while True:
        try:
            if predicate():
                return True
        except Exception as exc:  # noqa: BLE001 - a probe may fail while a component starts
            last_exc = exc
        if time.monotonic() >= deadline:
            if raise_on_timeout:
                detail = f" (last error: {last_exc})" if last_exc else ""
                raise LabError(f"timed out after {timeout}s waiting for {what}{detail}")
            return False
        time.sleep(interval)
