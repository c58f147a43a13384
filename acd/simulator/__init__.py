"""The headless simulator: callers and agents played against the ACD, KPIs at the end.

From a notebook (top-level await works there)::

    from acd.simulator import Scenario, run
    report = await run(Scenario(agents=10, rate_per_hour=160, duration=3600), via="redis")

From a script: ``run_sync(scenario, ...)``; from a shell: ``python -m acd.simulator --help``.

Defaults: ``via="api"`` drives the REST API at settings.api_url and runs no dispatcher of
its own (the lab's dispatchers assign); ``via="redis"`` works in-process through
acd.Center and runs one in-process Dispatcher (harmless beside the lab's: dispatch is
atomic), so it also works on a center no dispatcher serves. ``via="demo"`` drives the
original demo's routes as its clients did (the API's ACD_CENTER must be the center).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from rich.console import Console

from acd.settings import get_settings
from acd.simulator.backends import ApiBackend, Backend, DemoApiBackend, RedisBackend
from acd.simulator.engine import Engine
from acd.simulator.records import Snapshot
from acd.simulator.render import ProgressView
from acd.simulator.report import Report, build
from acd.simulator.scenario import AgentGroup, ContactType, HandleTime, RateStep, Scenario

__all__ = ["AgentGroup", "ContactType", "HandleTime", "RateStep", "Report", "Scenario",
           "default_dispatchers", "run", "run_sync"]

Via = Literal["api", "demo", "redis"]


def default_dispatchers(via: Via) -> int:
    return 0 if via in ("api", "demo") else 1


async def run(scenario: Scenario, *, via: Via = "api", redis_url: str | None = None,
              api_url: str | None = None, dispatchers: int | None = None,
              erlang: bool = False, store: bool = True, reset: bool = False,
              on_progress: Callable[[Snapshot], None] | None = None,
              engine_ready: Callable[[Engine], None] | None = None,
              progress: bool = False, api_key: str | None = None) -> Report:
    """Run ``scenario`` and return its report; the KPIs are stored at Keys(center).kpis.

    ``dispatchers``: in-process Dispatcher tasks (None: 0 via api, 1 via redis; they need
    Redis, from ``redis_url`` or settings). ``reset`` deletes the center first (via the
    API: refused while contacts of an earlier run are assigned). ``engine_ready`` receives
    the engine, e.g. to call its ``stop()`` on Ctrl-C. ``progress`` shows a rich progress
    bar (terminal or notebook). ``api_key``: the REST API's key (default: ACD_API_KEY).
    """
    if progress:
        with ProgressView(Console(), enabled=True) as view:
            return await run(scenario, via=via, redis_url=redis_url, api_url=api_url,
                             dispatchers=dispatchers, erlang=erlang, store=store, reset=reset,
                             on_progress=view.update, engine_ready=engine_ready,
                             api_key=api_key)
    settings = get_settings()
    center = scenario.center or settings.acd_center
    backend: Backend
    if via == "redis":
        backend = RedisBackend(center, redis_url or settings.redis_url)
    elif via in ("api", "demo"):
        kind = ApiBackend if via == "api" else DemoApiBackend
        backend = kind(center, api_url or settings.api_url, api_key=api_key)
    else:
        raise ValueError(f"via must be 'api', 'demo' or 'redis', not {via!r}")
    if dispatchers is None:
        dispatchers = default_dispatchers(via)
    started = datetime.now(UTC)
    try:
        if reset:
            await backend.reset()
        engine = Engine(scenario, backend, dispatchers, redis_url or settings.redis_url,
                        on_progress)
        if engine_ready is not None:
            engine_ready(engine)
        result = await engine.run()
        report = build(scenario, result, backend.center, via, started, compare=erlang)
        if store:
            await backend.store_kpis(report.document())
        return report
    finally:
        await backend.close()


def run_sync(scenario: Scenario, *, handle_sigint: bool = True, via: Via = "api",
             redis_url: str | None = None, api_url: str | None = None,
             dispatchers: int | None = None, erlang: bool = False, store: bool = True,
             reset: bool = False, on_progress: Callable[[Snapshot], None] | None = None
             ) -> Report:
    """``run`` for scripts. With ``handle_sigint`` the first Ctrl-C stops the run cleanly
    (the report covers the run so far); a second one interrupts at once."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("an event loop is running (a notebook?): use `await run(...)`")

    async def main() -> Report:
        loop = asyncio.get_running_loop()

        def ready(engine: Engine) -> None:
            if not handle_sigint:
                return

            def on_sigint() -> None:
                engine.stop()
                loop.remove_signal_handler(signal.SIGINT)  # a second Ctrl-C interrupts

            loop.add_signal_handler(signal.SIGINT, on_sigint)

        try:
            return await run(scenario, via=via, redis_url=redis_url, api_url=api_url,
                             dispatchers=dispatchers, erlang=erlang, store=store,
                             reset=reset, on_progress=on_progress, engine_ready=ready)
        finally:
            if handle_sigint:
                loop.remove_signal_handler(signal.SIGINT)

    return asyncio.run(main())
