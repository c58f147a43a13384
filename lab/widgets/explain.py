"""Why did this contact go to that agent? Pick an assigned contact, see the explanation
the dispatch round recorded (acd.explanation): the candidates ranked with their scores
then, the winner, the key that decided, and the contacts it was served before.

The contact list is the center's latest assignments (its events stream, newest first);
"refresh" reads it again. A choice made in the browser is handled on the widget's own
loop (``_base``), like every lab widget's.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import ipywidgets as w  # type: ignore[import-untyped]

from acd import Center, NotFound
from acd.explanation import Explanation
from lab.widgets._base import OwnerLoopState, TaskRunner, data_attrs, error_html, esc

LOOK_BACK = 500  # events read back for the contact list


class LoopDropdown(OwnerLoopState, w.Dropdown):  # type: ignore[misc]
    """A Dropdown whose choices in the browser apply on the owner loop."""

    def __init__(self, owner: TaskRunner, on_pick: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._owner = owner
        self._on_user = lambda data, _seen: on_pick() if "index" in data else None


def clock(ms: float) -> str:
    """A server time in ms as a reader compares it (UTC, to the ms), the raw value on hover:
    thirteen-digit epochs side by side hide which came first."""
    at = datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%H:%M:%S.%f")[:-3]
    return f"<span title='{ms:.0f} ms'>{at}</span>"


def candidates_table(e: Explanation) -> str:
    fewest = any(c.skills is not None for c in e.candidates)
    head = ["rank", "agent", "available since (UTC)", *(["skills"] if fewest else []), "score"]
    rows = ["<tr>" + "".join(f"<th style='padding:2px 8px'>{h}</th>" for h in head) + "</tr>"]
    for c in e.candidates:
        style = " style='background:#e6f4ea;font-weight:bold'" if c.rank == 1 else ""
        cells = [str(c.rank), f"<span data-candidate='{esc(c.agent)}'>{esc(c.agent)}</span>"
                 + (" ← winner" if c.rank == 1 else ""), clock(c.available_since),
                 *([str(c.skills)] if fewest else []), f"{c.score:.0f}"]
        rows.append(f"<tr{style}>" + "".join(f"<td style='padding:2px 8px'>{x}</td>"
                                             for x in cells) + "</tr>")
    return f"<table>{''.join(rows)}</table>"


def render(e: Explanation) -> str:
    before = "".join(
        f"<li>{esc(h.contact or 'the oldest')} of <code>{esc(h.combination)}</code> at "
        f"{clock(h.virtual_arrival)}{' <b>(arrived earlier: overtaken)</b>' if h.overtaken else ''}"
        "</li>" for h in e.served_before) or "<li><i>none read by the round</i></li>"
    return (
        f"<div data-explained='{esc(e.contact)}' data-agent='{esc(e.agent)}' "
        f"data-decided='{esc(e.decided_by.value)}' data-order='{esc(e.order.value)}'>"
        f"<p>{esc(e.summary)}</p>"
        f"<p><b>Why now</b>: <code>{esc(e.order.value)}</code> · queued at {clock(e.queued_at)} "
        f"UTC, priority {e.priority}, head start {e.head_start_ms} ms, virtual arrival "
        f"{clock(e.virtual_arrival)}. Served before:</p><ul>{before}</ul>"
        f"<p><b>Why {esc(e.agent)}</b>: rule <code>{esc(e.rule)}</code>, decided by "
        f"<code>{esc(e.decided_by.value)}</code> · {e.qualified} qualified on the page the "
        f"walk chose from (it read {e.walked[2]} of the {e.walked[1]} agents with "
        f"<code>{esc(e.walked[0])}</code>)</p>{candidates_table(e)}</div>")


class ExplanationView(TaskRunner):
    """``view = await ExplanationView.create(center); view`` - then pick a contact."""

    def __init__(self, center: Center) -> None:
        super().__init__()
        self.center = center
        self.shown: Explanation | None = None
        self.picker = LoopDropdown(self, self._picked, description="contact",
                                   options=[], layout=w.Layout(width="420px"))
        self.refresh_button = self.button(self._refresh_now, description="refresh",
                                          icon="refresh")
        self.body = w.HTML("<i>pick an assigned contact</i>")
        self.status = w.HTML()
        self.widget = w.VBox([w.HBox([self.picker, self.refresh_button]), self.body,
                              self.status])

    @classmethod
    async def create(cls, center: Center, contact: str | None = None) -> ExplanationView:
        view = cls(center)
        await view.refresh()
        if contact is not None:
            await view.show(contact)
        return view

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def on_error(self, exc: BaseException) -> None:
        self.status.value = error_html(exc)

    async def assigned(self) -> list[tuple[str, str]]:
        """(contact, agent) of the latest assignments, newest first."""
        events = await self.center.latest_events(LOOK_BACK)
        found = [(e.fields.get("contact", "?"), e.fields.get("agent", "?"))
                 for e in events if e.type == "contact_assigned"]
        return list(reversed(found))

    async def refresh(self) -> None:
        """Read the latest assignments into the list; the shown contact stays chosen."""
        pairs = await self.assigned()
        keep = self.picker.value
        self.picker.options = [(f"{c} → {a}", c) for c, a in pairs]
        if keep in {c for c, _ in pairs}:
            self.picker.value = keep

    def _refresh_now(self) -> None:
        self.spawn(self.refresh())

    def _picked(self) -> None:
        if self.picker.value:
            self.spawn(self.show(self.picker.value))

    async def show(self, contact: str) -> None:
        """Show the contact's explanation (or why there is none)."""
        started = time.monotonic()
        try:
            e = await self.center.explanation(contact)
        except NotFound as exc:
            self.shown = None
            self.body.value = f"<p data-explained=''>{esc(exc)}</p>"
            return
        self.shown = e
        if contact in [value for _, value in self.picker.options]:
            self.picker.value = contact
        self.body.value = render(e)
        self.status.value = f"<small>read in {1000 * (time.monotonic() - started):.1f} ms</small>"

    def pick(self, contact: str) -> None:
        """What choosing ``contact`` in the browser sends (for tests and notebooks)."""
        index = [value for _, value in self.picker.options].index(contact)
        self.picker.set_state({"index": index})

    # -- comparable views -----------------------------------------------------------
    def displayed(self) -> dict[str, Any]:
        def attrs(name: str) -> list[str]:
            return data_attrs(self.body.value, name)

        def first(name: str) -> str | None:
            found = attrs(name)
            return found[0] if found else None

        return {"contact": first("explained"), "agent": first("agent"),
                "decided_by": first("decided"), "candidates": attrs("candidate")}

    async def from_redis(self) -> dict[str, Any]:
        contact = self.displayed()["contact"]
        if not contact:
            return self.displayed()
        e = await self.center.explanation(contact)
        return {"contact": e.contact, "agent": e.agent, "decided_by": e.decided_by.value,
                "candidates": [c.agent for c in e.candidates]}
