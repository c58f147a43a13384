"""Widgets that follow a center's events stream, so they show changes made by others.

Two tasks per widget, both on the widget's loop (see ``_base``):

- the *follower* blocks on the center's events stream (``XREAD BLOCK``, at most
  ``block_s``, then again) from the last id it saw, and hands what it read to the
  renderer. When a wait ends with no event it asks for a full re-read anyway: writers
  that emit no events (the naive dispatcher of notebooks 04-05) show up within
  ``block_s`` too.
- the *renderer* is the only code that puts Redis state on the screen: it takes what is
  pending, reads Redis (``_update``, under one lock) and redraws. Reads and redraws
  happen in order, so an older read never overwrites a newer one; a change made by a
  click is drawn from the read that follows its event, like anyone else's.

The position is taken before the first read, so no change between the two is missed.
Every wait has a deadline (XREAD's block, then ``asyncio.timeout`` around every read,
besides the client's socket timeout), errors are shown and retried with backoff,
``stop()`` cancels both tasks, and ``start()`` after ``stop()`` starts new ones that
resume from the last event seen. Runs are numbered: a task of an old run still
finishing (a cancellation can arrive late) drops what it read and touches nothing.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import Any, ClassVar

import ipywidgets as w  # type: ignore[import-untyped]

from acd import Center
from acd.center_keys import is_learner
from acd.service import live_dispatchers
from lab.widgets._base import TaskRunner, error_html, esc

Event = dict[str, str]  # an event's fields, "type" included


def stream_key(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


async def dispatchers_connected(redis: Any) -> int | None:
    """How many dispatcher processes are connected (CLIENT LIST names them
    ``acd-dispatcher-<pid>``); None when the server does not let us look. A workshop
    learner may not list clients (others' commands show there): their count is the
    dispatchers' recent heartbeats instead, and CLIENT LIST is not even tried, so the
    instructor's ACL LOG stays clean."""
    if is_learner(redis):
        return await live_dispatchers(redis)
    try:
        clients = await redis.client_list(_type="normal")
    except Exception:  # noqa: BLE001 - ACLs (Redis Enterprise) may forbid CLIENT LIST
        return None
    return len({c.get("name") for c in clients
                if str(c.get("name", "")).startswith("acd-dispatcher-")})


def _live(run: int, current: int) -> bool:
    """Should a loop of run ``run`` go on? Not if a newer run started (stop/start), nor
    if its task was asked to cancel: on Python 3.11 a cancellation can be swallowed
    below us (asyncio.wait_for inside redis-py when the write finishes as the cancel
    arrives), and a loop that went on would never end."""
    task = asyncio.current_task()
    return run == current and not (task is not None and task.cancelling())


class Following(TaskRunner):
    """Base of the board, the composer and the live view.

    One follower per kind of widget, center and loop: starting one stops the one it
    replaces (re-running a notebook cell would otherwise leave the old widget following
    Redis for the kernel's lifetime). The old one says so on screen.
    """

    _current: ClassVar[weakref.WeakValueDictionary[tuple[str, str, int], Following]] = (
        weakref.WeakValueDictionary())

    def __init__(self, center: Center, block_s: float = 0.5, max_seconds: float | None = None,
                 call_timeout: float = 5.0) -> None:
        super().__init__()
        self.center = center
        self.block_s = block_s
        self.max_seconds = max_seconds
        self.call_timeout = call_timeout
        self.cursor: str | None = None  # id of the last event handed to the renderer
        self._events: list[Event] = []
        self._full = True
        self._dirty = asyncio.Event()
        self._marked = 0  # hand-offs to the renderer so far
        self._rendered = 0  # the last hand-off fully drawn
        self._render_lock = asyncio.Lock()
        self._run = 0  # number of the current run (start() increments it)
        self._tasks: list[asyncio.Task[Any]] = []
        self.stopped_reason = "not started"

    # -- subclasses ---------------------------------------------------------------------
    async def _update(self, events: list[Event], full: bool) -> None:
        """Read what ``events`` (or, if ``full``, everything) changed and redraw it."""
        raise NotImplementedError

    def _show_following(self, following: bool) -> None:
        """Show whether the widget follows Redis now (widgets override)."""

    async def _on_start(self, tip: str) -> None:
        """Called at the first start, once the position ``tip`` is taken (before any
        read); a later start resumes from the last event seen."""

    # -- start / stop ------------------------------------------------------------------
    @property
    def following(self) -> bool:
        return bool(self._tasks) and not any(t.done() for t in self._tasks)

    def start(self) -> None:
        """Follow the events stream until stop() (or ``max_seconds``). Any thread."""
        if not self.on_owner_thread():
            self.post(self.start)
            return
        if self.following:
            return
        key = (type(self).__name__, self.center.name, id(self.loop))
        older = Following._current.get(key)
        if older is not None and older is not self and older.following:
            older.stop(f"replaced by a newer {type(self).__name__} of this center")
        Following._current[key] = self
        self._run += 1
        run = self._run
        self._started = time.monotonic()
        self._tasks = [self.loop.create_task(self._follow(run)),
                       self.loop.create_task(self._render_loop(run))]
        for task in self._tasks:
            task.add_done_callback(self._done)
        self.invalidate(full=True)  # a restart redraws at once, whatever changed meanwhile
        self._show_following(True)

    def stop(self, reason: str = "stopped") -> None:
        """Stop following now. Any thread; what is on screen stays, marked as stopped."""
        if not self.on_owner_thread():
            self.post(self.stop, reason)
            return
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        self._run += 1  # a cancelled task finishing later belongs to an old run
        self.stopped_reason = reason
        self._show_following(False)

    def resend(self) -> None:
        """Send every widget's state to the front-end again, from the caller's cell. A
        notebook executor (nbclient) keeps a widget's state from the messages of the cell
        running when it changed; changes drawn by the background tasks belong to the cell
        that started them and are not kept, so a recorded notebook would show the
        widget's first state. Call it last (after stop() and refresh())."""
        widget = getattr(self, "widget", None)
        if widget is not None:
            _resend_tree(widget)

    def close(self) -> None:
        """Stop following and close the widgets (they disappear from the page)."""
        self.stop()
        widget = getattr(self, "widget", None)
        if widget is not None:
            _close_tree(widget)

    # -- the renderer's queue ----------------------------------------------------------
    def invalidate(self, events: list[Event] | None = None, full: bool = False) -> int:
        """Ask the renderer to re-read and redraw; returns the hand-off number."""
        if events:
            self._events.extend(events)
        self._full = self._full or full
        self._marked += 1
        self._dirty.set()
        return self._marked

    async def _locked_update(self, events: list[Event], full: bool) -> None:
        async with self._render_lock, asyncio.timeout(self.call_timeout):
            await self._update(events, full)

    async def reflect(self, events: list[Event] | None = None, full: bool = False) -> None:
        """Make the display show Redis now: through the renderer when following,
        else by reading and redrawing here."""
        if self.following:
            mark = self.invalidate(events, full)
            deadline = time.monotonic() + self.call_timeout
            while self._rendered < mark and self.following:
                if time.monotonic() > deadline:
                    raise TimeoutError("the display did not catch up in time")
                await asyncio.sleep(0.005)
        else:
            await self._locked_update(events or [], full)

    async def refresh(self) -> None:
        """Read everything from Redis and redraw."""
        await self.reflect(full=True)

    # -- the two tasks -----------------------------------------------------------------
    def _expired(self) -> bool:
        return (self.max_seconds is not None
                and time.monotonic() - self._started >= self.max_seconds)

    async def _follow(self, run: int) -> None:
        failures = 0
        while _live(run, self._run):
            if self._expired():
                self.post(self.stop, f"stopped after {self.max_seconds:g} s")
                return
            try:
                async with asyncio.timeout(self.block_s + self.call_timeout):
                    if self.cursor is None:
                        tip = await self.center.last_event_id()
                        await self._on_start(tip)
                        self.cursor = tip
                        self.invalidate(full=True)
                        continue
                    last_id, read = await self.center.events(
                        self.cursor, block_ms=max(1, int(self.block_s * 1000)), count=500)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - shown, then retried: following must not die
                failures += 1
                self._record(exc)
                await asyncio.sleep(min(0.05 * 2 ** failures, 2.0))
                continue
            if run != self._run:
                return
            if read:
                self.cursor = last_id
                self.invalidate([event.fields for event in read])
            else:
                self.invalidate(full=True)  # quiet: re-read, for writers without events

    async def _render_loop(self, run: int) -> None:
        failures = 0
        while _live(run, self._run):
            try:
                async with asyncio.timeout(self.block_s * 4 + 1):
                    await self._dirty.wait()
            except TimeoutError:
                continue
            self._dirty.clear()
            events, full, mark = self._events, self._full, self._marked
            self._events, self._full = [], False
            try:
                await self._locked_update(events, full)
                self._rendered = mark
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - shown, then retried with a full read
                failures += 1
                self._record(exc)
                await asyncio.sleep(min(0.05 * 2 ** failures, 2.0))
                self.invalidate(full=True)

    # -- waiting -------------------------------------------------------------------------
    def caught_up(self, tip: str) -> bool:
        """True when every event up to ``tip`` is drawn (or the widget does not follow)."""
        if not self.following:
            return True
        return (self.cursor is not None and stream_key(self.cursor) >= stream_key(tip)
                and self._rendered == self._marked and not self._dirty.is_set())

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until hand-offs and tasks are done and every event so far is drawn."""
        self._check_loop()
        deadline = time.monotonic() + timeout
        while True:
            await self._quiet(deadline)
            tip = await self.center.last_event_id()
            while not self.caught_up(tip):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{type(self).__name__} did not catch up with the "
                                       f"events stream ({self.cursor} < {tip})")
                await asyncio.sleep(0.005)
            if not self.busy:
                return



def _resend_tree(widget: Any) -> None:
    for child in getattr(widget, "children", ()):
        _resend_tree(child)
    widget.layout.send_state()
    widget.send_state()


def _close_tree(widget: Any) -> None:
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()


class FollowingPanel(Following):
    """A Following widget with the controls every live panel shows: start and stop
    buttons, and a status line saying whether what it shows is live or a snapshot (and
    why it stopped). Subclasses build ``self.widget`` around them."""

    LIVE_TEXT = "following the center's events"
    SNAPSHOT_TEXT = "the figures above are a snapshot, not live"
    widget: Any

    def __init__(self, center: Center, block_s: float = 0.5,
                 max_seconds: float | None = None) -> None:
        super().__init__(center, block_s=block_s, max_seconds=max_seconds)
        self.status = w.HTML()
        self.start_button = self.button(self.start, description="start", icon="play")
        self.stop_button = self.button(self.stop, description="stop", icon="stop",
                                       button_style="danger")
        self.start_button.add_class("acd-start")
        self.stop_button.add_class("acd-stop")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def on_error(self, exc: BaseException) -> None:
        self.status.value = error_html(exc)

    def _show_following(self, following: bool) -> None:
        self.start_button.disabled = following
        self.stop_button.disabled = not following
        self.status.value = (
            f"<span class='acd-live' data-live='1'>● {self.LIVE_TEXT}</span>" if following
            else f"<span class='acd-live' data-live='0'>■ {esc(self.stopped_reason)}: "
                 f"{self.SNAPSHOT_TEXT}</span>")
