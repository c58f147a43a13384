"""Live view of a center: dispatch mode, queue, waiting contacts, assignments, a plot.

It follows the center's events stream (``_follow``): every ``contact_assigned`` shows
once, within milliseconds, and every event (or, when none comes, every ``interval``
seconds, for writers that emit none such as the naive dispatcher of notebook 04) makes
it re-read the queue (Center.queue_view: one pipeline). Blocking reads have
a deadline and hold no lock, so the kernel runs other cells meanwhile. The stop button
cancels the following; start resumes from the last event seen, so assignments made while
stopped still show once. What is on screen while stopped is marked as a snapshot.
The plot is a plotly FigureWidget updated in place.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import ipywidgets as w  # type: ignore[import-untyped]
import plotly.graph_objects as go  # type: ignore[import-untyped]

from acd import Center
from lab.widgets._base import OwnerLoopState, TaskRunner, age, data_attrs, esc
from lab.widgets._follow import Event, FollowingPanel, dispatchers_connected

LOG = 20  # assignments listed
WAITING = 10  # waiting contacts listed
LOOK_BACK = 2000  # events read back at the first start to list recent assignments


class LoopFigure(OwnerLoopState, go.FigureWidget):  # type: ignore[misc]
    """A FigureWidget whose front-end updates (relayout, zoom) apply on the owner loop."""

    def __init__(self, owner: TaskRunner, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._owner = owner


async def recent_assignments(center: Center, before: str = "+", most: int = LOG,
                             look_back: int = LOOK_BACK) -> list[tuple[str, str, int]]:
    """The newest ``most`` contact_assigned events among the ``look_back`` events up to
    ``before``, oldest first."""
    assigned = [e.fields for e in await center.latest_events(look_back, before)
                if e.type == "contact_assigned"]
    return [(f.get("contact", "?"), f.get("agent", "?"), int(f.get("wait_ms", 0)))
            for f in assigned[-most:]]


class LiveView(FollowingPanel):
    """``view = LiveView(center); view.start(); view`` - then the stop button, or stop()."""

    LIVE_TEXT = "following"

    def __init__(self, center: Center, interval: float = 0.5, history: int = 240,
                 max_seconds: float | None = 600.0) -> None:
        super().__init__(center, block_s=interval, max_seconds=max_seconds)
        self.interval = interval
        self.assignments: deque[tuple[str, str, int]] = deque(maxlen=LOG)
        self.total_assigned = 0  # since the first start
        self.polls = 0  # redraws
        self.t0: float | None = None
        self.times: deque[float] = deque(maxlen=history)
        self.lengths: deque[int] = deque(maxlen=history)
        self.assigned_per_tick: deque[int] = deque(maxlen=history)
        self._last_sample = 0.0
        self._new_since_sample = 0
        self.mode_label = w.HTML()
        self.queue_label = w.HTML()
        self.waiting_html = w.HTML()
        self.log_html = w.HTML()
        self.figure = LoopFigure(
            self,
            data=[go.Scatter(x=[], y=[], name="queue length", mode="lines"),
                  go.Bar(x=[], y=[], name="assignments", opacity=0.5)],
            layout=go.Layout(height=300, margin={"l": 40, "r": 10, "t": 30, "b": 40},
                             title=f"center {center.name}", xaxis_title="seconds",
                             legend={"orientation": "h"}))
        self.widget = w.VBox([
            w.HBox([self.start_button, self.stop_button, self.queue_label]),
            self.mode_label,
            w.HBox([w.VBox([w.HTML("<b>Waiting (oldest first)</b>"), self.waiting_html],
                           layout=w.Layout(width="45%")),
                    w.VBox([w.HTML("<b>Assignments (newest first)</b>"), self.log_html],
                           layout=w.Layout(width="55%"))]),
            self.figure, self.status])
        self._show_following(False)

    @property
    def running(self) -> bool:
        return self.following

    async def _on_start(self, tip: str) -> None:
        if self.t0 is None:  # first start: list the last assignments already made
            self.assignments.extend(await recent_assignments(self.center, before=tip))
            self.t0 = time.monotonic()

    async def poll(self) -> None:
        """Re-read the queue and redraw now (the following does it by itself)."""
        await self.refresh()

    async def _update(self, events: list[Event], full: bool) -> None:
        new = 0
        for fields in events:
            if fields.get("type") == "contact_assigned":
                self.assignments.append((fields.get("contact", "?"), fields.get("agent", "?"),
                                         int(fields.get("wait_ms", 0))))
                new += 1
        self.total_assigned += new
        view = await self.center.queue_view(WAITING)
        dispatchers = await dispatchers_connected(self.center.redis)
        now, length, mode = view.now_ms, view.length, view.dispatch_mode.value
        self.polls += 1
        self._sample(length, new)
        n = "unknown" if dispatchers is None else str(dispatchers)
        self.mode_label.value = (
            f"<span class='acd-mode' data-mode='{esc(mode)}' data-dispatchers='{esc(n)}'>"
            f"dispatch mode: <b>{esc(mode)}</b> · dispatcher processes connected: "
            f"{esc(n)}</span>")
        self.queue_label.value = (f"&nbsp;<b data-queue='{length}'>queue length: {length}"
                                  f"</b> · assigned since start: {self.total_assigned}")
        self.waiting_html.value = "<br>".join(
            f"<code data-contact='{esc(m)}'>{esc(str(m)[:12])}</code> waiting "
            f"{age(now - s)}" for m, s in view.oldest) or "<i>nobody waits</i>"
        self.log_html.value = "<br>".join(
            f"<code data-contact='{esc(c)}' data-agent='{esc(a)}'>{esc(c[:12])}</code> → "
            f"<b>{esc(a)}</b> after {wait} ms"
            for c, a, wait in reversed(self.assignments)) or "<i>none yet</i>"

    def _sample(self, length: int, new: int) -> None:
        """One plot point per ``interval``: redraws in between update the last one."""
        now = time.monotonic()
        if self.t0 is None:
            self.t0 = now
        self._new_since_sample += new
        if not self.times or now - self._last_sample >= self.interval:
            self._last_sample = now
            self.times.append(round(now - self.t0, 2))
            self.lengths.append(length)
            self.assigned_per_tick.append(self._new_since_sample)
            self._new_since_sample = 0
        else:
            self.lengths[-1] = length
            self.assigned_per_tick[-1] += self._new_since_sample
            self._new_since_sample = 0
        with self.figure.batch_update():
            self.figure.data[0].x = list(self.times)
            self.figure.data[0].y = list(self.lengths)
            self.figure.data[1].x = list(self.times)
            self.figure.data[1].y = list(self.assigned_per_tick)

    # -- comparable views -----------------------------------------------------------
    def displayed(self) -> dict[str, Any]:
        """What the live view shows now, read back from its widgets."""
        queue = data_attrs(self.queue_label.value, "queue")
        mode = data_attrs(self.mode_label.value, "mode")
        dispatchers = data_attrs(self.mode_label.value, "dispatchers")
        return {
            "following": data_attrs(self.status.value, "live") == ["1"],
            "mode": mode[0] if mode else None,
            "dispatchers": dispatchers[0] if dispatchers else None,
            "queue_length": int(queue[0]) if queue else None,
            "waiting": data_attrs(self.waiting_html.value, "contact"),
            "assignments": list(zip(data_attrs(self.log_html.value, "contact"),
                                    data_attrs(self.log_html.value, "agent"), strict=True)),
        }

    async def from_redis(self) -> dict[str, Any]:
        """What a following live view must show, computed from Redis alone."""
        view = await self.center.queue_view(WAITING)
        dispatchers = await dispatchers_connected(self.center.redis)
        recent = await recent_assignments(self.center)
        return {
            "following": True, "mode": view.dispatch_mode.value,
            "dispatchers": "unknown" if dispatchers is None else str(dispatchers),
            "queue_length": view.length,
            "waiting": [contact for contact, _ in view.oldest],
            "assignments": [(c, a) for c, a, _ in reversed(recent)],
        }
