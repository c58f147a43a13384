"""Showing a run: a rich progress bar, the KPI tables, and the plotly HTML report."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Console, Group
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from acd.simulator.kpis import Kpis
from acd.simulator.records import Snapshot
from acd.simulator.report import Report


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _sec(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f} s"


def _pm(x: float | None, half: float | None, fmt: str) -> str:
    if x is None:
        return "-"
    if fmt == "%":
        return _pct(x) + ("" if half is None else f" ± {100 * half:.1f}")
    return _sec(x) + ("" if half is None else f" ± {half:.2f}")


class ProgressView:
    """Progress bar fed by the engine's snapshots; a no-op when not on a terminal."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self.enabled = enabled and (console.is_terminal or console.is_jupyter)
        self.progress = Progress(
            TextColumn("[bold]simulating"), BarColumn(), MofNCompleteColumn(),
            TextColumn("t={task.fields[t]}  waiting {task.fields[waiting]}  "
                       "answered {task.fields[answered]}  abandoned {task.fields[abandoned]}"),
            TimeElapsedColumn(), console=console, transient=True)
        self.task = self.progress.add_task("run", total=None, t="0 s", waiting=0, answered=0,
                                           abandoned=0)

    def __enter__(self) -> ProgressView:
        if self.enabled:
            self.progress.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.enabled:
            self.progress.stop()

    def update(self, s: Snapshot) -> None:
        if self.enabled:
            self.progress.update(self.task, total=s.total, completed=s.created,
                                 t=f"{s.scenario_time:,.0f} s", waiting=s.waiting,
                                 answered=s.answered, abandoned=s.abandoned)


def kpi_table(report: Report) -> Table:
    k, iv = report.kpis, report.intervals
    t = Table(title=f"KPIs - center {report.center} via {report.via} "
              f"(scenario time, window {report.window[0]:,.0f}-{report.window[1]:,.0f} s)",
              show_header=True)
    t.add_column("KPI")
    t.add_column("value", justify="right")
    t.add_column("definition", style="dim")
    ended = k.answered + k.abandoned
    rows = [
        ("offered", f"{k.offered}", "contacts queued in the window"),
        ("answered", f"{k.answered}", "assigned to an agent"),
        ("abandoned", f"{k.abandoned} ({_pct(k.abandon_rate)})",
         "caller hung up while queued; % of answered + abandoned"),
        ("unfinished", f"{k.unfinished}", "still open when the run stopped (left out)"),
        (f"service level ({k.sl_threshold:g} s)",
         _pm(k.service_level, iv["service_level"].half_width, "%"),
         "answered within T / (answered + abandoned)"),
        (f"service level ({k.sl_threshold:g} s), answered",
         _pm(k.service_level_answered, iv["service_level_answered"].half_width, "%"),
         "answered within T / answered"),
        ("P(wait)", _pm(k.p_wait, iv["p_wait"].half_width, "%"),
         f"not answered within {k.wait_epsilon:.3g} s (dispatch latency) / {ended}"),
        ("ASA", _pm(k.asa, iv["asa"].half_width, "s"), "mean wait of answered contacts"),
        ("wait mean / p90 / p99", f"{_sec(k.wait_mean)} / {_sec(k.wait_p90)} / "
         f"{_sec(k.wait_p99)}", "answered contacts"),
        ("occupancy", _pct(k.occupancy), "busy time / (agents x window)"),
        ("arrival rate", "-" if k.arrival_rate_per_hour is None
         else f"{k.arrival_rate_per_hour:,.1f} /h", "measured"),
        ("mean handle time", _sec(k.handle_mean), "measured, assigned to completed"),
    ]
    if k.abandoned:
        rows.append(("abandon wait mean", _sec(k.abandon_wait_mean),
                     "how long callers who hung up had waited"))
    if k.closed or k.relaxed_rate or k.overflowed_rate:  # steps by waiting time (acd.steps)
        rows.append(("relaxed / overflowed / closed", f"{_pct(k.relaxed_rate)} / "
                     f"{_pct(k.overflowed_rate)} / {_pct(k.closed_rate)}",
                     "by a step by waiting time; % of offered (closed: its maximum wait)"))
    if k.offers is not None:  # acd.offers
        o = k.offers
        rows += [
            ("offers made", f"{o.made}", "to the window's contacts"),
            ("accepted / rejected / timed out", f"{o.accepted} / {o.rejected} / "
             f"{o.timed_out}", f"withdrawn (caller hung up) {o.withdrawn}, still open "
             f"{o.open}"),
            ("missed-offer breaks", f"{o.missed_offer_breaks}",
             "misses that put the agent on a break (max_misses in a row)"),
            ("time offered, mean", _sec(o.offered_mean),
             "wait the offers held an answered contact (missed ones + the accepted one)"),
        ]
    for row in rows:
        t.add_row(*row)
    t.caption = "± : 95% batch-means interval" if any(
        i.half_width is not None for i in iv.values()) else None
    return t


