"""Offers (issue 14): a center setting, off by default, that makes dispatch rounds offer a
contact to an agent instead of assigning it.

With offers on, a round reserves the agent and the contact for each other (both
``offered``) until the agent accepts (then it is an assignment, as a round makes one),
rejects, or lets the offer's deadline pass. A missed offer (rejected or timed out) puts
the contact back at its place (it keeps its age), makes the agent available again and
keeps it from being offered that contact for the back-off; after ``max_misses`` missed
offers in a row the agent goes on a break (reason ``missed_offers``). The deadlines are
Redis's: every dispatch round first expires the offers that are due ("Offers" in
acd/lua/05_offers.lua), so no client needs to be alive. :class:`CenterOffers` is part of
:class:`acd.center.Center`.
"""

from __future__ import annotations

from typing import Any, cast

from pydantic import BaseModel, Field

from acd.center_part import CenterPart
from acd.errors import InvalidInput
from acd.functions import fcall
from acd.keys import valid_name
from acd.models import Agent, StrictInput, whole_ms

MISSED_OFFERS = "missed_offers"
"""The break reason of an agent that missed too many offers in a row."""
MAX_OFFER_SECONDS = 600.0  # TaskRouter's default is 120 s; longer is not an offer
MAX_BACKOFF_SECONDS = 3600.0
MAX_MISSES = 100


class OfferSettings(BaseModel):
    """A center's offers: off when ``timeout_s`` is 0 (the default)."""

    timeout_s: float = Field(0.0, description="how long an agent has to answer an offer "
                             "(0: offers off, rounds assign at once)")
    max_misses: int = Field(0, description="missed offers in a row that put the agent on a "
                            "break (reason missed_offers); 0: never")
    backoff_s: float = Field(0.0, description="how long an agent is not offered a contact "
                             "again after missing it")


class OfferSettingsIn(StrictInput):
    """What PUT .../offers takes (every field; the range checks name the field)."""

    timeout_s: float = Field(ge=0, le=MAX_OFFER_SECONDS, allow_inf_nan=False)
    max_misses: int = Field(0, ge=0, le=MAX_MISSES)
    backoff_s: float = Field(0.0, ge=0, le=MAX_BACKOFF_SECONDS, allow_inf_nan=False)


class CenterOffers(CenterPart):
    """A center's offer setting and its agents' answers."""

    async def set_offers(self, timeout_s: float, max_misses: int = 0, backoff_s: float = 0
                         ) -> OfferSettings:
        """Turn offers on (``timeout_s`` > 0) or off (0); returns the previous settings.
        Offers under way keep their deadline."""
        timeout = whole_ms("timeout_s", timeout_s, MAX_OFFER_SECONDS)
        backoff = whole_ms("backoff_s", backoff_s, MAX_BACKOFF_SECONDS)
        if isinstance(max_misses, bool) or not isinstance(max_misses, int) or not (
                0 <= max_misses <= MAX_MISSES):
            raise InvalidInput(f"max_misses: {max_misses!r} is not a whole number from 0 to "
                               f"{MAX_MISSES}")
        await self.register()
        before = await fcall(self.redis, "acd_offers_set", [self.keys.meta],
                             [timeout, max_misses, backoff])
        ms, misses, back = (int(x) for x in before)
        return OfferSettings(timeout_s=ms / 1000, max_misses=misses, backoff_s=back / 1000)

    async def offer_settings(self) -> OfferSettings:
        ms, misses, back = await cast(Any, self.redis).hmget(
            self.keys.meta, ["offer_ms", "offer_misses", "offer_backoff_ms"])
        return OfferSettings(timeout_s=int(ms or 0) / 1000, max_misses=int(misses or 0),
                             backoff_s=int(back or 0) / 1000)

    async def accept_offer(self, agent_id: str, contact_id: str | None = None) -> Agent:
        """The agent accepts its offer (of ``contact_id``, if given): it is busy with the
        contact, now assigned. InvalidState when it has no such offer (it timed out, or
        was answered, just before)."""
        return await self._answer(agent_id, "accept", contact_id)

    async def reject_offer(self, agent_id: str, contact_id: str | None = None) -> Agent:
        """The agent rejects its offer: the contact goes back to its place, the agent is
        available (or on a break after too many misses in a row). InvalidState as for
        accept_offer."""
        return await self._answer(agent_id, "reject", contact_id)

    async def _answer(self, agent_id: str, answer: str, contact_id: str | None) -> Agent:
        expected = "" if contact_id is None else valid_name("contact id", contact_id)
        key = self.keys.agent(valid_name("agent id", agent_id))
        raw = await fcall(self.redis, "acd_offer_answer", [key], [agent_id, answer, expected])
        return Agent.model_validate_json(raw)

    async def release_offers(self) -> int:
        """Expire the offers (and end the exclusions) that are due, as each dispatch round
        does first, in calls of at most 25: for the reconciler, or a center no dispatcher
        serves. Returns how many."""
        total = 0
        while True:
            done, next_in = await fcall(self.redis, "acd_offer_release", [self.keys.meta], [])
            total += int(done)
            if int(next_in) != 0:
                return total

