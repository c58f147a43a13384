"""The failover drill: clients keep working while the HA lab fails, and nothing they were
told is stored gets lost.

``python -m lab.drill [--json]`` (the HA lab must be up: ``./start.sh --ha``), or from a
notebook::

    from lab.drill import run
    report = run()                  # about a minute
    report.table()                  # a rich Table; report.to_dict() for the figures

Two probes run through the VIP while the drill fails the lab on purpose, event by event:

1. ``stop lb1``: keepalived and HAProxy of the balancer holding the VIP stop; the VIP moves.
2. ``kill -9 primary``: Sentinel promotes a replica, HAProxy's checks follow it.
3. ``bring back``: the balancer starts again (as backup: nopreempt), the old primary
   restarts from its own (Sentinel-rewritten) config and rejoins as a replica.

*Contacts* (lab.drill.contacts, through the REST API :8000): agents, and callers posting
contacts at a steady rate with their own ids, each call retried with backoff; a caller
polls its contact until it is assigned, holds it, completes it. *Writes*
(lab.drill.writes, straight to Redis :12000, no API): sequence numbers pushed to a list,
one at a time, no retry. The probes record every attempt as their clients see it; after
each event the drill waits until the lab reached its new state and every probe's clients
succeed again.

The lab's supervisor (``./start.sh --ha`` starts one) holds off while the drill runs
(lab.supervisor.holding): the drill brings back what it failed itself, and the outage it
measures is Sentinel's, keepalived's and the clients', not a restart's.

For each event and probe (lab.drill.figures, computed once for both): the outage (from the
event until clients succeed again), the attempts that failed, by kind, the items
acknowledged (contacts offered: a 2xx; writes: Redis replied), how many of those are still
there at the end and how many were lost (must be 0), the longest wait for an
acknowledgement. At the end the contacts are checked in Redis directly: the center's
``offered`` counter tells whether any contact was created twice, and acd.invariants
whether an agent got two contacts. ``--no-contacts`` drills the bare topology of
``python -m lab.ha start`` (no API) with the writes alone: that is ``python -m lab.ha drill``.
"""

from .figures import Attempt, Figures, Sent, figures
from .report import DrillReport, EventResult
from .runner import SETTLE_S, Step, arun, run, standard_steps

__all__ = [
    "SETTLE_S",
    "Attempt",
    "DrillReport",
    "EventResult",
    "Figures",
    "Sent",
    "Step",
    "arun",
    "figures",
    "run",
    "standard_steps",
]
