"""What every lab widget shares: ONE event loop for everything a widget does.

The rule. A widget belongs to the asyncio loop that was running when it was created: in
a notebook, the kernel's main loop, which is also where the notebook's Redis client
(``lab.notebook.setup``) opened its connections; in a test, the test's loop. Every Redis
call, every change of a widget's traits and every task of the widget happens on that
loop, in that thread. Whatever arrives from the browser (a ToggleButton or Checkbox
state update, a Button click, a plotly relayout) is not handled where it arrives: it is
handed to the owner loop with ``loop.call_soon_threadsafe`` (``TaskRunner.post``), which
is safe from any thread and keeps arrival order, and handled there.

Why this is right, and why the old rule ("callbacks run on the kernel's loop, so use
``asyncio.get_running_loop()``") was wrong. JupyterLab 4.4+ sends comm messages to
kernel *subshells* when the kernel supports them (setting ``commsOverSubshells``,
default ``perCommTarget``: one subshell for every ``jupyter.widget`` comm), and
ipykernel 7 runs each subshell in its own thread with its own asyncio loop
(``SubshellThread``: a tornado ``IOLoop(make_current=False)`` on a new loop). Which
thread handles a given widget message changes with the comm's history: ipykernel's
shell-channel thread sends a ``comm_msg`` to the subshell named in the parent header of
the kernel's last message *on that comm* (``BaseComm._reply_subshell_for``). After the
kernel redrew the widget from a cell or from a task a cell started (parent: the cell,
no subshell), the next click runs on the main thread; after it echoed a click
(ipywidgets' ``echo_update``, parent: the click), the next click runs on the subshell
thread. So callbacks alternate between threads as widgets get redrawn: the "1 click in
3". On the subshell thread ``asyncio.get_running_loop()`` is the subshell's loop. A
redis.asyncio connection is bound to the loop it was opened on (its StreamReader makes
its futures there) and the pool hands any idle connection to whoever asks, so a task on
the subshell loop that gets a main-loop connection fails with "Task ... got Future
attached to a different loop", and a connection opened by the subshell loop goes back
into the pool and later breaks a cell on the main loop. The display then keeps what the
click left in it while Redis changed (or did not). Measured before this rule
(JupyterLab 4.6.6, ipykernel 7.4.0, Chromium): of 10 clicks on a probe ToggleButton, 9
callbacks ran on the subshell thread and 1 on the main thread; of 30 clicks on the
board, one failed that way after Redis had changed, and the next plain cell awaiting
Redis failed too (a subshell-made connection in the pool). Traits changed from two
threads also race with each other. With this rule, tests/notebooks/test_widget_stress.py
(200 random clicks, about 40% of them arriving on a subshell thread): no error, and
every widget showed what Redis held after every click.

The rule holds whichever thread ipykernel picks, with or without subshells (a client
that does not use them, like nbval's, sends comms to the main shell: then the hop is
just a ``call_soon``), and it needs no particular ipykernel version. Its cost: a click
waits while the main thread runs a long *synchronous* cell (an ``await`` in a cell
does not block it). Rejected: one Redis client per loop (widget state would then change
from several threads, and subshell loops come and go); running coroutines on the main
loop from a callback and waiting for them there (deadlocks when the callback runs on
the main thread); turning ``commsOverSubshells`` off in JupyterLab's settings (fixes one
front-end's configuration, not the widgets).

``settle()`` waits until everything posted and spawned so far is done (and, for widgets
that follow the events stream, until the display reflects every event up to now).
Notebooks and tests ``await`` it on the widget's own loop before they compare.
"""

from __future__ import annotations

import asyncio
import html
import re
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import ipywidgets as w  # type: ignore[import-untyped]

from lab.errors import LabError


class WrongLoop(LabError):
    """A widget was used from a loop other than the one that created it."""


