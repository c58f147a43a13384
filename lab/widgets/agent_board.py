"""Agent board: one row per agent; every change goes through ``acd.Center`` to Redis.

A row shows the agent's name, a toggle per skill, an availability toggle, how long the
agent has been available and its current contact. Clicking a toggle calls the matching
Center operation (an atomic Redis Function) in a background task and redraws the row
from what Redis answered, so the board shows the stored truth, never a guess.

With hundreds of agents the board pages: it keeps ``page_size`` row widgets and rebinds
them to other agents when the page changes, so the number of widgets (what the browser
has to draw) stays constant; 200 agents render as fast as 20.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import ipywidgets as w  # type: ignore[import-untyped]

from acd import Agent, AgentState, Center
from acd.errors import ACDError
from lab.widgets._base import TaskRunner, age, error_html, esc, server_ms

Listener = Callable[[Agent], None]


class AgentRow:
    """The widgets of one row, bound to one agent at a time."""

    def __init__(self, board: AgentBoard, skills: list[str]) -> None:
        self.board = board
        self.agent: Agent | None = None
        self._binding = False
        self.name = w.HTML(layout=w.Layout(width="150px"))
        self.skill_buttons: dict[str, Any] = {}
        for skill in skills:
            self.add_skill_button(skill)
        self.available = w.ToggleButton(description="unavailable", icon="user",
                                        layout=w.Layout(width="120px"))
        self.available.observe(self._on_available, names="value")
        self.since = w.Label(layout=w.Layout(width="90px"))
        self.contact = w.Label(layout=w.Layout(width="120px"))
        self.box = w.HBox()
        self._layout()

    def add_skill_button(self, skill: str) -> None:
        button = w.ToggleButton(description=skill, layout=w.Layout(width="auto"),
                                tooltip=f"skill {skill}")
        button.observe(lambda change, s=skill: self._on_skill(s, change), names="value")
        self.skill_buttons[skill] = button

    def _layout(self) -> None:
        self.box.children = [self.name, *self.skill_buttons.values(), self.available,
                             self.since, self.contact]

    def bind(self, agent: Agent | None, now_ms: int) -> None:
        """Show ``agent`` (None hides the row) without calling back into Redis."""
        self.agent = agent
        self.box.layout.display = "none" if agent is None else None
        if agent is None:
            return
        self._binding = True
        try:
            self.name.value = (f"<b>{esc(agent.fname)} {esc(agent.lname)}</b> "
                               f"<code>{esc(agent.id)}</code>")
            for skill, button in self.skill_buttons.items():
                button.value = skill in agent.skills
                button.button_style = "info" if button.value else ""
            busy = agent.state is AgentState.BUSY
            self.available.value = agent.state is AgentState.AVAILABLE
            self.available.description = agent.state.value
            self.available.button_style = {AgentState.AVAILABLE: "success",
                                           AgentState.BUSY: "warning"}.get(agent.state, "")
            self.available.disabled = busy  # busy ends when the contact is completed
            self.since.value = (age(now_ms - agent.available_since)
                                if agent.available_since is not None else "-")
            self.contact.value = agent.contact[:12] if agent.contact else ""
        finally:
            self._binding = False

    def _on_skill(self, skill: str, change: dict[str, Any]) -> None:
        if self._binding or self.agent is None:
            return
        self.board.request(self.agent.id, "add_skill" if change["new"] else "remove_skill",
                           skill)

    def _on_available(self, change: dict[str, Any]) -> None:
        if self._binding or self.agent is None:
            return
        self.board.request(self.agent.id, "available" if change["new"] else "unavailable")


class AgentBoard(TaskRunner):
    """The board. Build it with ``await AgentBoard.create(center)``; display ``board``."""

    def __init__(self, center: Center, skills: Iterable[str] = (), page_size: int = 20
                 ) -> None:
        super().__init__()
        self.center = center
        self.page_size = page_size
        self.skills: list[str] = sorted(set(skills))
        self.agents: dict[str, Agent] = {}
        self.order: list[str] = []
        self.page = 0
        self.now_ms = 0
        self._listeners: list[Listener] = []
        self.rows: list[AgentRow] = []
        self.status = w.HTML()
        self.prev = w.Button(description="◀ previous", layout=w.Layout(width="110px"))
        self.next = w.Button(description="next ▶", layout=w.Layout(width="110px"))
        self.refresh_button = w.Button(description="refresh", icon="refresh",
                                       layout=w.Layout(width="100px"))
        self.page_label = w.Label()
        self.prev.on_click(lambda _: self.show_page(self.page - 1))
        self.next.on_click(lambda _: self.show_page(self.page + 1))
        self.refresh_button.on_click(lambda _: self.request_refresh())
        self.rows_box = w.VBox()
        self.widget = w.VBox([
            w.HTML(f"<h4>Agents of center <code>{esc(center.name)}</code></h4>"),
            w.HBox([self.prev, self.next, self.page_label, self.refresh_button]),
            self.rows_box, self.status])

    @classmethod
    async def create(cls, center: Center, skills: Iterable[str] = (), page_size: int = 20
                     ) -> AgentBoard:
        board = cls(center, skills, page_size)
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
        start = self.page * self.page_size
        for i, row in enumerate(self.rows):
            index = start + i
            row.bind(self.agents[self.order[index]] if index < len(self.order) else None,
                     self.now_ms)
        if self.rows_box.children != tuple(r.box for r in self.rows):
            self.rows_box.children = [r.box for r in self.rows]
        last = min(start + self.page_size, len(self.order))
        self.page_label.value = (f"agents {start + 1}-{last} of {len(self.order)}"
                                 if self.order else "no agents yet")
        self.prev.disabled = self.page == 0
        self.next.disabled = self.page >= self.pages - 1

    # -- Redis ----------------------------------------------------------------------
    async def refresh(self) -> None:
        """Read every agent from Redis (one JSON.MGET) and redraw the visible rows."""
        agents = await self.center.list_agents()
        self.now_ms = await server_ms(self.center.redis)
        self.agents = {a.id: a for a in agents}
        self.order = sorted(self.agents)
        self._ensure_skills(agents)
        self.page = min(self.page, self.pages - 1)
        self._render()

    def request_refresh(self) -> None:
        self.spawn(self.refresh())

    def request(self, agent_id: str, op: str, skill: str | None = None) -> None:
        """What a click does: schedule the change (callbacks cannot await)."""
        self.spawn(self.apply(agent_id, op, skill))

    async def apply(self, agent_id: str, op: str, skill: str | None = None) -> Agent:
        """Make one change in Redis through Center and redraw the agent's row."""
        c = self.center
        try:
            if op == "add_skill" and skill:
                agent = await c.add_skill(agent_id, skill)
            elif op == "remove_skill" and skill:
                agent = await c.remove_skill(agent_id, skill)
            elif op in ("available", "unavailable"):
                agent = await c.set_agent_state(agent_id, op)
            else:
                raise ValueError(f"unknown board operation {op!r}")
        except ACDError as exc:
            # Refused (e.g. a busy agent): show why, and redraw the row from Redis.
            self.on_error(exc)
            agent = await c.get_agent(agent_id)
            self._update(agent)
            return agent
        self.now_ms = await server_ms(c.redis)
        self._update(agent)
        where = f" {skill}" if skill else ""
        self.status.value = f"✔ {esc(agent_id)}: {esc(op.replace('_', ' '))}{esc(where)}"
        for listener in self._listeners:
            listener(agent)
        return agent

    def _update(self, agent: Agent) -> None:
        self.agents[agent.id] = agent
        if agent.id not in self.order:
            self.order = sorted(self.agents)
            self._ensure_skills([agent])
            self._render()
            return
        index = self.order.index(agent.id)
        if index // self.page_size == self.page:
            self.rows[index % self.page_size].bind(agent, self.now_ms)

    # -- the same as clicks, for notebooks and tests ------------------------------------
    def click_skill(self, agent_id: str, skill: str) -> None:
        """Flip ``skill`` of ``agent_id`` as a click on its toggle would."""
        button = self.row_of(agent_id).skill_buttons[skill]
        button.value = not button.value

    def click_available(self, agent_id: str) -> None:
        button = self.row_of(agent_id).available
        button.value = not button.value
