"""Simulations on the real ACD, each in a center of its own that is wiped afterwards."""

from __future__ import annotations

from acd import Center, connect
from acd.simulator import Scenario, run
from acd.simulator.report import Report


async def run_on_the_acd(scenario: Scenario, redis_url: str) -> Report:
    """``scenario`` played on the real ACD (its Lua, one dispatcher) in Redis at
    ``redis_url``; the scenario's center is wiped whatever happens."""
    redis = connect(redis_url)
    try:
        return await run(scenario, via="redis", redis_url=redis_url, dispatchers=1)
    finally:
        await Center(redis, str(scenario.center)).wipe()
        await redis.aclose()
