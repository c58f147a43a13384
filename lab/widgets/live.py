"""Live view of a center: queue length, waiting contacts, assignments, a plot over time.

One background task polls Redis every ``interval`` seconds: a pipeline of TIME, ZCARD and
ZRANGE on the queue, and XRANGE on the center's events stream (``Keys.events``) from the
last entry it saw, so every assignment shows once. Polling with asyncio.sleep (rather than
a blocking XREAD) keeps no connection blocked and lets the kernel run other cells; the
stop button cancels the task. The plot is a plotly FigureWidget updated in place.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

import ipywidgets as w  # type: ignore[import-untyped]
import plotly.graph_objects as go  # type: ignore[import-untyped]

from acd import Center
from lab.widgets._base import TaskRunner, age, error_html, esc


def _next_id(stream_id: str) -> str:
    """The smallest stream id after ``stream_id`` (XRANGE's start is inclusive)."""
    ms, seq = stream_id.split("-")
    return f"{ms}-{int(seq) + 1}"


class LiveView(TaskRunner):
    """``view = LiveView(center); view.start(); view`` - then the stop button, or stop()."""

    def __init__(self, center: Center, interval: float = 0.5, history: int = 240,
                 max_seconds: float | None = 600.0) -> None:
        super().__init__()
        self.center = center
        self.interval = interval
        self.max_seconds = max_seconds
        self.cursor: str | None = None
        self.assignments: deque[tuple[str, str, int]] = deque(maxlen=20)
        self.total_assigned = 0
        self.polls = 0
        self.t0: float | None = None
        self.times: deque[float] = deque(maxlen=history)
        self.lengths: deque[int] = deque(maxlen=history)
        self.assigned_per_tick: deque[int] = deque(maxlen=history)
        self._task: asyncio.Task[Any] | None = None
        self.queue_label = w.HTML()
        self.waiting_html = w.HTML()
        self.log_html = w.HTML()
        self.status = w.HTML()
        self.start_button = w.Button(description="start", icon="play")
        self.stop_button = w.Button(description="stop", icon="stop", button_style="danger")
        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.figure = go.FigureWidget(
            data=[go.Scatter(x=[], y=[], name="queue length", mode="lines"),
                  go.Bar(x=[], y=[], name="assignments", opacity=0.5)],
            layout=go.Layout(height=300, margin={"l": 40, "r": 10, "t": 30, "b": 40},
                             title=f"center {center.name}", xaxis_title="seconds",
                             legend={"orientation": "h"}))
        self.widget = w.VBox([
            w.HBox([self.start_button, self.stop_button, self.queue_label]),
            w.HBox([w.VBox([w.HTML("<b>Waiting (oldest first)</b>"), self.waiting_html],
                           layout=w.Layout(width="45%")),
                    w.VBox([w.HTML("<b>Assignments (newest first)</b>"), self.log_html],
                           layout=w.Layout(width="55%"))]),
            self.figure, self.status])
        self._set_running(False)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def on_error(self, exc: BaseException) -> None:
        self.status.value = error_html(exc)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def _set_running(self, running: bool) -> None:
        self.start_button.disabled = running
        self.stop_button.disabled = not running
        self.status.value = "refreshing…" if running else "stopped"

    def start(self) -> None:
        """Refresh in the background until stop() (or ``max_seconds``)."""
        if self.running:
            return
        self._task = self.spawn(self._loop())
        self._set_running(True)

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._set_running(False)

    async def _loop(self) -> None:
        started = time.monotonic()
        failures = 0
        try:
            while self.max_seconds is None or time.monotonic() - started < self.max_seconds:
                try:
                    await self.poll()
                    failures = 0
                except Exception as exc:  # noqa: BLE001 - shown, then retried: a live view must not die
                    failures += 1
                    self.on_error(exc)
                await asyncio.sleep(self.interval * min(2 ** failures, 16))
        finally:
            self._set_running(False)

    async def poll(self) -> None:
        """One refresh: read the queue and the new events, update the widgets and plot."""
        r, k = self.center.redis, self.center.keys
        if self.cursor is None:  # first poll: show the last few assignments already made
            recent: Any = await r.xrevrange(k.events, count=200)
            self.cursor = _next_id(recent[0][0]) if recent else "0-0"
            for _id, fields in reversed(recent):
                self._event(fields, count=False)
        async with r.pipeline(transaction=False) as pipe:
            pipe.time()
            pipe.zcard(k.queue)
            pipe.zrange(k.queue, 0, 9, withscores=True)
            pipe.xrange(k.events, min=self.cursor, count=1000)
            (sec, usec), length, head, events = await pipe.execute()
        now = int(sec) * 1000 + int(usec) // 1000
        new = 0
        for stream_id, fields in events:
            new += self._event(fields)
            self.cursor = _next_id(stream_id)
        self.total_assigned += new
        self.polls += 1
        if self.t0 is None:
            self.t0 = time.monotonic()
        self.times.append(round(time.monotonic() - self.t0, 2))
        self.lengths.append(int(length))
        self.assigned_per_tick.append(new)
        self.queue_label.value = (f"&nbsp;<b>queue length: {length}</b> · assigned since "
                                  f"start: {self.total_assigned}")
        self.waiting_html.value = "<br>".join(
            f"<code>{esc(str(m)[:12])}</code> waiting {age(now - int(s))}" for m, s in head
        ) or "<i>nobody waits</i>"
        self.log_html.value = "<br>".join(
            f"<code>{esc(c[:12])}</code> → <b>{esc(a)}</b> after {wait} ms"
            for c, a, wait in reversed(self.assignments)) or "<i>none yet</i>"
        with self.figure.batch_update():
            self.figure.data[0].x = list(self.times)
            self.figure.data[0].y = list(self.lengths)
            self.figure.data[1].x = list(self.times)
            self.figure.data[1].y = list(self.assigned_per_tick)

    def _event(self, fields: dict[str, str], count: bool = True) -> int:
        if fields.get("type") != "contact_assigned":
            return 0
        self.assignments.append((fields.get("contact", "?"), fields.get("agent", "?"),
                                 int(fields.get("wait_ms", 0))))
        return 1 if count else 0
