"""Agent board: one row per agent; every change goes through ``acd.Center`` to Redis.

A row shows the agent's name, a toggle per skill, an availability toggle, how long the
agent has been available and its current contact. Clicking a toggle calls the matching
Center operation (an atomic Redis Function) in a background task. The board follows the
center's events stream (``_follow``), so it shows every change, made here or by anyone
else (a dispatcher assigning, the REST API, another notebook), within milliseconds,
always drawn from a read of Redis: the board shows the stored truth, never a guess.
While a click's call is in flight its row keeps what the click showed, then is redrawn
from Redis (so a refused change, e.g. making a busy agent available, flips back and the
status line says why).

With hundreds of agents the board pages: it keeps ``page_size`` row widgets and rebinds
them to other agents when the page changes, so the number of widgets (what the browser
has to draw) stays constant; 200 agents render as fast as 20. Agents are listed in the
order they were created, so a new agent never moves the rows under a pointer.
"""

from __future__ import annotations

import asyncio
import html
import re
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import ipywidgets as w  # type: ignore[import-untyped]

from acd import Agent, AgentState, Center
from acd.errors import ACDError
from lab.widgets._base import LoopToggle, age, error_html, esc
from lab.widgets._follow import Event, Following

Listener = Callable[[Agent], None]
# Events that name the one agent they changed; any other type makes the board re-read all.
AGENT_EVENTS = {"agent_state", "agent_next_state", "agent_skill", "agent_created",
                "agent_deleted", "agent_updated", "contact_assigned"}
NOT_AGENTS = {"contact_queued", "contact_completed", "contact_abandoned", "dispatch_mode",
              "contact_closed", "contact_relaxed", "contact_overflowed"}  # acd.steps


def _order(agents: Iterable[Agent]) -> list[str]:
    return [a.id for a in sorted(agents, key=lambda a: (a.created_at, a.id))]


def contact_text(agent: Agent) -> str:
    """The contact column: the contact, and what happens after it if the agent asked."""
    if not agent.contact:
        return ""
    after = " → unavailable" if agent.next_state is AgentState.UNAVAILABLE else ""
    return agent.contact[:12] + after


def row_facts(agent: Agent) -> dict[str, Any]:
    """What a row must show for ``agent`` (displayed() reads the same from the widgets)."""
    return {"agent": agent.id, "name": f"{agent.fname} {agent.lname}",
            "skills": sorted(agent.skills), "state": agent.state.value,
            "available": agent.state is AgentState.AVAILABLE,
            "locked": agent.state is AgentState.BUSY, "contact": contact_text(agent)}


class AgentRow:
    """The widgets of one row, bound to one agent at a time."""

    def __init__(self, board: AgentBoard, skills: list[str]) -> None:
        self.board = board
        self.agent: Agent | None = None
        self.name = w.HTML(layout=w.Layout(width="150px"))
        self.skill_buttons: dict[str, LoopToggle] = {}
        for skill in skills:
            self.add_skill_button(skill)
        self.available = board.toggle(self._on_available, capture=self._shown_id,
                                      description="unavailable", icon="user",
                                      layout=w.Layout(width="120px"))
        self.available.add_class("acd-avail")
        self.since = w.Label(layout=w.Layout(width="90px"))
        self.contact = w.Label(layout=w.Layout(width="200px"))
        self.box = w.HBox()
        self.box.add_class("acd-row")
        self._layout()

    def _shown_id(self) -> str | None:
        # Read when a click arrives (any thread; one attribute read): a row rebound
        # before the hand-off runs still acts on the agent that was clicked.
        agent = self.agent
        return agent.id if agent is not None else None

    def add_skill_button(self, skill: str) -> None:
        def clicked(new: bool, agent_id: str | None) -> None:
            self._on_skill(agent_id, skill, new)

        button = self.board.toggle(
            clicked, capture=self._shown_id, description=skill, layout=w.Layout(width="auto"),
            tooltip=f"skill {skill}")
        button.add_class("acd-skill")
        self.skill_buttons[skill] = button

    def _layout(self) -> None:
        self.box.children = [self.name, *self.skill_buttons.values(), self.available,
                             self.since, self.contact]

    def bind(self, agent: Agent | None, now_ms: int) -> None:
        """Show ``agent`` (None hides the row). Never calls back into Redis: only a
        user's click (a front-end state update) does."""
        self.agent = agent
        self.box.layout.display = "none" if agent is None else None
        if agent is None:
            return
        self.name.value = (f"<b>{esc(agent.fname)} {esc(agent.lname)}</b> "
                           f"<code>{esc(agent.id)}</code>")
        for skill, button in self.skill_buttons.items():
            button.value = skill in agent.skills
            button.button_style = "info" if button.value else ""
        self.available.value = agent.state is AgentState.AVAILABLE
        self.available.description = agent.state.value
        self.available.button_style = {AgentState.AVAILABLE: "success",
                                       AgentState.BUSY: "warning"}.get(agent.state, "")
        self.available.disabled = agent.state is AgentState.BUSY  # its contact must end
        self.since.value = (age(now_ms - agent.available_since)
                            if agent.available_since is not None else "-")
        self.contact.value = contact_text(agent)

    def facts(self) -> dict[str, Any] | None:
        """What this row shows, read back from its widgets (None: hidden)."""
        if self.box.layout.display == "none":
            return None
        name = re.search(r"<b>(.*?)</b>", self.name.value)
        code = re.search(r"<code>(.*?)</code>", self.name.value)
        return {"agent": html.unescape(code.group(1)) if code else None,
                "name": html.unescape(name.group(1)) if name else None,
                "skills": sorted(s for s, b in self.skill_buttons.items() if b.value),
                "state": self.available.description, "available": self.available.value,
                "locked": self.available.disabled, "contact": self.contact.value}

    def _on_skill(self, agent_id: str | None, skill: str, new: bool) -> None:
        if agent_id is not None:
            self.board.request(agent_id, "add_skill" if new else "remove_skill", skill)

    def _on_available(self, new: bool, agent_id: str | None) -> None:
        if agent_id is not None:
            self.board.request(agent_id, "available" if new else "unavailable")


