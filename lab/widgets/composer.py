"""Contact composer: choose skills, see the LAA ranking, enqueue, see who got the contact.

The ranking is ``Center.candidates`` (ZINTER of the skill availability sets, AGGREGATE
MIN): every available agent with all the skills, longest available first. Its first row,
highlighted, is the agent Longest Available Agent routing predicts. The composer follows
the center's events stream (``_follow``), so the ranking, the dispatch mode and the fate
of the last contact it queued stay what Redis holds, whoever changes them.

After "Enqueue" it says what really happens to the contact, from Redis: assigned (to
whom, and by whom: the round it ran itself when "run one dispatch round myself" is
ticked, else the lab's dispatchers or another client's dispatch call), or waiting and
why - no qualified agent available, manual dispatch mode (run your dispatcher), or no
dispatcher connected. The message changes by itself when the contact's fate does.
"""

from __future__ import annotations

import asyncio
import html
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

import ipywidgets as w  # type: ignore[import-untyped]

from acd import Center, Contact, ContactState, NotFound
from acd.models import Candidate, DispatchMode
from lab.widgets._base import LoopCheckbox, LoopToggle, age, error_html, esc
from lab.widgets._follow import Event, Following, dispatchers_connected

SHOWN = 15  # ranking rows drawn; the rest is counted


def waiting_reason(mode: DispatchMode, dispatchers: int | None, qualified: bool
                   ) -> tuple[str, str]:
    """Why a queued contact waits, as (key, sentence), from facts read in Redis."""
    keys, words = [], []
    if not qualified:
        keys.append("no-agent")
        words.append("no qualified agent available (nobody available has all its skills)")
    if mode is DispatchMode.MANUAL:
        keys.append("manual")
        words.append("manual mode, run your dispatcher (or tick 'run one dispatch round "
                     "myself')")
    elif dispatchers == 0:
        keys.append("no-dispatcher")
        words.append("automatic mode, but no dispatcher is connected")
    if keys:
        return "+".join(keys), "; ".join(words)
    if dispatchers is None:  # CLIENT LIST refused (ACLs): say what we cannot see
        return "dispatching", ("qualified agents are available and the mode is automatic; "
                               "this server does not show whether a dispatcher is connected")
    return "dispatching", "qualified agents are available; a dispatcher assigns it now"


