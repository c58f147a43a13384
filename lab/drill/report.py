"""The drill's report: per event, the figures of each probe (contacts through the API,
writes straight to Redis), and what the end of the drill found."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rich.table import Table

from .figures import Figures


@dataclass
class EventResult:
    event: str
    detail: str  # what happened (the VIP moved from lb1 to lb2, ...)
    contacts: Figures | None  # None: the drill ran without the contacts probe
    writes: Figures | None  # None: without the raw-writer probe

    def to_dict(self) -> dict[str, Any]:
        """The contacts' figures under the names notebook 08 uses (offered, assigned, lost,
        client_errors, max_post_s), the writes' figures under "writes"."""
        data: dict[str, Any] = {"event": self.event, "detail": self.detail}
        if self.contacts is not None:
            c = self.contacts
            data.update(outage_s=c.outage_s, offered=c.acknowledged, assigned=c.kept,
                        lost=c.lost, client_errors=c.failed, error_kinds=c.error_kinds,
                        max_post_s=c.max_ack_wait_s)
        data["writes"] = asdict(self.writes) if self.writes is not None else None
        return data


@dataclass
class DrillReport:
    center: str
    rate: float  # contacts offered per second
    agents: int
    write_rate: float  # raw writes per second
    events: list[EventResult]
    duplicates: int  # contacts created twice, or by nobody
    unacked_created: int  # contacts a caller gave up on that exist anyway (not offered)
    components_survived: bool
    components: dict[str, str]  # API replicas and dispatchers: survived or not
    final_roles: dict[str, str]
    vip_holder: str | None
    notes: list[str] = field(default_factory=list)  # why callers gave up (first 10)
    violations: list[str] = field(default_factory=list)  # acd.invariants at the end
    write_errors: list[str] = field(default_factory=list)  # the writer's first errors

    @property
    def lost(self) -> int:
        """Acknowledged contacts and writes missing at the end: must be 0."""
        return sum(f.lost for e in self.events for f in (e.contacts, e.writes) if f)

    @property
    def ok(self) -> bool:
        return (self.lost == 0 and self.duplicates == 0 and self.components_survived
                and not self.violations)

    def to_dict(self) -> dict[str, Any]:
        return {
            "center": self.center, "rate": self.rate, "agents": self.agents,
            "write_rate": self.write_rate, "events": [e.to_dict() for e in self.events],
            "duplicates": self.duplicates, "unacked_created": self.unacked_created,
            "components_survived": self.components_survived, "components": self.components,
            "final_roles": self.final_roles, "vip_holder": self.vip_holder,
            "notes": self.notes, "violations": self.violations,
            "write_errors": self.write_errors, "lost": self.lost, "ok": self.ok,
        }

    def table(self) -> Table:
        contacts = any(e.contacts for e in self.events)
        writes = any(e.writes for e in self.events)
        title = "Failover drill"
        if contacts:
            title += f" (center {self.center}, {self.rate:g} contacts/s, {self.agents} agents"
            title += f"; {self.write_rate:g} raw writes/s)" if writes else ")"
        elif writes:
            title += f" ({self.write_rate:g} raw writes/s through the VIP)"
        t = Table(title=title)
        t.add_column("event")
        if contacts:
            for col in ("API outage s", "offered", "assigned", "lost", "client errors",
                        "max POST wait s"):
                t.add_column(col, justify="left" if col == "client errors" else "right")
        if writes:
            for col in ("Redis outage s", "writes acked", "writes lost", "failed writes"):
                t.add_column(col, justify="right")
        for e in self.events:
            row = [e.event]
            if e.contacts is not None:
                c = e.contacts
                kinds = ", ".join(f"{k} x{n}" for k, n in sorted(c.error_kinds.items()))
                row += [f"{c.outage_s:.2f}", str(c.acknowledged), str(c.kept), str(c.lost),
                        f"{c.failed} ({kinds})" if c.failed else "0", f"{c.max_ack_wait_s:.2f}"]
            if e.writes is not None:
                w = e.writes
                row += [f"{w.outage_s:.2f}", str(w.acknowledged), str(w.lost), str(w.failed)]
            t.add_row(*row)
        broken = f"BROKEN ({self.violations[0]} ...)" if self.violations else "kept"
        survived = "yes" if self.components_survived else "NO"
        parts = ", ".join(f"{k} {v}" for k, v in self.components.items())
        t.caption = (
            (f"duplicates {self.duplicates}; one contact per agent: {broken}; " if contacts
             else "")
            + f"components survived: {survived} ({parts or 'none ran'}); "
            f"roles now {self.final_roles}; VIP on {self.vip_holder}"
        )
        return t
