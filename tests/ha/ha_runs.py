"""Helpers of the tests that run the whole HA lab as ./start.sh --ha does (``python -m
lab start --ha``) in a temporary home: LAB_HOME and LAB_ENV_FILE point there, so a
developer's .lab/ and .env are never touched."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import lab.ha as ha
from lab.ha import net
from lab.processes import WaitTimeout, command_lines, wait_until

REPO = Path(__file__).resolve().parents[2]


def lab_env(home: Path, jupyter_port: int) -> dict[str, str]:
    return {
        **os.environ,
        "LAB_HOME": str(home),
        "LAB_ENV_FILE": str(home / ".env"),
        "LAB_JUPYTER_PORT": str(jupyter_port),
        "PYTHONPATH": str(REPO),
    }


def run_lab(env: dict[str, str], *args: str,
            timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], env=env, cwd=REPO, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def require_free_subnet() -> None:
    users = net.subnet_users()
    if users or net.link_exists(net.BRIDGE):
        pytest.skip(
            f"192.168.20.0/24 is in use here ({users or net.BRIDGE}): stop the running HA lab "
            "first (./stop.sh)"
        )


@contextlib.contextmanager
def topology(run_dir: Path, sentinel_passwords: dict[str, str]) -> Iterator[ha.HATopology]:
    """The HA topology alone (python -m lab.ha's start, no API or dispatchers) in run_dir,
    its nodes' password "test-password"; stopped whatever happens."""
    require_free_subnet()
    try:
        started = ha.start("test-password", passwords=sentinel_passwords, run_dir=run_dir,
                           timeout=90)
    except BaseException:
        ha.stop(run_dir)
        raise
    try:
        yield started
    finally:
        ha.stop(run_dir)


def leftovers(home: Path) -> list[str]:
    """Namespaces, links and processes of the lab (under ``home``) that still exist."""
    left = [n for n in net.namespaces() if n.startswith(net.NS_PREFIX)]
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    left += [
        line.split()[0]
        for line in links.splitlines()
        if line.split()[0].startswith((net.BRIDGE, net.VETH_PREFIX))
    ]
    left += [f"{pid} {line}" for pid, line in command_lines().items() if str(home) in line]
    return left


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Pids still present at the deadline (a zombie waits for init to reap it)."""

    def present() -> list[int]:
        return [p for p in pids if Path(f"/proc/{p}").exists()]

    with contextlib.suppress(WaitTimeout):
        wait_until(lambda: not present(), timeout, f"pids {pids} to be gone", interval=0.1)
    return present()


def recorded_pid(run_dir: Path, key: str) -> int:
    return int(json.loads((run_dir / "state.json").read_text())["processes"][key]["pid"])
