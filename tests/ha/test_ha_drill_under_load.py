"""The failover drill on a busy machine loses no acknowledged write (long tier).

Busy-loop processes share one CPU with every process of the HA lab (all pinned to CPU 0,
the rest of the machine is left alone). That is how a busy laptop made the Sentinels
fail over twice in a row: their fresh links to the just promoted primary got no reply
within down-after (1 s), they declared it down although it ran, and promoted the other
replica. Writes the first new primary confirmed alone were then lost; confirmed after
WAIT on the write's own connection (the drill's probe, the API's contacts), none is.

Run it under the HA lock like every HA test: flock /tmp/ha.lock pytest -m long ...
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ha_runs import topology

import lab.ha as ha
from lab import drill
from lab.drill.writes import RedisWriter
from lab.processes import wait_until

_WHY = ha.check_platform()
if _WHY:
    pytest.skip(f"HA lab tests skipped: {_WHY}", allow_module_level=True)

pytestmark = [pytest.mark.slow, pytest.mark.long]

RUNS = 3
HOGS = 5  # on CPU 0 with the lab: each process gets a sixth of it, or less
HOG_S = 540  # a hog ends by itself after this long, even if the test is killed


@pytest.fixture(scope="module")
def topo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ha.HATopology]:
    passwords = {"sentinel_admin": "sa-pw", "sentinel_peer": "sp-pw"}
    with topology(tmp_path_factory.mktemp("ha-load"), passwords) as started:
        yield started


def _pin_lab(run_dir: Path) -> None:
    """Every process of the lab (restarted ones too) on CPU 0, every thread of it."""
    state = json.loads((run_dir / "state.json").read_text())
    for entry in state["processes"].values():
        subprocess.run(["taskset", "-a", "-p", "-c", "0", str(entry["pid"])],
                       capture_output=True, timeout=10, check=False)


@pytest.fixture
def busy_cpu0() -> Iterator[None]:
    hog = f"import time\nend = time.monotonic() + {HOG_S}\nwhile time.monotonic() < end: pass"
    hogs = [subprocess.Popen(["taskset", "-c", "0", sys.executable, "-c", hog])
            for _ in range(HOGS)]
    try:
        yield
    finally:
        for p in hogs:
            p.kill()
        for p in hogs:
            p.wait(timeout=10)


def _redis_pid(run_dir: Path, node: str) -> int:
    state = json.loads((run_dir / "state.json").read_text())
    [pid] = [int(e["pid"]) for e in state["processes"].values()
             if e["host"] == node and e["role"] == "redis"]
    return pid


def _switches(run_dir: Path) -> list[str]:
    """+switch-master lines of one Sentinel (each failover once), oldest first."""
    log = (run_dir / "re1" / "sentinel.log").read_text()
    return re.findall(r"(\d\d:\d\d:\d\d\.\d+) # \+switch-master \S+ \S+ \d+ (\S+)", log)


@pytest.mark.timeout(600)
def test_the_drill_on_a_busy_machine_loses_no_acknowledged_write(
        topo: ha.HATopology, busy_cpu0: None) -> None:
    lost, seen = [], []
    for run in range(RUNS):
        _pin_lab(topo.run_dir)
        before = len(_switches(topo.run_dir))
        started = time.monotonic()
        report = drill.run(contacts=False, warmup_s=1.0, run_dir=topo.run_dir,
                           event_timeout=60.0)
        kill = report.events[2].writes
        assert kill is not None
        switches = _switches(topo.run_dir)[before:]
        seen.append(len(switches))
        print(f"run {run}: {time.monotonic() - started:.0f} s, kill: {kill.acknowledged} "
              f"acked, {kill.failed} failed, outage {kill.outage_s:.2f} s, lost "
              f"{report.lost}; failovers {switches}")
        lost.append(report.lost)
        assert kill.acknowledged > 0 and kill.recovered, report.to_dict()
    assert lost == [0] * RUNS, (lost, seen)


@pytest.mark.timeout(300)
def test_a_second_failover_right_after_the_first_loses_no_acknowledged_write(
        topo: ha.HATopology) -> None:
    """The hiccup made certain: the just promoted primary is frozen (SIGSTOP) 0.2 s after
    the Sentinels name it, for 2 s, so they promote the other replica too."""
    rd = topo.run_dir
    writer = RedisWriter(topo, "lab:second-failover", 200.0, wait_replicas=True, max_s=120)
    writer.start()
    try:
        time.sleep(1.0)
        before = len(_switches(rd))
        old = ha.kill_primary(rd)
        wait_until(lambda: ha.primary(rd) != old, 30, "a first promotion", interval=0.02)
        first = ha.primary(rd)
        time.sleep(0.2)
        pid = _redis_pid(rd, first)
        os.kill(pid, signal.SIGSTOP)
        try:
            wait_until(lambda: ha.primary(rd) not in (old, first), 30,
                       "a second promotion", interval=0.05)
        finally:
            os.kill(pid, signal.SIGCONT)
        second = ha.primary(rd)
        ha.restart_node(old, rd, 60)
        wait_until(lambda: ha.status(rd)["roles"].get(first) == "slave", 60,
                   f"{first} back as a replica")
        time.sleep(1.0)
    finally:
        writer.stop()
    kept = writer.kept()
    acked = [s.key for s in writer.sent if s.acked_at is not None]
    lost = [k for k in acked if k not in kept]
    switches = _switches(rd)[before:]
    print(f"killed {old}, promoted {first}, then {second}; {len(acked)} acked, "
          f"{len(lost)} lost; failovers {switches}")
    assert len(switches) >= 2, switches
    assert len(acked) > 200 and lost == [], lost[:10]
