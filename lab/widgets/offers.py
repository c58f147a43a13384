"""Offers (acd.offers) as an agent sees them: the offers pending now, each with its seconds
left, an Accept and a Reject button, each agent's misses in a row against the center's
limit, and the last offer events.

The offers come from the center's timers (the sorted set ``offers``, scored by the
deadline on the server's clock), never from a scan of the agents: the first
``TIMERS_READ`` timers (an offer's or a back-off's), the offers among them, at most
``ROWS`` shown, then one JSON.MGET of their contacts and one of their agents. The
countdown is the deadline minus the server's clock (one TIME per read), so it agrees
with the dispatcher that will time the offer out, whatever this machine's clock says.

It follows the center's events stream (``_follow``): an offer, an answer or a timeout
shows within milliseconds, and a quiet ``interval`` redraws too, because the seconds
left go down with no event. A click calls the package (``Center.accept_offer`` /
``reject_offer``) for the offer its row showed when the click arrived, with a timeout;
an offer gone meanwhile (it timed out, or was answered elsewhere) says so in the status
line. It stops by itself after ``max_seconds`` (a forgotten tab does not poll for ever).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import ipywidgets as w  # type: ignore[import-untyped]

from acd import Center
from acd.errors import ACDError
from acd.models import Agent, Contact
from acd.offers import MISSED_OFFERS, OfferSettings
from lab.widgets._base import data_attrs, esc
from lab.widgets._follow import Event, FollowingPanel

ROWS = 8  # offers shown at most (row widgets kept, rebound to other offers)
TIMERS_READ = 200  # first timers of the offers set read per redraw
EVENTS_SHOWN = 8
LOOK_BACK = 200  # events read back at the first start for the event list
OFFER_EVENTS = {"contact_offered", "offer_accepted", "offer_rejected", "offer_timed_out",
                "offer_withdrawn"}

Pending = tuple[str, str, int]  # (agent, contact, deadline ms on the server's clock)


def event_text(e: Event) -> str:
    """One offer event as a person reads it."""
    kind = e.get("type", "")
    agent, contact = esc(e.get("agent", "?")), esc(e.get("contact", "?"))
    said = {"contact_offered": f"{contact} offered to {agent}",
            "offer_accepted": f"{agent} accepted {contact}",
            "offer_rejected": f"{agent} rejected {contact}: back to its place",
            "offer_timed_out": f"{agent} let {contact} time out: back to its place",
            "offer_withdrawn": f"{contact} hung up while offered to {agent}"}.get(kind, kind)
    if e.get("reason") == MISSED_OFFERS:
        said += f" · <b>{agent} on a break ({MISSED_OFFERS})</b>"
    return f"<li data-event='{esc(kind)}'>{said}</li>"


def misses_text(agent: Agent, settings: OfferSettings) -> str:
    limit = f" of {settings.max_misses}" if settings.max_misses else ""
    onbreak = agent.reason == MISSED_OFFERS and agent.state.value == "unavailable"
    return (f"<span data-misses='{esc(agent.id)}|{agent.missed_offers or 0}'>"
            f"<b>{esc(agent.id)}</b> {agent.missed_offers or 0}{limit}"
            f"{' · on a break' if onbreak else ''}</span>")


class OfferRow:
    """The widgets of one offer row, bound to one offer at a time."""

    def __init__(self, board: OffersBoard) -> None:
        self.shown: tuple[str, str] | None = None  # (agent, contact) drawn in the row
        self.text = w.HTML(layout=w.Layout(width="460px"))
        # The row's offer is read when the click arrives (any thread; one attribute read),
        # so a row redrawn before the hand-off runs still answers the offer clicked.
        self.accept = w.Button(description="Accept", button_style="success", icon="check",
                               layout=w.Layout(width="100px"))
        self.reject = w.Button(description="Reject", button_style="danger", icon="times",
                               layout=w.Layout(width="100px"))
        self.accept.on_click(lambda _b: board.post(board.answer, self.shown, "accept",
                                                   intent=True))
        self.reject.on_click(lambda _b: board.post(board.answer, self.shown, "reject",
                                                   intent=True))
        self.box = w.HBox([self.text, self.accept, self.reject])

    def bind(self, offer: tuple[str, Contact, int] | None, now_ms: int) -> None:
        if offer is None:
            self.shown = None
            self.text.value = ""
            self.box.layout.display = "none"
            return
        agent, contact, until = offer
        cid = contact.id
        self.shown = (agent, cid)
        self.box.layout.display = None
        skills = " + ".join(
            f"{s} ≥ {contact.min_levels[s]}" if s in contact.min_levels else s
            for s in contact.skills)
        left = max(0.0, (until - now_ms) / 1000)
        self.text.value = (f"<span data-offer='{esc(agent)}|{esc(cid)}'><b>{esc(agent)}</b> ← "
                           f"<code>{esc(cid)}</code> ({esc(skills)}) · "
                           f"<b data-left='{left:.1f}'>{left:.1f} s</b> left</span>")


class OffersBoard(FollowingPanel):
    """``offers = OffersBoard(center); offers.start(); offers`` - answer the center's offers."""

    SNAPSHOT_TEXT = "a snapshot, not live"

    def __init__(self, center: Center, interval: float = 0.25,
                 max_seconds: float | None = 600.0) -> None:
        super().__init__(center, block_s=interval, max_seconds=max_seconds)
        self.settings = OfferSettings()
        self.pending: list[Pending] = []
        self.recent: deque[Event] = deque(maxlen=EVENTS_SHOWN)
        self.answers: list[tuple[str, str, str]] = []  # (answer, agent, contact) done
        self.refusals: list[ACDError] = []
        self.redraws = 0
        self.header = w.HTML()
        self.rows = [OfferRow(self) for _ in range(ROWS)]
        self.more = w.HTML()
        self.misses_html = w.HTML()
        self.events_html = w.HTML()
        self.answer_status = w.HTML()
        self.widget = w.VBox([
            w.HTML(f"<h4>Offers of center <code>{esc(center.name)}</code></h4>"),
            w.HBox([self.start_button, self.stop_button, self.header]),
            *[r.box for r in self.rows], self.more, self.misses_html, self.events_html,
            self.answer_status, self.status])
        for row in self.rows:
            row.bind(None, 0)
        self._show_following(False)

    # -- reading ------------------------------------------------------------------------
    async def read(self) -> tuple[OfferSettings, bool, list[tuple[str, int]], int]:
        """(settings, whether the center has settings at all, pending offers as (contact,
        deadline) soonest first - ROWS + 1 at most, to know there are more -, server ms)."""
        r, k = self.center.redis, self.center.keys
        now_ms = await self.center.server_ms()  # TIME on its own: no key, no cluster pipe
        async with r.pipeline(transaction=False) as pipe:
            pipe.exists(k.meta)
            pipe.zrange(k.offers, 0, TIMERS_READ - 1, withscores=True)
            exists, timers = await pipe.execute()
        settings = await self.center.offer_settings()
        pending: list[tuple[str, int]] = []
        for member, score in timers:
            name = member.decode() if isinstance(member, bytes) else str(member)
            if name.startswith("o|") and len(pending) <= ROWS:
                pending.append((name[2:], int(score)))
        return settings, bool(exists), pending, now_ms

    async def offers_now(self) -> tuple[OfferSettings, bool, list[tuple[str, Contact, int]],
                                        bool, list[Agent], int]:
        """Everything the board draws, read from Redis: settings, whether the center has
        any, the offers (agent, contact, deadline), whether there are more, the agents
        whose misses are shown (offered now, or named by a recent event), server ms."""
        settings, exists, timers, now_ms = await self.read()
        contacts = await self.center.get_contacts([c for c, _ in timers[:ROWS]])
        offers = [(c.agent or "?", c, until) for c, (_, until) in zip(contacts, timers,
                                                                       strict=False)
                  if c is not None and c.state.value == "offered"]
        ids = list(dict.fromkeys([a for a, _, _ in offers]
                                 + [e["agent"] for e in reversed(self.recent) if e.get("agent")]))
        agents = [a for a in await self.center.get_agents(ids) if a is not None]
        return settings, exists, offers, len(timers) > ROWS, agents, now_ms

    async def _on_start(self, tip: str) -> None:
        # Offer events before the widget started, up to the position it follows from.
        for e in await self.center.latest_events(LOOK_BACK, before=tip):
            if e.type in OFFER_EVENTS:
                self.recent.append(e.fields)

    async def _update(self, events: list[Event], full: bool) -> None:
        self.recent.extend(e for e in events if e.get("type") in OFFER_EVENTS)
        settings, exists, offers, more, agents, now_ms = await self.offers_now()
        self.settings = settings
        self.pending = [(a, c.id, until) for a, c, until in offers]
        self.redraws += 1
        self._draw(settings, exists, offers, more, agents, now_ms)

    def _draw(self, settings: OfferSettings, exists: bool,
              offers: list[tuple[str, Contact, int]], more: bool, agents: list[Agent],
              now_ms: int) -> None:
        limit = (f"a break after {settings.max_misses} misses in a row" if settings.max_misses
                 else "no break for misses")
        if settings.timeout_s:
            self.header.value = (
                f"&nbsp;<span data-offers='on'>offers <b>on</b>: {settings.timeout_s:g} s "
                f"to answer · {limit} · back-off {settings.backoff_s:g} s</span>")
        else:
            why = ("" if exists else f" (center <code>{esc(self.center.name)}</code> has "
                   "no settings: deleted, or never set up)")
            self.header.value = (
                "&nbsp;<span data-offers='off'>offers are <b>off</b> for this center"
                f"{why}: dispatch rounds assign at once. Turn them on with "
                "<code>await center.set_offers(timeout_s=5, max_misses=2)</code>.</span>")
        for i, row in enumerate(self.rows):
            row.bind(offers[i] if i < len(offers) else None, now_ms)
        self.more.value = ("<i>more offers pending than shown (the soonest deadlines "
                           "first)</i>" if more else
                           "" if offers else "<i>no offer pending</i>")
        self.misses_html.value = ("<b>Misses in a row</b> (a break at max_misses): " + " · ".join(
            misses_text(a, settings) for a in agents)) if agents else ""
        self.events_html.value = ("<b>Last offer events</b> (newest first)<ul>" + "".join(
            event_text(e) for e in reversed(self.recent)) + "</ul>") if self.recent else ""

    # -- answering ------------------------------------------------------------------------
    def answer(self, offer: tuple[str, str] | None, how: str) -> None:
        """Answer the offer a row showed (on the owner loop, from a click)."""
        if offer is not None:
            self.spawn(self._answer(*offer, how))

    async def _answer(self, agent: str, contact: str, how: str) -> None:
        call = self.center.accept_offer if how == "accept" else self.center.reject_offer
        try:
            async with asyncio.timeout(self.call_timeout):
                await call(agent, contact)
        except ACDError as exc:  # it timed out, or was answered, just before the click
            self.refusals.append(exc)
            self.answer_status.value = (f"<span data-answer='refused'>⚠ {esc(how)} "
                                        f"{esc(contact)}: {esc(exc)}</span>")
        else:
            self.answers.append((how, agent, contact))
            self.answer_status.value = (f"<span data-answer='{esc(how)}'>{esc(agent)} "
                                        f"{esc(how)}ed {esc(contact)}</span>")
        await self.reflect(full=True)

    def click(self, agent: str, how: str) -> None:
        """What clicking Accept or Reject on ``agent``'s row in the browser does."""
        row = next(r for r in self.rows if r.shown is not None and r.shown[0] == agent)
        (row.accept if how == "accept" else row.reject).click()

    # -- comparable views -----------------------------------------------------------
    def displayed(self) -> dict[str, Any]:
        """What the board shows (the seconds left, which change all the time, left out)."""
        offers_on = data_attrs(self.header.value, "offers")
        return {
            "following": data_attrs(self.status.value, "live") == ["1"],
            "offers": offers_on[0] if offers_on else None,
            "pending": [a for r in self.rows if r.shown is not None
                        for a in data_attrs(r.text.value, "offer")],
            "misses": data_attrs(self.misses_html.value, "misses"),
        }

    async def from_redis(self) -> dict[str, Any]:
        """What a following board must show, from Redis alone (and the events it read)."""
        settings, _, offers, _, agents, _ = await self.offers_now()
        return {
            "following": True, "offers": "on" if settings.timeout_s else "off",
            "pending": [f"{a}|{c.id}" for a, c, _ in offers],
            "misses": [f"{a.id}|{a.missed_offers or 0}" for a in agents],
        }
