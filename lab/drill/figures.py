"""What a probe of the drill records, and the figures computed from it: once, the same way
for every probe (contacts through the REST API, writes straight to Redis).

A probe records every attempt as its client saw it (:class:`Attempt`; a call retried three
times is three attempts) and every item it tried to store (:class:`Sent`; a contact, a
write), acknowledged or not. After the drill it reads back which items are still there.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Attempt:
    start: float  # time.monotonic()
    end: float
    failed: bool  # no answer, or one that means "not now" (HTTP 5xx): the client retries
    kind: str  # "ok", "HTTP 503", "ConnectError", ...


@dataclass
class Sent:
    """An item a client tried to store: a contact, a write."""

    key: str
    first_try: float  # time.monotonic()
    acked_at: float | None = None  # when the store acknowledged it (None: never)


@dataclass(frozen=True)
class Figures:
    """What one probe saw during one phase of the drill."""

    outage_s: float  # from the event until clients succeed again: the first success after
    #                  the last failed attempt of the phase (0: no attempt failed)
    attempts: int
    failed: int  # failed attempts (each one retried)
    error_kinds: dict[str, int]
    acknowledged: int  # items first tried in this phase that the store acknowledged
    kept: int  # of those, still there at the end
    lost: int  # acknowledged - kept: must be 0
    max_ack_wait_s: float  # longest from an item's first try to its acknowledgement
    recovered: bool  # an attempt succeeded after the last failed one


def figures(attempts: Sequence[Attempt], sent: Iterable[Sent], kept: Collection[str],
            start: float, end: float) -> Figures:
    """The figures of the phase from ``start`` (its event) to ``end`` (the next one)."""
    window = [a for a in attempts if start <= a.start < end]
    failed = [a for a in window if a.failed]
    outage, recovered = 0.0, True
    if failed:
        last = max(a.start for a in failed)
        after = [a.end for a in window if not a.failed and a.start >= last]
        recovered = bool(after)
        outage = (min(after) if after else max(a.end for a in window)) - start
    acked = [s for s in sent if start <= s.first_try < end and s.acked_at is not None]
    kept_count = sum(1 for s in acked if s.key in kept)
    waits = [s.acked_at - s.first_try for s in acked if s.acked_at is not None]
    return Figures(
        outage_s=round(outage, 2),
        attempts=len(window),
        failed=len(failed),
        error_kinds=dict(Counter(a.kind for a in failed)),
        acknowledged=len(acked),
        kept=kept_count,
        lost=len(acked) - kept_count,
        max_ack_wait_s=round(max(waits, default=0.0), 2),
        recovered=recovered,
    )


def recovered_since(attempts: Sequence[Attempt], since: float, settle_s: float,
                    now: float) -> bool:
    """An attempt started after ``since`` succeeded, none failed in the last ``settle_s``,
    and ``settle_s`` passed since ``since``."""
    recent = [a for a in attempts[-5000:] if a.end >= since]
    if any(a.failed and a.end > now - settle_s for a in recent):
        return False
    return any(not a.failed and a.start >= since for a in recent) and now - since >= settle_s
