"""lab.processes with real processes: waiting with deadlines, liveness (a zombie is dead),
stopping what ignores SIGTERM, and a Service that exits or never answers."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.errors import LabError
from lab.processes import (
    Service,
    StartError,
    WaitTimeout,
    pid_alive,
    spawn,
    stop_pids,
    terminate,
    wait_until,
)

IGNORES_SIGTERM = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                   "print('ready', flush=True); time.sleep(60)")


def test_wait_until_returns_as_soon_as_the_condition_holds() -> None:
    calls: list[float] = []

    def third_time() -> bool:
        calls.append(time.monotonic())
        return len(calls) >= 3

    started = time.monotonic()
    wait_until(third_time, 5, "the third call", interval=0.01)
    assert len(calls) == 3 and time.monotonic() - started < 1


def test_wait_until_names_what_it_awaited_and_the_last_error() -> None:
    def refuses() -> bool:
        raise ConnectionRefusedError("nobody listens")

    started = time.monotonic()
    with pytest.raises(WaitTimeout) as caught:
        wait_until(refuses, 0.3, "the answer")
    took = time.monotonic() - started
    assert 0.3 <= took < 2
    assert isinstance(caught.value, LabError)
    assert "waiting for the answer" in str(caught.value)
    assert "ConnectionRefusedError: nobody listens" in str(caught.value)


def test_a_start_error_ends_the_wait_at_once() -> None:
    def failed() -> bool:
        raise StartError("the component exited")

    started = time.monotonic()
    with pytest.raises(StartError, match="exited"):
        wait_until(failed, 30, "a component")
    assert time.monotonic() - started < 1


def test_spawn_records_pid_and_log_and_a_reaped_child_is_dead(tmp_path: Path) -> None:
    proc = spawn([sys.executable, "-c", "print('hello from the child')"],
                 log=tmp_path / "logs" / "child.log", pid_file=tmp_path / "run" / "child.pid")
    assert int((tmp_path / "run" / "child.pid").read_text()) == proc.pid
    # Until reaped, the ended child is a zombie: pid_alive must call it dead (and reap it).
    wait_until(lambda: not pid_alive(proc.pid), 10, "the child to end")
    assert "hello from the child" in (tmp_path / "logs" / "child.log").read_text()
    assert not pid_alive(None) and not pid_alive(0)


def test_stop_pids_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    stubborn = [spawn([sys.executable, "-c", IGNORES_SIGTERM], log=tmp_path / f"{i}.log",
                      pid_file=tmp_path / f"{i}.pid") for i in range(2)]
    for i in range(2):
        wait_until(lambda i=i: "ready" in (tmp_path / f"{i}.log").read_text(), 10,  # type: ignore[misc]
                   f"child {i} to ignore SIGTERM")
    started = time.monotonic()
    stop_pids([p.pid for p in stubborn], timeout=0.5)
    took = time.monotonic() - started
    assert not any(pid_alive(p.pid) for p in stubborn)
    assert all(p.wait(timeout=5) == -signal.SIGKILL for p in stubborn)
    assert 0.5 <= took < 5  # both at once: one timeout, not one per process


def test_terminate_a_popen_child() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    terminate(proc, timeout=5)
    assert proc.returncode == -signal.SIGTERM


def test_a_service_that_exits_names_its_code_and_log(tmp_path: Path) -> None:
    service = Service("quitter", [sys.executable, "-c", "raise SystemExit(3)"], tmp_path,
                      healthy=lambda: False, start_timeout=30)
    started = time.monotonic()
    with pytest.raises(StartError) as caught:
        service.start()
    assert time.monotonic() - started < 10  # not the whole start_timeout
    assert "quitter exited with code 3" in str(caught.value)
    assert str(service.log_file) in str(caught.value)
    assert not service.running() and not service.pid_file.exists()


def test_a_service_that_never_answers_is_stopped(tmp_path: Path) -> None:
    service = Service("silent", [sys.executable, "-c", "import time; time.sleep(60)"],
                      tmp_path, healthy=lambda: False, start_timeout=0.5)
    with pytest.raises(StartError, match="silent did not answer in time"):
        service.start()
    assert not service.running() and not service.pid_file.exists()


def test_a_service_starts_once_and_stops(tmp_path: Path) -> None:
    marker = tmp_path / "up"
    service = Service("sleeper", [sys.executable, "-c",
                                  f"open({str(marker)!r}, 'w').close(); "
                                  "import time; time.sleep(60)"],
                      tmp_path, healthy=marker.exists, start_timeout=30)
    assert service.start() is True
    pid = service.pid()
    assert pid is not None and pid_alive(pid)
    assert service.start() is False  # already running: nothing new
    assert service.pid() == pid
    assert service.stop() is True
    assert not pid_alive(pid) and service.pid() is None
    assert service.stop() is False