class TaskRunner:
    """Owns a widget's loop: runs hand-offs (post) and tasks (spawn) there, keeps errors.

    Create it while a loop runs (a notebook cell, a coroutine): that loop is the owner.
    """

    def __init__(self) -> None:
        try:
            self.loop = asyncio.get_running_loop()
        except RuntimeError:
            raise WrongLoop("create lab widgets while an event loop runs: in a notebook "
                            "cell, or inside a coroutine") from None
        self._thread = threading.get_ident()
        self._lock = threading.Lock()  # guards the counters post() updates from any thread
        self._posted = 0
        self.intents = 0  # user actions received (clicks, toggles), from any thread
        self.intents_elsewhere = 0  # of those, how many arrived on another thread
        self._pending: set[asyncio.Task[Any]] = set()
        self.errors: list[BaseException] = []  # unexpected failures (a bug or Redis away)

    # -- the hand-off ------------------------------------------------------------------
    def on_owner_thread(self) -> bool:
        return threading.get_ident() == self._thread

    def post(self, fn: Callable[..., Any], *args: Any, intent: bool = False) -> None:
        """Run ``fn(*args)`` on the owner loop soon; callable from any thread.

        ``intent`` counts a user action, so a checker can wait until every click it made
        has arrived (see lab.widgets.check).
        """
        with self._lock:
            self._posted += 1
            if intent:
                self.intents += 1
                self.intents_elsewhere += not self.on_owner_thread()
        try:
            self.loop.call_soon_threadsafe(self._run_posted, fn, args)
        except RuntimeError:  # the loop is closed: the kernel or test is over
            with self._lock:
                self._posted -= 1

    def _run_posted(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - a callback must not kill the loop; shown
            self._record(exc)
        finally:
            with self._lock:
                self._posted -= 1

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` as a task on the owner loop (call on the owner thread)."""
        if not self.on_owner_thread():
            coro.close()
            raise WrongLoop("spawn() outside the widget's thread: use post()")
        task = self.loop.create_task(coro)
        self._pending.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            assert exc is not None
            self._record(exc)

    def _record(self, exc: BaseException) -> None:
        self.errors.append(exc)
        self.on_error(exc)

    def on_error(self, exc: BaseException) -> None:
        """Show an error of a background task (widgets override this)."""

    # -- waiting -------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return bool(self._pending) or self._posted > 0

    def _check_loop(self) -> None:
        if asyncio.get_running_loop() is not self.loop:
            raise WrongLoop("await this on the loop that created the widget")

    async def _quiet(self, deadline: float) -> None:
        """Wait until nothing posted or spawned is left (new ones included)."""
        while self.busy:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{len(self._pending)} widget task(s) and {self._posted} "
                                   "hand-off(s) still pending")
            if self._pending:
                await asyncio.wait(set(self._pending), timeout=left)
            else:
                await asyncio.sleep(0)  # posted callbacks run on the next iteration

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until every hand-off and task so far (and those they start) is done."""
        self._check_loop()
        await self._quiet(time.monotonic() + timeout)

    # -- widgets whose front-end messages go through the owner loop ----------------------
    def button(self, action: Callable[[], Any], **kwargs: Any) -> Any:
        """A Button whose clicks run ``action()`` on the owner loop."""
        button = w.Button(**kwargs)
        button.on_click(lambda _b: self.post(action, intent=True))
        return button

    def toggle(self, on_user: Callable[[bool, Any], Any],
               capture: Callable[[], Any] | None = None, **kwargs: Any) -> LoopToggle:
        """A ToggleButton whose user changes call ``on_user(new, seen)`` on the owner
        loop; ``seen`` is what ``capture()`` returned when the click arrived."""
        return LoopToggle(self, on_user, capture, **kwargs)


class OwnerLoopState:
    """Mixin for ipywidgets: state from the front-end is applied on the owner loop.

    ``set_state`` is the one entry point ipywidgets uses for an update from the browser
    (never for changes made in Python), so overriding it both moves the change to the
    owner loop and tells a user's action apart from our own rendering: no "am I
    rendering?" flag, which would be wrong when the click arrives on another thread.
    """

    _owner: TaskRunner
    _on_user: Callable[[dict[str, Any], Any], Any] | None = None
    _capture: Callable[[], Any] | None = None

    def set_state(self, sync_data: dict[str, Any]) -> None:
        # Any thread: only read here (capture: e.g. which agent the row showed).
        seen = self._capture() if self._capture is not None else None
        self._owner.post(self._apply_user_state, dict(sync_data), seen,
                         intent=self._on_user is not None)

    def _apply_user_state(self, sync_data: dict[str, Any], seen: Any) -> None:
        super().set_state(sync_data)  # type: ignore[misc]
        if self._on_user is not None:
            self._on_user(sync_data, seen)


class LoopToggle(OwnerLoopState, w.ToggleButton):  # type: ignore[misc]
    def __init__(self, owner: TaskRunner, on_user: Callable[[bool, Any], Any],
                 capture: Callable[[], Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._owner = owner
        self._capture = capture

        def user(sync_data: dict[str, Any], seen: Any) -> None:
            if "value" in sync_data:
                on_user(bool(sync_data["value"]), seen)

        self._on_user = user

    def user_click(self) -> None:
        """What a click in the browser sends: the flipped value, as a state update."""
        self.set_state({"value": not self.value})


class LoopCheckbox(OwnerLoopState, w.Checkbox):  # type: ignore[misc]
    """A Checkbox whose front-end changes are applied on the owner loop."""

    def __init__(self, owner: TaskRunner, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._owner = owner
        self._on_user = lambda _data, _seen: None  # a user's action all the same (counted)


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def data_attrs(text: str, name: str) -> list[str]:
    """The values of every ``data-<name>='...'`` attribute in a widget's HTML, in order:
    what a widget shows, read back for comparison with Redis (``displayed``)."""
    return [html.unescape(v) for v in re.findall(rf"data-{name}='([^']*)'", text)]


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


def error_html(exc: BaseException) -> str:
    return f"<span style='color:#b00'>⚠ {esc(type(exc).__name__)}: {esc(exc)}</span>"
