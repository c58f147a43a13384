"""Contact composer: choose skills, see the LAA ranking, enqueue, see who got the contact.

The ranking is ``Center.candidates`` (ZINTER of the skill availability sets, AGGREGATE
MIN): every available agent with all the skills, longest available first. Its first row,
highlighted, is the agent Longest Available Agent routing predicts. After "Enqueue" the
composer waits (with a deadline) for the contact to be assigned - by a dispatcher running
elsewhere, or by one dispatch round it calls itself when ``dispatch_now`` is ticked - and
shows which agent really got it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

import ipywidgets as w  # type: ignore[import-untyped]

from acd import Center, Contact, ContactState
from acd.models import Candidate
from lab.widgets._base import TaskRunner, age, error_html, esc, server_ms


class ContactComposer(TaskRunner):
    """Build with ``await ContactComposer.create(center)``; display ``composer``."""

    def __init__(self, center: Center, skills: Iterable[str], wait_s: float = 5.0) -> None:
        super().__init__()
        self.center = center
        self.wait_s = wait_s
        self.ranking: list[Candidate] = []
        self.now_ms = 0
        self.predicted: str | None = None
        self.contact: Contact | None = None
        self.after_assignment: list[Callable[[Contact], None]] = []
        self.skill_buttons: dict[str, Any] = {}
        self.skill_box = w.HBox()
        self.set_skills(skills)
        self.dispatch_now = w.Checkbox(value=True, description="run one dispatch round myself",
                                       indent=False)
        self.enqueue_button = w.Button(description="Enqueue contact", button_style="primary",
                                       icon="phone")
        self.enqueue_button.on_click(lambda _: self.spawn(self.enqueue()))
        self.ranking_html = w.HTML()
        self.result_html = w.HTML()
        self.widget = w.VBox([
            w.HTML("<h4>Contact composer</h4>Skills the contact needs:"),
            self.skill_box, w.HBox([self.enqueue_button, self.dispatch_now]),
            self.ranking_html, self.result_html])
        self._render_ranking()

    @classmethod
    async def create(cls, center: Center, skills: Iterable[str] = (), wait_s: float = 5.0
                     ) -> ContactComposer:
        composer = cls(center, sorted(set(skills) | set(await center.list_skills())), wait_s)
        return composer

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def on_error(self, exc: BaseException) -> None:
        self.result_html.value = error_html(exc)

    def set_skills(self, skills: Iterable[str]) -> None:
        for skill in sorted(set(skills)):
            if skill not in self.skill_buttons:
                button = w.ToggleButton(description=skill, layout=w.Layout(width="auto"))
                button.observe(self._on_skill, names="value")
                self.skill_buttons[skill] = button
        self.skill_box.children = [self.skill_buttons[s] for s in sorted(self.skill_buttons)]

    def _on_skill(self, change: dict[str, Any]) -> None:
        change["owner"].button_style = "info" if change["new"] else ""
        self.request_ranking()

    @property
    def selected(self) -> list[str]:
        return [s for s, b in self.skill_buttons.items() if b.value]

    def select(self, *skills: str) -> None:
        """Set the required skills, as clicks would (the ranking refreshes by itself)."""
        for skill, button in self.skill_buttons.items():
            button.value = skill in skills

    # -- ranking ----------------------------------------------------------------------
    def request_ranking(self, *_: Any) -> None:
        self.spawn(self.refresh_ranking())

    async def refresh_ranking(self) -> list[Candidate]:
        skills = self.selected
        self.ranking = await self.center.candidates(skills) if skills else []
        self.now_ms = await server_ms(self.center.redis)
        self._render_ranking()
        return self.ranking

    @property
    def laa(self) -> str | None:
        return self.ranking[0].agent if self.ranking else None

    def _render_ranking(self) -> None:
        skills = self.selected
        if not skills:
            self.ranking_html.value = "<i>Choose at least one skill to see the candidates.</i>"
            return
        head = (f"<b>Candidates for {esc(' + '.join(skills))}</b> "
                "(ZINTER of the availability sets, AGGREGATE MIN, oldest first)")
        if not self.ranking:
            self.ranking_html.value = head + "<br><i>No available agent has all these skills: "\
                "a contact would wait.</i>"
            return
        rows = []
        for i, c in enumerate(self.ranking[:15], 1):
            style = " style='background:#d4f7d4;font-weight:bold'" if i == 1 else ""
            tag = " ← LAA" if i == 1 else ""
            rows.append(f"<tr{style}><td>{i}</td><td>{esc(c.agent)}{tag}</td>"
                        f"<td>{c.available_since}</td>"
                        f"<td>{age(self.now_ms - c.available_since)}</td></tr>")
        more = (f"<tr><td colspan=4>… {len(self.ranking) - 15} more</td></tr>"
                if len(self.ranking) > 15 else "")
        self.ranking_html.value = (
            head + "<table class='acd-ranking'><tr><th>#</th><th>agent</th>"
            "<th>score (available since, ms)</th><th>available for</th></tr>"
            + "".join(rows) + more + "</table>")

    # -- enqueue and watch the assignment -----------------------------------------------
    async def enqueue(self) -> Contact:
        skills = self.selected
        if not skills:
            raise ValueError("choose at least one skill before enqueueing")
        await self.refresh_ranking()
        self.predicted = self.laa
        contact = await self.center.create_contact(skills)
        self.result_html.value = f"Queued contact <code>{esc(contact.id[:12])}</code>…"
        if self.dispatch_now.value:
            await self.center.dispatch()
        contact = await self.wait_assigned(contact.id)
        self.contact = contact
        self._render_result(contact)
        await self.refresh_ranking()
        for listener in self.after_assignment:
            listener(contact)
        return contact

    async def wait_assigned(self, contact_id: str) -> Contact:
        """The contact once assigned, or as it is after ``wait_s`` seconds."""
        deadline = time.monotonic() + self.wait_s
        while True:
            contact = await self.center.get_contact(contact_id)
            if contact.state is not ContactState.QUEUED or time.monotonic() >= deadline:
                return contact
            await asyncio.sleep(0.05)

    def _render_result(self, contact: Contact) -> None:
        cid = esc(contact.id[:12])
        if contact.state is not ContactState.ASSIGNED:
            self.result_html.value = (
                f"Contact <code>{cid}</code> is still <b>{esc(contact.state.value)}</b> after "
                f"{self.wait_s:g} s: no qualified agent is available, or no dispatcher is "
                "running (tick 'run one dispatch round myself').")
            return
        verdict = ("✔ the LAA, as predicted" if contact.agent == self.predicted else
                   f"≠ the ranking predicted {esc(self.predicted)}: the agents changed "
                   "between the ranking and the dispatch")
        self.result_html.value = (
            f"The dispatcher assigned contact <code>{cid}</code> to "
            f"<b>{esc(contact.agent)}</b> after {contact.wait_ms} ms — {verdict}.")