class AgentBoard(Following):
    """The board. Build it with ``await AgentBoard.create(center)``; display ``board``."""

    def __init__(self, center: Center, skills: Iterable[str] = (), page_size: int = 20,
                 block_s: float = 0.5, max_seconds: float | None = None) -> None:
        super().__init__(center, block_s=block_s, max_seconds=max_seconds)
        self.page_size = page_size
        self.skills: list[str] = sorted(set(skills))
        self.agents: dict[str, Agent] = {}
        self.order: list[str] = []
        self.page = 0
        self.now_ms = 0
        self.refusals: list[ACDError] = []
        self._inflight: Counter[str] = Counter()
        self._listeners: list[Listener] = []
        self.rows: list[AgentRow] = []
        self.status = w.HTML()
        self.prev = self.button(lambda: self.show_page(self.page - 1),
                                description="◀ previous", layout=w.Layout(width="110px"))
        self.next = self.button(lambda: self.show_page(self.page + 1),
                                description="next ▶", layout=w.Layout(width="110px"))
        self.refresh_button = self.button(self.request_refresh, description="refresh",
                                          icon="refresh", layout=w.Layout(width="100px"))
        self.page_label = w.Label()
        self.live_label = w.HTML()
        self.rows_box = w.VBox()
        self.widget = w.VBox([
            w.HTML(f"<h4>Agents of center <code>{esc(center.name)}</code></h4>"),
            w.HBox([self.prev, self.next, self.page_label, self.refresh_button,
                    self.live_label]),
            self.rows_box, self.status])
        self._render()

    @classmethod
    async def create(cls, center: Center, skills: Iterable[str] = (), page_size: int = 20,
                     follow: bool = True) -> AgentBoard:
        """The board, drawn from Redis and (``follow``) following the center's events."""
        board = cls(center, skills, page_size)
        if follow:
            board.start()
            await board.settle()
        else:
            await board.refresh()
        return board

    # -- display --------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def on_change(self, listener: Listener) -> None:
        """Call ``listener(agent)`` after each change the board made in Redis."""
        self._listeners.append(listener)

    def on_error(self, exc: BaseException) -> None:
        self.status.value = error_html(exc)

    def _show_following(self, following: bool) -> None:
        self.live_label.value = ("<span style='color:#080'>● following Redis</span>"
                                 if following else
                                 f"<span style='color:#a60'>■ {esc(self.stopped_reason)}: "
                                 "click refresh to follow again</span>")

    @property
    def pages(self) -> int:
        return max(1, -(-len(self.order) // self.page_size))

    def row_of(self, agent_id: str) -> AgentRow:
        """The row showing ``agent_id`` (switching to its page)."""
        index = self.order.index(agent_id)
        if index // self.page_size != self.page:
            self.show_page(index // self.page_size)
        return self.rows[index % self.page_size]

    def show_page(self, page: int) -> None:
        self.page = min(max(0, page), self.pages - 1)
        self._render()

    def _ensure_skills(self, agents: Iterable[Agent]) -> None:
        new = sorted({s for a in agents for s in a.skills} - set(self.skills))
        if not new:
            return
        self.skills = sorted({*self.skills, *new})
        for row in self.rows:
            for skill in new:
                row.add_skill_button(skill)
            row.skill_buttons = {s: row.skill_buttons[s] for s in self.skills}
            row._layout()

    def _render(self) -> None:
        while len(self.rows) < min(self.page_size, len(self.order)):
            self.rows.append(AgentRow(self, self.skills))
        self.page = min(self.page, self.pages - 1)
        start = self.page * self.page_size
        for i, row in enumerate(self.rows):
            index = start + i
            agent = self.agents[self.order[index]] if index < len(self.order) else None
            if (agent is not None and self._inflight[agent.id] and row.agent is not None
                    and row.agent.id == agent.id):
                continue  # a click on this agent is in flight: its row keeps the click
            row.bind(agent, self.now_ms)
        if self.rows_box.children != tuple(r.box for r in self.rows):
            self.rows_box.children = [r.box for r in self.rows]
        last = min(start + self.page_size, len(self.order))
        self.page_label.value = (f"agents {start + 1}-{last} of {len(self.order)}"
                                 if self.order else "no agents yet")
        self.prev.disabled = self.page == 0
        self.next.disabled = self.page >= self.pages - 1

    # -- Redis ----------------------------------------------------------------------
    async def _update(self, events: list[Event], full: bool) -> None:
        ids: set[str] = set()
        for event in events:
            kind = event.get("type", "")
            if kind in AGENT_EVENTS and "agent" in event:
                ids.add(event["agent"])
            elif kind not in NOT_AGENTS:
                full = True  # center_state, skill_deleted, anything new: read everything
        if full:
            agents = await self.center.list_agents()
            self.now_ms = await self.center.server_ms()
            self.agents = {a.id: a for a in agents}
        elif ids:
            wanted = sorted(ids)
            found = await self.center.get_agents(wanted)
            self.now_ms = await self.center.server_ms()
            for agent_id, agent in zip(wanted, found, strict=True):
                if agent is None:
                    self.agents.pop(agent_id, None)
                else:
                    self.agents[agent_id] = agent
        else:
            return  # nothing an agent row shows changed
        self.order = _order(self.agents.values())
        self._ensure_skills(self.agents.values())
        self._render()

    def request_refresh(self) -> None:
        """The refresh button: re-read everything, and follow again if stopped."""
        if not self.following:
            self.start()
        self.spawn(self.refresh())

    def request(self, agent_id: str, op: str, skill: str | None = None) -> None:
        """What a click does: schedule the change (callbacks cannot await)."""
        self._inflight[agent_id] += 1
        self.spawn(self.apply(agent_id, op, skill, counted=True))

    async def apply(self, agent_id: str, op: str, skill: str | None = None,
                    counted: bool = False) -> Agent | None:
        """Make one change in Redis through Center; the row is then redrawn from Redis."""
        c = self.center
        agent: Agent | None = None
        try:
            async with asyncio.timeout(self.call_timeout):
                if op == "add_skill" and skill:
                    agent = await c.add_skill(agent_id, skill)
                elif op == "remove_skill" and skill:
                    agent = await c.remove_skill(agent_id, skill)
                elif op in ("available", "unavailable"):
                    agent = await c.set_agent_state(agent_id, op)
                else:
                    raise ValueError(f"unknown board operation {op!r}")
        except ACDError as exc:
            # Refused (e.g. a busy agent made available): say why; the redraw below
            # puts back what Redis holds.
            self.refusals.append(exc)
            self.status.value = error_html(exc)
        finally:
            if counted:
                self._inflight[agent_id] -= 1
                if self._inflight[agent_id] <= 0:
                    del self._inflight[agent_id]
        await self.reflect([{"type": "agent_state", "agent": agent_id}])
        if agent is not None:
            where = f" {skill}" if skill else ""
            self.status.value = (f"✔ {esc(agent_id)}: {esc(op.replace('_', ' '))}"
                                 f"{esc(where)}")
            for listener in self._listeners:
                listener(agent)
        return self.agents.get(agent_id)

    # -- comparable views -----------------------------------------------------------
    def displayed(self) -> dict[str, Any]:
        """What the board shows now, read back from its widgets."""
        rows = [f for f in (r.facts() for r in self.rows) if f is not None]
        return {"following": self.following, "page": self.page_label.value, "rows": rows}

    async def from_redis(self) -> dict[str, Any]:
        """What the board must show for its page, computed from Redis alone."""
        agents = await self.center.list_agents()
        order = sorted(agents, key=lambda a: (a.created_at, a.id))
        pages = max(1, -(-len(order) // self.page_size))
        start = min(self.page, pages - 1) * self.page_size
        shown = order[start:start + self.page_size]
        page = (f"agents {start + 1}-{start + len(shown)} of {len(order)}"
                if order else "no agents yet")
        return {"following": True, "page": page, "rows": [row_facts(a) for a in shown]}

    # -- the same as clicks, for notebooks and tests ------------------------------------
    def click_skill(self, agent_id: str, skill: str) -> None:
        """Flip ``skill`` of ``agent_id`` as a click on its toggle does (a state update
        from the front-end)."""
        self.row_of(agent_id).skill_buttons[skill].user_click()

    def click_available(self, agent_id: str) -> None:
        self.row_of(agent_id).available.user_click()
