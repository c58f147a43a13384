"""What every lab widget shares: background tasks on the kernel's event loop.

Why asyncio tasks and not a synchronous Redis client: the acd API (``acd.Center``) is
async, and a Jupyter kernel already runs an asyncio event loop. Widget callbacks (a
click, a toggle) are plain functions called *on that loop*, so they cannot ``await``;
they schedule the coroutine with ``loop.create_task`` and return at once. The kernel
stays responsive, several changes can be in flight, and long-running views (the live
view) are ordinary tasks that a stop button cancels. ``settle()`` waits for everything
scheduled so far: notebooks and tests ``await`` it before they check the Redis state.
"""

from __future__ import annotations

import asyncio
import html
import time
from collections.abc import Coroutine
from typing import Any


class TaskRunner:
    """Runs coroutines as tasks on the running loop and keeps the last error."""

    def __init__(self) -> None:
        self._pending: set[asyncio.Task[Any]] = set()
        self.errors: list[BaseException] = []

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        loop = asyncio.get_running_loop()  # always present in a kernel or an async test
        task = loop.create_task(coro)
        self._pending.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            assert exc is not None
            self.errors.append(exc)
            self.on_error(exc)

    def on_error(self, exc: BaseException) -> None:
        """Show an error of a background task (widgets override this)."""

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until every task scheduled so far (and those they schedule) is done."""
        deadline = time.monotonic() + timeout
        while self._pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{len(self._pending)} widget task(s) still running "
                                   f"after {timeout} s")
            await asyncio.wait(set(self._pending), timeout=left)


def esc(value: object) -> str:
    return html.escape(str(value))


def age(ms: int | None) -> str:
    """A duration in ms as text a person reads at a glance."""
    if ms is None:
        return "-"
    s = max(0, ms) / 1000
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


async def server_ms(redis: Any) -> int:
    """Redis's clock in ms: ages computed against it agree with the Lua functions."""
    sec, usec = await redis.time()
    return int(sec) * 1000 + int(usec) // 1000


def error_html(exc: BaseException) -> str:
    return f"<span style='color:#b00'>⚠ {esc(type(exc).__name__)}: {esc(exc)}</span>"
