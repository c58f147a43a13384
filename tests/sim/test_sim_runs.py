"""The simulator against a real Redis: in-process runs, the stop, the CLI and Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from redis import Redis as SyncRedis

from acd import Center, connect
from acd.keys import Keys
from acd.simulator import Scenario, run
from acd.simulator.engine import Engine

MULTI = dict(
    groups=[{"count": 3, "skills": ["billing", "en"]}, {"count": 3, "skills": ["es"]},
            {"count": 2, "skills": ["billing", "en", "es"]}],
    contact_types=[{"skills": ["en", "billing"], "weight": 2}, {"skills": ["es"]}],
    rate_per_hour=300, handle={"mean": 60.0}, patience=40.0, duration=1800,
    time_scale=600, drain_timeout=20)


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _cleanup(redis_url: str, center: str) -> None:
    redis = connect(redis_url)
    await Center(redis, center).wipe()
    await redis.aclose()


async def _center_is_idle(redis_url: str, center: str) -> dict[str, Any]:
    redis = connect(redis_url)
    try:
        stats = await Center(redis, center).stats()
        return {"waiting": stats.waiting, "busy": stats.agents["busy"]}
    finally:
        await redis.aclose()


async def test_multi_skill_run_with_patience(redis_url: str) -> None:
    scenario = Scenario(center=_name("multi"), **MULTI)  # type: ignore[arg-type]
    draw = scenario.draw()
    try:
        report = await run(scenario, via="redis", redis_url=redis_url, dispatchers=1,
                           erlang=True)
        idle = await _center_is_idle(redis_url, str(scenario.center))
        redis = connect(redis_url)
        stored = json.loads(await redis.execute_command(  # type: ignore[no-untyped-call]
            "JSON.GET", Keys(str(scenario.center)).kpis, "."))
        await redis.aclose()
    finally:
        await _cleanup(redis_url, str(scenario.center))
    k = report.kpis
    assert k.offered == len(draw.arrivals) > 50
    assert k.unfinished == 0 and k.answered + k.abandoned == k.offered
    assert k.abandoned > 0  # patience 40 s against a loaded center
    assert set(report.per_skill) == {"billing,en", "es"}
    assert sum(s.offered for s in report.per_skill.values()) == k.offered
    assert 0 < (k.occupancy or 0) <= 1
    assert idle == {"waiting": 0, "busy": 0}
    # Every answered contact went to an agent with all its skills.
    skills_of = {f"sim-{i + 1:03d}": set(s) for i, s in enumerate(draw.agents)}
    for o in report.samples.outcomes:
        if o.answered:
            assert o.agent is not None and set(o.signature.split(",")) <= skills_of[o.agent]
    assert stored["run_id"] == report.run_id
    assert stored["kpis"]["offered"] == k.offered
    assert stored["kpis"]["service_level"] == pytest.approx(k.service_level)  # JSON floats
    assert report.erlang is not None and not report.erlang.applicable  # two contact types


async def test_stop_ends_cleanly_with_kpis_so_far(redis_url: str) -> None:
    scenario = Scenario(center=_name("stop"), agents=4, rate_per_hour=400,
                        handle={"mean": 60.0}, duration=36_000, time_scale=300)
    engines: list[Engine] = []
    seen = asyncio.Event()

    def progress(s: Any) -> None:
        if s.answered >= 20:
            seen.set()

    task = asyncio.create_task(run(scenario, via="redis", redis_url=redis_url,
                                   on_progress=progress, engine_ready=engines.append))
    try:
        await asyncio.wait_for(seen.wait(), timeout=30)
        engines[0].stop()
        report = await asyncio.wait_for(task, timeout=30)
        idle = await _center_is_idle(redis_url, str(scenario.center))
    finally:
        task.cancel()
        await _cleanup(redis_url, str(scenario.center))
    assert report.stopped_early
    assert report.kpis.answered >= 20
    assert report.window[1] < 36_000
    assert idle == {"waiting": 0, "busy": 0}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "acd.simulator", *args]


def test_cli_help(subprocess_env: dict[str, str]) -> None:
    out = subprocess.run(_cli("--help"), env=subprocess_env, capture_output=True, text=True,
                         timeout=30, check=True).stdout
    for flag in ("--via", "--dispatchers", "--erlang", "--json", "--report", "--time-scale",
                 "--patience", "--profile", "--seed"):
        assert flag in out


def test_cli_json_and_html_report(subprocess_env: dict[str, str], redis_url: str,
                                  tmp_path: Path) -> None:
    center = _name("cli")
    html = tmp_path / "run.html"
    try:
        done = subprocess.run(
            _cli("--via", "redis", "--center", center, "--agents", "5", "--rate", "300",
                 "--handle-mean", "50", "--duration", "1200", "--time-scale", "400",
                 "--erlang", "--json", "--report", str(html), "--no-progress"),
            env=subprocess_env, capture_output=True, text=True, timeout=60)
    finally:
        asyncio.run(_cleanup(redis_url, center))
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["center"] == center and doc["kpis"]["offered"] > 0
    assert doc["erlang"]["model"] == "C" and doc["erlang"]["applicable"]
    assert "plotly" in html.read_text()[:5_000_000].lower()


def test_ctrl_c_stops_and_prints_kpis(subprocess_env: dict[str, str], redis_url: str) -> None:
    center = _name("sigint")
    proc = subprocess.Popen(
        _cli("--via", "redis", "--center", center, "--agents", "4", "--rate", "600",
             "--handle-mean", "30", "--duration", "360000", "--time-scale", "100",
             "--no-progress"),
        env=subprocess_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        with SyncRedis.from_url(redis_url, decode_responses=True, socket_timeout=5) as r:
            while int(r.hget(Keys(center).stats, "completed") or 0) < 5:
                assert proc.poll() is None, proc.communicate(timeout=5)
                assert time.monotonic() < deadline, "no contact completed in 30 s"
                time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        asyncio.run(_cleanup(redis_url, center))
    assert proc.returncode == 130, err
    assert "KPIs" in out and "stopped early" in out
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [["--duration", "-1"], ["--agents", "0"]])
def test_cli_rejects_bad_input(subprocess_env: dict[str, str], argv: list[str]) -> None:
    done = subprocess.run(_cli(*argv), env=subprocess_env, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 2
