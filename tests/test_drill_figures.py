"""The drill's figures, computed once for every probe, on hand-made attempts and items:
the outage (event -> first success after the last failure), failures by kind, loss
(acknowledged but gone), the longest wait for an acknowledgement, and when clients count as
recovered. No lab needed."""

from __future__ import annotations

from lab.drill import Attempt, Sent, figures
from lab.drill.figures import recovered_since
from lab.drill.report import DrillReport, EventResult


def ok(start: float, end: float) -> Attempt:
    return Attempt(start, end, False, "ok")


def failed(start: float, end: float, kind: str = "ConnectError") -> Attempt:
    return Attempt(start, end, True, kind)


def test_no_failure_no_outage() -> None:
    f = figures([ok(10.0, 10.1), ok(11.0, 11.2)], [], set(), start=10.0, end=20.0)
    assert (f.outage_s, f.attempts, f.failed, f.recovered) == (0.0, 2, 0, True)


def test_outage_runs_from_the_event_to_the_first_success_after_the_last_failure() -> None:
    attempts = [
        ok(9.0, 9.1),  # before the event: another phase
        ok(10.1, 10.2),  # the event at 10.0 is not seen at once
        failed(10.5, 11.5),
        ok(11.6, 11.7),  # a success between failures does not end the outage
        failed(12.0, 12.5, "HTTP 503"),
        failed(12.6, 12.7, "HTTP 503"),
        ok(12.8, 13.25),  # the first success after the last failure
        ok(13.3, 13.4),
        failed(30.0, 30.5),  # the next phase's
    ]
    f = figures(attempts, [], set(), start=10.0, end=20.0)
    assert f.outage_s == 3.25
    assert f.attempts == 7 and f.failed == 3
    assert f.error_kinds == {"ConnectError": 1, "HTTP 503": 2}
    assert f.recovered


def test_no_success_after_the_last_failure_is_not_recovered() -> None:
    f = figures([ok(10.1, 10.2), failed(11.0, 12.0), failed(12.5, 14.0)], [], set(),
                start=10.0, end=20.0)
    assert not f.recovered and f.outage_s == 4.0


def test_loss_counts_acknowledged_items_missing_at_the_end() -> None:
    sent = [
        Sent("a", 10.0, 10.1),
        Sent("b", 10.5, 12.0),  # acknowledged after retries: waited 1.5 s
        Sent("c", 11.0, 11.1),  # acknowledged, then lost
        Sent("d", 11.5, None),  # never acknowledged: not offered, so not lost
        Sent("e", 25.0, 25.1),  # the next phase's
    ]
    f = figures([], sent, kept={"a", "b", "d", "e"}, start=10.0, end=20.0)
    assert (f.acknowledged, f.kept, f.lost) == (3, 2, 1)
    assert f.max_ack_wait_s == 1.5


def test_recovered_since_wants_a_success_and_settle_seconds_without_failure() -> None:
    attempts = [failed(10.2, 10.4), ok(10.5, 10.6), ok(11.0, 11.1)]
    assert not recovered_since(attempts, since=10.0, settle_s=2.0, now=11.5)  # too early
    assert not recovered_since(attempts, since=10.0, settle_s=2.0, now=12.3)  # failed at 10.4
    assert recovered_since(attempts, since=10.0, settle_s=2.0, now=12.5)
    assert recovered_since(attempts, since=10.55, settle_s=0.1, now=20.0)
    assert not recovered_since([failed(10.2, 10.4)], since=10.0, settle_s=2.0, now=20.0)


def test_the_report_keeps_notebook_08s_names_and_adds_the_writes() -> None:
    contacts = figures([failed(10.5, 11.0, "HTTP 503"), ok(11.5, 12.0)],
                       [Sent("c1", 10.5, 12.0)], {"c1"}, start=10.0, end=20.0)
    writes = figures([failed(10.1, 10.6), ok(10.7, 10.8)], [Sent("1", 10.7, 10.8)], set(),
                     start=10.0, end=20.0)
    report = DrillReport(center="drill-x", rate=10, agents=2, write_rate=200,
                         events=[EventResult("kill -9 primary re1", "promoted", contacts,
                                             writes)],
                         duplicates=0, unacked_created=0, components_survived=True,
                         components={}, final_roles={}, vip_holder="lb2")
    event = report.to_dict()["events"][0]
    assert {k: event[k] for k in ("outage_s", "offered", "assigned", "lost", "client_errors",
                                  "max_post_s")} == {"outage_s": 2.0, "offered": 1,
                                                     "assigned": 1, "lost": 0,
                                                     "client_errors": 1, "max_post_s": 1.5}
    assert event["error_kinds"] == {"HTTP 503": 1}
    assert event["writes"]["lost"] == 1 and event["writes"]["outage_s"] == 0.8
    assert report.lost == 1 and not report.ok  # a lost write fails the drill too
    assert report.table().row_count == 1
