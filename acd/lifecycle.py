"""The contact and agent lifecycle, written down once: every transition, the Redis Function
of acd/lua/ that makes it, and the event it appends to the center's stream.

tests/test_lifecycle.py makes each transition happen on a real Redis and checks the table
against what the function did and emitted; README's state diagram is ``mermaid()``'s
output (``python -m acd.lifecycle`` prints it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from acd.models import AgentState, ContactState

NEW = "[*]"  # before the document exists, or after it is deleted


@dataclass(frozen=True)
class Transition:
    of: Literal["agent", "contact"]
    source: str  # a state's value, or NEW
    target: str
    function: str  # the Redis Function that makes it
    event: str  # the event type it emits
    when: str  # what makes it happen, in words


A, C = AgentState, ContactState

TRANSITIONS: tuple[Transition, ...] = (
    Transition("agent", NEW, A.UNAVAILABLE, "acd_agent_create", "agent_created", "created"),
    Transition("agent", A.UNAVAILABLE, A.AVAILABLE, "acd_agent_state", "agent_state",
               "set available (or the center opens: acd_center_state)"),
    Transition("agent", A.AVAILABLE, A.UNAVAILABLE, "acd_agent_state", "agent_state",
               "set unavailable (or the center closes: acd_center_state)"),
    Transition("agent", A.AVAILABLE, A.BUSY, "acd_dispatch", "contact_assigned",
               "a dispatch round gives it a contact"),
    Transition("agent", A.BUSY, A.BUSY, "acd_agent_state", "agent_next_state",
               "set unavailable: next_state, applied when the contact ends; set available "
               "cancels it"),
    Transition("agent", A.BUSY, A.AVAILABLE, "acd_contact_end", "agent_state",
               "its contact is completed"),
    Transition("agent", A.BUSY, A.UNAVAILABLE, "acd_contact_end", "agent_state",
               "its contact is completed while next_state is unavailable"),
    Transition("agent", A.BUSY, A.AVAILABLE, "acd_repair_agent", "agent_state",
               "the reconciler finds its contact gone, ended or another agent's"),
    # Wrap-up (acd.wrap_up): only with a center's wrap-up time.
    Transition("agent", A.BUSY, A.WRAP_UP, "acd_contact_end", "wrap_up_started",
               "its contact is completed and the center has a wrap-up time"),
    Transition("agent", A.WRAP_UP, A.WRAP_UP, "acd_agent_state", "agent_next_state",
               "set unavailable: next_state, applied when the wrap-up ends; set available "
               "cancels it"),
    Transition("agent", A.WRAP_UP, A.AVAILABLE, "acd_dispatch", "wrap_up_ended",
               "its wrap-up time is over: any dispatcher's next round ends it"),
    Transition("agent", A.WRAP_UP, A.UNAVAILABLE, "acd_dispatch", "wrap_up_ended",
               "its wrap-up time is over while next_state is unavailable"),
    Transition("agent", A.WRAP_UP, A.AVAILABLE, "acd_wrap_up_end", "wrap_up_ended",
               "ended now (POST .../agents/{id}/wrap-up/end)"),
    Transition("agent", A.WRAP_UP, A.UNAVAILABLE, "acd_wrap_up_end", "wrap_up_ended",
               "ended now while next_state is unavailable"),
    Transition("agent", A.WRAP_UP, A.AVAILABLE, "acd_wrap_up_release", "wrap_up_ended",
               "its wrap-up time is over: the reconciler ends it (no dispatcher ran)"),
    # Breaks and logging out (acd/lua/03_agent_states.lua, "Agent states"): a break is
    # unavailable with a reason.
    Transition("agent", A.UNAVAILABLE, A.UNAVAILABLE, "acd_agent_state", "agent_state",
               "a break starts (unavailable with a reason code) or its reason changes"),
    Transition("agent", A.AVAILABLE, A.LOGGED_OUT, "acd_agent_state", "agent_state",
               "logs out (opening or closing the center leaves it so)"),
    Transition("agent", A.UNAVAILABLE, A.LOGGED_OUT, "acd_agent_state", "agent_state",
               "logs out"),
    Transition("agent", A.LOGGED_OUT, A.AVAILABLE, "acd_agent_state", "agent_state",
               "logs in, available"),
    Transition("agent", A.LOGGED_OUT, A.UNAVAILABLE, "acd_agent_state", "agent_state",
               "logs in, unavailable (or on a break)"),
    Transition("agent", A.BUSY, A.LOGGED_OUT, "acd_contact_end", "agent_state",
               "its contact is completed while next_state is logged_out"),
    Transition("agent", A.WRAP_UP, A.LOGGED_OUT, "acd_wrap_up_end", "wrap_up_ended",
               "its wrap-up is ended while next_state is logged_out"),
    Transition("agent", A.LOGGED_OUT, NEW, "acd_agent_delete", "agent_deleted", "deleted"),
    # Offers (acd.offers): only with a center's offer timeout.
    Transition("agent", A.AVAILABLE, A.OFFERED, "acd_dispatch", "contact_offered",
               "a dispatch round offers it a contact (offers on)"),
    Transition("agent", A.OFFERED, A.BUSY, "acd_offer_answer", "offer_accepted", "accepts"),
    Transition("agent", A.OFFERED, A.AVAILABLE, "acd_offer_answer", "offer_rejected",
               "rejects (not offered that contact again for the back-off)"),
    Transition("agent", A.OFFERED, A.UNAVAILABLE, "acd_offer_answer", "offer_rejected",
               "rejects one offer too many in a row: a break (missed_offers)"),
    Transition("agent", A.OFFERED, A.AVAILABLE, "acd_dispatch", "offer_timed_out",
               "lets the deadline pass: any dispatcher's next round expires the offer"),
    Transition("agent", A.OFFERED, A.AVAILABLE, "acd_offer_release", "offer_timed_out",
               "lets the deadline pass: the reconciler expires it (no dispatcher ran)"),
    Transition("agent", A.OFFERED, A.AVAILABLE, "acd_contact_end", "offer_withdrawn",
               "the contact hangs up before the answer"),
    Transition("agent", A.OFFERED, A.OFFERED, "acd_agent_state", "agent_next_state",
               "set unavailable or logged_out: applied when the offer ends"),
    Transition("agent", A.OFFERED, A.AVAILABLE, "acd_repair_agent", "agent_state",
               "the reconciler finds its offered contact gone"),
    Transition("agent", A.UNAVAILABLE, NEW, "acd_agent_delete", "agent_deleted", "deleted"),
    Transition("agent", A.AVAILABLE, NEW, "acd_agent_delete", "agent_deleted",
               "deleted (a busy agent cannot be)"),
    Transition("agent", A.WRAP_UP, NEW, "acd_agent_delete", "agent_deleted",
               "deleted during its wrap-up"),
    Transition("contact", NEW, C.QUEUED, "acd_contact_create", "contact_queued", "created"),
    Transition("contact", C.QUEUED, C.ASSIGNED, "acd_dispatch", "contact_assigned",
               "a dispatch round gives it the longest available qualified agent"),
    Transition("contact", C.QUEUED, C.ABANDONED, "acd_contact_end", "contact_abandoned",
               "the caller hangs up (abandon, or complete while queued)"),
    Transition("contact", C.QUEUED, C.ABANDONED, "acd_skill_delete", "contact_abandoned",
               "a skill it needs is deleted with force (nobody could serve it)"),
    Transition("contact", C.QUEUED, C.ABANDONED, "acd_center_delete", "contact_abandoned",
               "its center is deleted (DELETE /v1/centers/{center})"),
    # Steps by waiting time (acd.steps): only for a contact that has a close step.
    Transition("contact", C.QUEUED, C.CLOSED, "acd_dispatch", "contact_closed",
               "it waited its step's after_s (its maximum wait): any dispatcher's next "
               "round closes it, with the step's reason"),
    Transition("contact", C.QUEUED, C.CLOSED, "acd_steps_release", "contact_closed",
               "the same, when the reconciler takes the due steps (no dispatcher ran)"),
    Transition("contact", C.QUEUED, C.OFFERED, "acd_dispatch", "contact_offered",
               "a dispatch round offers it to an agent (offers on)"),
    Transition("contact", C.OFFERED, C.ASSIGNED, "acd_offer_answer", "offer_accepted",
               "the agent accepts"),
    Transition("contact", C.OFFERED, C.QUEUED, "acd_offer_answer", "offer_rejected",
               "the agent rejects: back at its place (its age kept)"),
    Transition("contact", C.OFFERED, C.QUEUED, "acd_dispatch", "offer_timed_out",
               "the deadline passes: back at its place"),
    Transition("contact", C.OFFERED, C.ABANDONED, "acd_contact_end", "contact_abandoned",
               "the caller hangs up before the answer"),
    Transition("contact", C.OFFERED, C.QUEUED, "acd_repair_contact", "contact_requeued",
               "the reconciler finds its agent not offered it: back at its place"),
    Transition("contact", C.ASSIGNED, C.COMPLETED, "acd_contact_end", "contact_completed",
               "completed"),
    Transition("contact", C.ASSIGNED, C.QUEUED, "acd_repair_contact", "contact_requeued",
               "the reconciler finds its agent not on it: it waits again, at its place"),
)

# Events that change no lifecycle state: what they record happens beside it.
OTHER_EVENTS = frozenset({"agent_updated", "agent_skill", "skill_deleted", "center_state",
                          "dispatch_mode", "priority_ms", "center_deleting",
                          "agent_choice", "wrap_up_option", "agent_level",
                          "explain_option", "steps_default", "offers_option",
                          # a step by waiting time changed what a waiting contact needs:
                          "contact_relaxed", "contact_overflowed", "contact_step_skipped"})


def transitions(of: Literal["agent", "contact"]) -> list[Transition]:
    return [t for t in TRANSITIONS if t.of == of]


def mermaid() -> str:
    """The state diagram of both lifecycles (Mermaid stateDiagram-v2), labelled with the
    function and the event of each transition."""
    lines = ["stateDiagram-v2", "  direction LR"]
    for of in ("agent", "contact"):
        lines.append(f"  state \"{of}\" as {of} {{")
        for t in transitions(of):
            source = t.source if t.source == NEW else f"{of}_{t.source}"
            target = t.target if t.target == NEW else f"{of}_{t.target}"
            lines.append(f"    {source} --> {target}: {t.function} / {t.event}")
        for state in (AgentState if of == "agent" else ContactState):
            lines.append(f"    {of}_{state.value}: {state.value}")
        lines.append("  }")
    return "\n".join(lines)


if __name__ == "__main__":
    print(mermaid())