def skill_table(per_skill: dict[str, Kpis], title: str = "per skill combination",
                first: str = "skills") -> Table:
    t = Table(title=title)
    steps = any(k.closed or k.relaxed_rate or k.overflowed_rate for k in per_skill.values())
    extra = ("abandon wait", "relaxed", "overflowed", "closed") if steps else ()
    for col in (first, "offered", "answered", "abandoned", "SL", "ASA", "p90 wait", *extra):
        t.add_column(col, justify="left" if col == first else "right")
    for sig, k in per_skill.items():
        more = (_sec(k.abandon_wait_mean), _pct(k.relaxed_rate), _pct(k.overflowed_rate),
                _pct(k.closed_rate)) if steps else ()
        t.add_row(sig, str(k.offered), str(k.answered),
                  f"{k.abandoned} ({_pct(k.abandon_rate)})", _pct(k.service_level),
                  _sec(k.asa), _sec(k.wait_p90), *more)
    return t


def erlang_table(report: Report) -> Table | str:
    e = report.erlang
    if e is None:
        return ""
    if e.model is None or not e.applicable:
        return f"Erlang: not applicable: {e.reason}"
    load = e.offered_load
    t = Table(title=f"Erlang {e.model}: N={e.agents}, A={load:.2f} Erlangs, "
              f"P(wait>0)={_pct(e.p_wait_any)}")
    for col in ("figure", "measured", "± 95%", "predicted", "inside CI"):
        t.add_column(col, justify="left" if col == "figure" else "right")
    for f in e.figures:
        seconds = f.name == "asa"
        conv = _sec if seconds else _pct
        half = "-" if f.ci95 is None else (f"{f.ci95:.2f} s" if seconds
                                            else f"{100 * f.ci95:.1f}")
        ok = {True: "yes", False: "NO", None: "-"}[f.agrees]
        t.add_row(f.name, conv(f.measured), half, conv(f.predicted), ok)
    return t


def render(report: Report) -> Group:
    parts: list[Table | str] = [kpi_table(report)]
    if len(report.per_skill) > 1:
        parts.append(skill_table(report.per_skill))
    if report.per_priority:
        parts.append(skill_table(report.per_priority, "per priority class", "priority"))
    erl = erlang_table(report)
    if erl != "":
        parts.append(erl)
    if report.stopped_early:
        parts.append("[yellow]stopped early: KPIs cover the run so far[/]")
    parts += [f"[dim]note: {n}[/]" for n in report.notes]
    if report.overlaps:
        parts.append(f"[bold red]{len(report.overlaps)} times an agent was on two contacts "
                     f"at once[/], e.g. {report.overlaps[0]}")
    return Group(*parts)


def figures(report: Report) -> list[Any]:
    """The report's plotly figures: queue length over time, the wait distribution and
    occupancy per agent (apart from write_html, so tests can check their data)."""
    import plotly.graph_objects as go  # type: ignore[import-untyped]

    s = report.samples
    queue = go.Figure(go.Scatter(x=[t for t, _ in s.queue], y=[n for _, n in s.queue],
                                 mode="lines", line={"shape": "hv"}, name="waiting"))
    queue.update_layout(title="Contacts waiting over time", xaxis_title="scenario seconds",
                        yaxis_title="waiting")
    waits = go.Figure(go.Histogram(x=s.waits, nbinsx=60, name="wait"))
    waits.update_layout(title=f"Wait of answered contacts ({len(s.waits)})",
                        xaxis_title="seconds", yaxis_title="contacts")
    agents = sorted(s.occupancy)
    occ = go.Figure(go.Bar(x=agents, y=[100 * s.occupancy[a] for a in agents]))
    occ.update_layout(title="Occupancy per agent", yaxis_title="% of the window")
    return [queue, waits, occ]


def write_html(report: Report, path: Path) -> None:
    """Queue length over time, the wait distribution and occupancy per agent."""
    k = report.kpis
    head = (f"<h1>ACD simulation - center {report.center}</h1><p>run {report.run_id}, "
            f"{report.started_at}, via {report.via}: offered {k.offered}, answered "
            f"{k.answered}, abandoned {k.abandoned}, SL {_pct(k.service_level)}, "
            f"ASA {_sec(k.asa)}, occupancy {_pct(k.occupancy)}</p>")
    body = "".join(fig.to_html(full_html=False, include_plotlyjs=(i == 0))
                   for i, fig in enumerate(figures(report)))
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>ACD simulation"
                    f"</title></head><body>{head}{body}</body></html>", encoding="utf-8")
