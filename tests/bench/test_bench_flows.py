"""The many-centers and flood benchmarks, run short on a throw-away Redis each (their
dispatchers serve every registered center, or queue tens of thousands of contacts: not
on the shared test server): they finish, assign everything, and print every field the
issue's targets are judged by, with values that make sense together. Timing figures are
printed, not asserted (a shared machine's timing is not a test result)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lab.bench import centers, flood

pytestmark = pytest.mark.timeout(180)


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def check_longest_call(record: dict[str, Any]) -> None:
    """The SLOWLOG's longest FCALL and latencystats' p100 tell the same story."""
    p100, longest, over = (record["fcall_p100_us"], record["longest_fcall_us"],
                           record["slowlog_over_us"])
    assert p100 is not None and p100 > 0, record
    if longest is None:  # no call crossed the threshold: the histogram agrees
        assert p100 <= over * 1.02, record
    else:  # the histogram's buckets are about 1% wide
        assert abs(longest - p100) <= 0.02 * longest + 2, record
        assert str(record["longest_fcall"]).startswith("FCALL acd_"), record
    # Calls of 0.5 ms or more, by function: only the ACD's own, none longer than the longest.
    over_half = record["fcalls_over_half_ms"]
    assert all(name.startswith("acd_") and n > 0 for name, n in over_half.items()), record
    assert not over_half or (longest is not None and longest >= 500), record


def test_many_centers_short_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert centers.main(["--centers", "40", "--rate", "20", "--seconds", "4"]) == 0
    [r] = lines(capsys.readouterr().out)
    with capsys.disabled():
        print("\nlab.bench.centers short:", json.dumps(r))
    assert r["measure"] == "many_centers"
    assert (r["contacts"], r["unassigned"], r["contacts_per_center"]) == (80, 0, 2.0)
    assert 0 <= r["p50_ms"] <= r["p99_ms"] <= r["max_ms"], r
    assert r["median_center_p99_ms"] <= r["worst_center_p99_ms"] <= r["max_ms"], r
    assert r["worst_center"].endswith(tuple(f"-{i:05d}" for i in range(40))), r
    assert r["xread_calls"] > 0 and r["xread_server_us_per_call"] > 0, r
    assert 0 < r["dispatcher_connections"] <= 2 * (8 + 1), r  # parallel + 1 each
    assert r["dispatcher_log_warnings"] == 0, r["logs"]
    check_longest_call(r)


def test_many_centers_refuses_contacts_closer_than_their_agent_frees() -> None:
    with pytest.raises(SystemExit):
        centers.main(["--centers", "10", "--rate", "100"])


def test_flood_short_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert flood.main(["--unservable", "2000", "--combos", "200", "--agents", "48",
                       "--rate", "200", "--seconds", "2", "--idle-seconds", "1",
                       "--batch", "5"]) == 0
    records = {r["measure"]: r for r in lines(capsys.readouterr().out)}
    with capsys.disabled():
        print("\nlab.bench.flood short:", json.dumps(records))
    served = records["servable"]
    assert served["batch"] == 5, served
    assert (served["assigned"], served["unassigned"], served["completions_failed"]) == (
        400, 0, 0), served
    assert 0 <= served["p50_ms"] <= served["p99_ms"] <= served["max_ms"], served
    assert served["completion_lag_p99_ms"] is not None, served
    assert records["idle_round"]["server_us"] > 0, records["idle_round"]
    by = records["bystander"]
    assert by["reads_idle"] > 100 and by["reads_flow"] > 100, by
    assert 0 < by["idle_p50_ms"] <= by["idle_p99_ms"], by
    assert 0 < by["flow_p50_ms"] <= by["flow_p99_ms"] <= by["flow_max_ms"], by
    assert by["p99_ratio"] == pytest.approx(by["flow_p99_ms"] / by["idle_p99_ms"], rel=0.02)
    check_longest_call(records["longest_call"])
    assert records["invariants"] == {"measure": "invariants", "checked": True,
                                     "violations": 0, "first": []}