class ContactComposer(Following):
    """Build with ``await ContactComposer.create(center)``; display ``composer``."""

    def __init__(self, center: Center, skills: Iterable[str], wait_s: float = 5.0,
                 block_s: float = 0.5, max_seconds: float | None = None) -> None:
        super().__init__(center, block_s=block_s, max_seconds=max_seconds)
        self.wait_s = wait_s
        self.ranking: list[Candidate] = []
        self.ranking_for: list[str] = []
        self.now_ms = 0
        self.mode: DispatchMode | None = None
        self.dispatchers: int | None = None
        self.predicted: str | None = None
        self.contact: Contact | None = None
        self.contact_id: str | None = None
        self.contact_gone = False
        self.assigned_by_me = False
        self.reason: tuple[str, str] | None = None
        self.after_assignment: list[Callable[[Contact], None]] = []
        self.skill_buttons: dict[str, LoopToggle] = {}
        self.skill_box = w.HBox()
        self.set_skills(skills)
        self.dispatch_now = LoopCheckbox(self, value=True, indent=False,
                                         description="run one dispatch round myself")
        self.enqueue_button = self.button(self.request_enqueue, description="Enqueue contact",
                                          button_style="primary", icon="phone")
        self.enqueue_button.add_class("acd-enqueue")
        self.mode_html = w.HTML()
        self.ranking_html = w.HTML()
        self.result_html = w.HTML()
        self.notice_html = w.HTML()  # what a click was told; never hides the contact's fate
        self.widget = w.VBox([
            w.HTML("<h4>Contact composer</h4>Skills the contact needs:"),
            self.skill_box, w.HBox([self.enqueue_button, self.dispatch_now]),
            self.mode_html, self.ranking_html, self.result_html, self.notice_html])
        self._render_ranking()

    @classmethod
    async def create(cls, center: Center, skills: Iterable[str] = (), wait_s: float = 5.0,
                     follow: bool = True) -> ContactComposer:
        composer = cls(center, sorted(set(skills) | set(await center.list_skills())), wait_s)
        if follow:
            composer.start()
            await composer.settle()
        else:
            await composer.refresh()
        return composer

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def on_error(self, exc: BaseException) -> None:
        self.notice_html.value = error_html(exc)

    def _show_following(self, following: bool) -> None:
        self._render_mode()

    def set_skills(self, skills: Iterable[str]) -> None:
        for skill in sorted(set(skills)):
            if skill not in self.skill_buttons:
                self.skill_buttons[skill] = self.toggle(
                    self._skill_handler(skill), description=skill,
                    layout=w.Layout(width="auto"))
                self.skill_buttons[skill].add_class("acd-need")
        if len(self.skill_box.children) != len(self.skill_buttons):
            self.skill_box.children = [self.skill_buttons[s] for s in sorted(self.skill_buttons)]

    def _skill_handler(self, skill: str) -> Callable[[bool, Any], None]:
        return lambda new, _seen: self._on_skill(skill, new)

    def _on_skill(self, skill: str, new: bool) -> None:
        self.skill_buttons[skill].button_style = "info" if new else ""
        self.request_ranking()

    @property
    def selected(self) -> list[str]:
        return [s for s, b in self.skill_buttons.items() if b.value]

    def select(self, *skills: str) -> None:
        """Set the required skills, as clicks would (the ranking refreshes by itself)."""
        for button in self.skill_buttons.values():
            if button.value != (button.description in skills):
                button.user_click()

    # -- reading Redis and drawing ----------------------------------------------------
    def request_ranking(self, *_: Any) -> None:
        if self.following:
            self.invalidate(full=True)
        else:
            self.spawn(self.refresh())

    async def refresh_ranking(self) -> list[Candidate]:
        await self.refresh()
        return self.ranking

    async def _update(self, events: list[Event], full: bool) -> None:
        c = self.center
        skills = self.selected
        self.mode = await c.dispatch_mode()
        self.dispatchers = await dispatchers_connected(c.redis)
        self.set_skills(await c.list_skills())
        self.ranking = await c.candidates(skills) if skills else []
        self.ranking_for = skills
        self.now_ms = await c.server_ms()
        if self.contact_id is not None:
            await self._read_contact(self.contact_id)
        self._render_mode()
        self._render_ranking()
        self._render_result()

    async def _read_contact(self, contact_id: str) -> None:
        before = self.contact
        try:
            contact = await self.center.get_contact(contact_id)
        except NotFound:  # ended contacts expire (contact_keep_seconds)
            self.contact_gone, self.reason = True, None
            return
        self.contact, self.contact_gone = contact, False
        self.reason = None
        if contact.state is ContactState.QUEUED:
            qualified = bool(await self.center.candidates(contact.skills))
            assert self.mode is not None
            self.reason = waiting_reason(self.mode, self.dispatchers, qualified)
        elif (contact.state is ContactState.ASSIGNED
              and (before is None or before.state is ContactState.QUEUED)):
            for listener in self.after_assignment:
                listener(contact)

    @property
    def laa(self) -> str | None:
        return self.ranking[0].agent if self.ranking else None

    def _render_mode(self) -> None:
        if self.mode is None:
            self.mode_html.value = ""
            return
        who = ("the lab's dispatchers assign contacts" if self.mode is DispatchMode.AUTOMATIC
               else "only explicit dispatch calls assign (your dispatcher, or the round "
               "below)")
        n = ("unknown" if self.dispatchers is None else str(self.dispatchers))
        live = ("" if self.following else
                f" <span style='color:#a60'>■ {esc(self.stopped_reason)}: not following "
                "Redis</span>")
        self.mode_html.value = (
            f"<div class='acd-mode' data-mode='{esc(self.mode.value)}' data-dispatchers="
            f"'{esc(n)}'>Dispatch mode: <b>{esc(self.mode.value)}</b>: {who}; dispatcher "
            f"processes connected: {esc(n)}.{live}</div>")

    def _render_ranking(self) -> None:
        skills = self.ranking_for
        if not skills:
            self.ranking_html.value = "<i>Choose at least one skill to see the candidates.</i>"
            return
        head = (f"<b>Candidates for {esc(' + '.join(skills))}</b> "
                "(ZINTER of the availability sets, AGGREGATE MIN, oldest first)")
        attrs = f"data-skills='{esc(','.join(skills))}' data-count='{len(self.ranking)}'"
        if not self.ranking:
            self.ranking_html.value = (
                f"{head}<div class='acd-none' {attrs}><i>No available agent has all these "
                "skills: a contact would wait.</i></div>")
            return
        rows = []
        for i, c in enumerate(self.ranking[:SHOWN], 1):
            style = " style='background:#d4f7d4;font-weight:bold'" if i == 1 else ""
            tag = " ← LAA" if i == 1 else ""
            rows.append(f"<tr data-agent='{esc(c.agent)}'{style}><td>{i}</td>"
                        f"<td>{esc(c.agent)}{tag}</td><td>{c.available_since}</td>"
                        f"<td>{age(self.now_ms - c.available_since)}</td></tr>")
        more = (f"<tr><td colspan=4>… {len(self.ranking) - SHOWN} more</td></tr>"
                if len(self.ranking) > SHOWN else "")
        self.ranking_html.value = (
            f"{head}<table class='acd-ranking' {attrs}><tr><th>#</th><th>agent</th>"
            "<th>score (available since, ms)</th><th>available for</th></tr>"
            + "".join(rows) + more + "</table>")

    def _render_result(self) -> None:
        if self.contact_id is None:
            self.result_html.value = ""
            return
        cid = esc(self.contact_id[:12])
        contact = self.contact
        if self.contact_gone or contact is None:
            facts, text = ("gone", "", ""), f"Contact <code>{cid}</code> no longer exists."
        elif contact.state is ContactState.QUEUED:
            key, words = self.reason or ("", "")
            facts = ("queued", "", key)
            text = f"⏳ Contact <code>{cid}</code> is <b>waiting</b>: {esc(words)}."
        elif contact.state is ContactState.ASSIGNED:
            facts = ("assigned", contact.agent or "", "")
            text = (f"✔ Contact <code>{cid}</code> was assigned to <b>{esc(contact.agent)}</b>"
                    f" {self._by_whom()} after {contact.wait_ms} ms: {self._verdict()}.")
        else:
            facts = (contact.state.value, contact.agent or "", "")
            handled = f" (handled by <b>{esc(contact.agent)}</b>)" if contact.agent else ""
            text = f"Contact <code>{cid}</code> is <b>{esc(contact.state.value)}</b>{handled}."
        state, agent, reason = facts
        self.result_html.value = (
            f"<div class='acd-result' data-contact='{esc(self.contact_id)}' data-state="
            f"'{esc(state)}' data-agent='{esc(agent)}' data-reason='{esc(reason)}'>"
            f"{text}</div>")

    def _by_whom(self) -> str:
        if self.assigned_by_me:
            return "by the dispatch round this composer ran"
        if self.mode is DispatchMode.AUTOMATIC:
            return "by the lab's dispatchers"
        return "by another client's dispatch call (manual mode)"

    def _verdict(self) -> str:
        assert self.contact is not None
        if self.contact.agent == self.predicted:
            return "the LAA, as predicted"
        return (f"≠ the ranking predicted {esc(self.predicted or 'nobody')}: the agents "
                "changed between the ranking and the dispatch")

    # -- enqueue --------------------------------------------------------------------------
    def request_enqueue(self) -> None:
        if not self.selected:
            self.notice_html.value = "<i>Choose at least one skill before enqueueing.</i>"
            return
        self.notice_html.value = ""
        self.spawn(self.enqueue())

    async def enqueue(self) -> Contact:
        """Queue a contact needing the selected skills; return it once assigned, or as it
        is when nobody is going to assign it (or after ``wait_s``)."""
        skills = self.selected
        if not skills:
            raise ValueError("choose at least one skill before enqueueing")
        await self.refresh()
        self.predicted = self.laa
        async with asyncio.timeout(self.call_timeout):
            contact = await self.center.create_contact(skills)
            self.contact_id, self.contact, self.contact_gone = contact.id, contact, False
            self.assigned_by_me, self.reason = False, None
            if self.dispatch_now.value:
                pairs = await self.center.dispatch()
                self.assigned_by_me = any(p.contact == contact.id for p in pairs)
        await self.reflect([{"type": "contact_queued", "contact": contact.id}])
        deadline = time.monotonic() + self.wait_s
        # Wait only for an assignment that is on its way (a dispatcher and an agent exist).
        while (self.contact is not None and self.contact.state is ContactState.QUEUED
               and self.reason is not None and self.reason[0] == "dispatching"
               and time.monotonic() < deadline and self.contact_id == contact.id):
            await asyncio.sleep(0.01)
            await self.reflect([{"type": "contact_queued", "contact": contact.id}])
        return self.contact if self.contact is not None else contact

    async def wait_assigned(self, contact_id: str) -> Contact:
        """The contact once assigned, or as it is after ``wait_s`` seconds."""
        deadline = time.monotonic() + self.wait_s
        while True:
            contact = await self.center.get_contact(contact_id)
            if contact.state is not ContactState.QUEUED or time.monotonic() >= deadline:
                return contact
            await asyncio.sleep(0.05)

    # -- comparable views -----------------------------------------------------------
    def displayed(self) -> dict[str, Any]:
        """What the composer shows now, read back from its widgets."""
        def attr(text: str, name: str) -> str | None:
            found = re.search(rf"data-{name}='([^']*)'", text)
            return html.unescape(found.group(1)) if found else None

        ranking_for = attr(self.ranking_html.value, "skills")
        count = attr(self.ranking_html.value, "count")
        result = self.result_html.value
        return {
            "following": self.following,
            "mode": attr(self.mode_html.value, "mode"),
            "dispatchers": attr(self.mode_html.value, "dispatchers"),
            "skills": self.selected,
            "ranking_for": ranking_for.split(",") if ranking_for else [],
            "ranking": [html.unescape(a) for a in
                        re.findall(r"<tr data-agent='([^']*)'", self.ranking_html.value)],
            "count": int(count) if count else 0,
            "contact": None if attr(result, "contact") is None else {
                k: attr(result, k) for k in ("contact", "state", "agent", "reason")},
        }

    async def from_redis(self) -> dict[str, Any]:
        """What the composer must show for its selection and its last contact, from Redis."""
        c = self.center
        skills = self.selected
        ranking = await c.candidates(skills) if skills else []
        mode = await c.dispatch_mode()
        dispatchers = await dispatchers_connected(c.redis)
        contact: dict[str, Any] | None = None
        if self.contact_id is not None:
            contact = {"contact": self.contact_id, "state": "gone", "agent": "", "reason": ""}
            try:
                found = await c.get_contact(self.contact_id)
            except NotFound:
                found = None
            if found is not None:
                reason = ""
                if found.state is ContactState.QUEUED:
                    qualified = bool(await c.candidates(found.skills))
                    reason = waiting_reason(mode, dispatchers, qualified)[0]
                contact.update(state=found.state.value, agent=found.agent or "", reason=reason)
        return {"following": True, "mode": mode.value,
                "dispatchers": "unknown" if dispatchers is None else str(dispatchers),
                "skills": skills, "ranking_for": skills,
                "ranking": [x.agent for x in ranking[:SHOWN]], "count": len(ranking),
                "contact": contact}
