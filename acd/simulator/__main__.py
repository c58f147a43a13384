"""``python -m acd.simulator``: run a scenario against the ACD and print its KPIs."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError
from redis.exceptions import RedisError
from rich.console import Console

from acd.settings import get_settings
from acd.simulator import default_dispatchers, run_sync
from acd.simulator.backends import ApiError
from acd.simulator.render import ProgressView, render, write_html
from acd.simulator.scenario import Scenario

EPILOG = """\
Durations are scenario seconds; --time-scale K runs K scenario seconds per real second
(60: an hour of traffic in a minute). KPIs are reported in scenario time and stored at the
center's kpis key. Ctrl-C stops the run cleanly and prints the KPIs so far.

examples:
  python -m acd.simulator --agents 10 --rate 160 --handle-mean 180 --duration 3600 --erlang
  python -m acd.simulator --via redis --center demo --reset --skills english,spanish \\
      --skills-per-agent 1 --patience 120 --duration 7200 --report run.html
  python -m acd.simulator --group 5:english,billing --group 5:spanish,billing \\
      --contact-type english,billing:3 --contact-type spanish,billing:1 --json
"""


def _csv(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def _group(text: str) -> dict[str, Any]:
    count, _, skills = text.partition(":")
    return {"count": int(count), "skills": _csv(skills)}


def _ctype(text: str) -> dict[str, Any]:
    skills, _, weight = text.partition(":")
    return {"skills": _csv(skills), "weight": float(weight or 1)}


def _profile(text: str) -> list[dict[str, float]]:
    steps = []
    for part in _csv(text):
        start, _, rate = part.partition(":")
        steps.append({"start": float(start), "per_hour": float(rate)})
    return steps


def parser() -> argparse.ArgumentParser:
    s = get_settings()
    p = argparse.ArgumentParser(
        prog="python -m acd.simulator", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Simulate callers and agents against the ACD; print KPIs "
                    "(and Erlang C/A predictions with --erlang).")
    run = p.add_argument_group("how to reach the ACD")
    run.add_argument("--via", choices=("api", "demo", "redis"), default="api",
                     help="REST API (default), the original demo's routes (the API's "
                          "ACD_CENTER must be --center), or in-process through acd.Center")
    run.add_argument("--center", help=f"center (default: ACD_CENTER = {s.acd_center})")
    run.add_argument("--api-url", help=f"default: API_URL = {s.api_url}")
    run.add_argument("--redis-url", help="default: REDIS_URL from the environment or .env")
    run.add_argument("--dispatchers", type=int,
                     help="in-process dispatcher tasks (default: 0 via api or demo, where the "
                          "lab's dispatchers assign; 1 via redis); they need Redis")
    run.add_argument("--reset", action="store_true",
                     help="delete the center first (via the API: refused while contacts "
                          "are assigned)")
    sc = p.add_argument_group("scenario (scenario seconds; a --scenario file gives defaults)")
    sc.add_argument("--scenario", type=Path, help="JSON file of Scenario fields")
    sc.add_argument("--agents", type=int, help="number of agents (default 10)")
    sc.add_argument("--skills", type=_csv, help="skills, comma separated (default support)")
    sc.add_argument("--skills-per-agent", type=int,
                    help="distinct skills each agent draws from --skills (default 1)")
    sc.add_argument("--group", dest="groups", type=_group, action="append",
                    help="COUNT:skill,skill  explicit agent group (repeat; replaces --agents)")
    sc.add_argument("--contact-type", dest="contact_types", type=_ctype, action="append",
                    help="skill,skill[:WEIGHT]  contacts needing all these skills (repeat; "
                         "default: one skill of --skills, uniformly)")
    sc.add_argument("--agent-choice", choices=("longest_available", "fewest_skills"),
                    help="which qualified agent a contact gets (default longest_available)")
    sc.add_argument("--rate", dest="rate_per_hour", type=float,
                    help="Poisson arrivals per scenario hour (default 120)")
    sc.add_argument("--profile", type=_profile,
                    help="piecewise rate START:PER_HOUR,...  e.g. 0:120,1800:300,3600:60")
    sc.add_argument("--handle-mean", type=float, help="mean handle time, s (default 240)")
    sc.add_argument("--handle-dist", choices=("exponential", "lognormal"))
    sc.add_argument("--handle-cv", type=float, help="lognormal std dev / mean (default 1)")
    sc.add_argument("--patience", type=float,
                    help="mean caller patience, s, exponential (default: callers never hang up)")
    sc.add_argument("--wrap-up-seconds", type=float,
                    help="after-contact work per contact, s: the center's wrap-up time "
                         "(default 0)")
    sc.add_argument("--max-wait", type=float,
                    help="close a contact still waiting after this many s (reason max_wait; "
                         "steps by waiting time that relax or overflow: the scenario "
                         "file's relaxation, {\"billing,spanish\": [{\"after_s\": 30, "
                         "\"skills\": [\"billing\"]}]})")
    sc.add_argument("--offer-timeout-seconds", type=float,
                    help="offers on: an agent has this long to accept, s (default 0: off)")
    sc.add_argument("--accept-probability", type=float,
                    help="with offers: the chance an agent accepts an offer at once, else "
                         "it lets it time out (default 1)")
    sc.add_argument("--duration", type=float, help="arrivals for this long (default 3600)")
    sc.add_argument("--contacts", type=int, help="stop after this many contacts")
    sc.add_argument("--warmup", type=float, help="leave arrivals before this out of the KPIs")
    sc.add_argument("--seed", type=int, help="same seed, same draws (default 1)")
    sc.add_argument("--time-scale", type=float,
                    help="scenario seconds per real second (default 60)")
    sc.add_argument("--sl-threshold", type=float, help="T of the service level (default 20)")
    sc.add_argument("--wait-epsilon-ms", type=float,
                    help="real ms under which a wait counts as none (default 5)")
    sc.add_argument("--drain-timeout", type=float,
                    help="real s to wait for open contacts after the last arrival (default 60)")
    out = p.add_argument_group("output")
    out.add_argument("--erlang", action="store_true",
                     help="print Erlang C (Erlang A with --patience) predictions beside the "
                          "measured P(wait), ASA and service level (single-skill scenarios)")
    out.add_argument("--json", action="store_true", help="print the report as JSON only")
    out.add_argument("--report", type=Path, metavar="FILE.html", help="write plotly charts")
    out.add_argument("--no-store", action="store_true", help="do not store the KPIs")
    out.add_argument("--no-progress", action="store_true")
    out.add_argument("--log-level", default="WARNING")
    return p


SCENARIO_FIELDS = ("center", "agents", "skills", "skills_per_agent", "groups",
                   "contact_types", "rate_per_hour", "profile", "patience",
                   "wrap_up_seconds", "max_wait", "offer_timeout_seconds", "accept_probability",
                   "duration",
                   "contacts", "warmup", "seed", "time_scale", "sl_threshold",
                   "wait_epsilon_ms", "drain_timeout", "agent_choice")


def scenario_from(args: argparse.Namespace) -> Scenario:
    fields: dict[str, Any] = {}
    if args.scenario:
        fields = json.loads(args.scenario.read_text())
    for name in SCENARIO_FIELDS:
        value = getattr(args, name)
        if value is not None:
            fields[name] = value
    handle = dict(fields.get("handle", {}))
    for flag, key in (("handle_mean", "mean"), ("handle_dist", "dist"), ("handle_cv", "cv")):
        if getattr(args, flag) is not None:
            handle[key] = getattr(args, flag)
    fields["handle"] = handle
    if args.contacts is not None and args.duration is None and "duration" not in (
            json.loads(args.scenario.read_text()) if args.scenario else {}):
        fields["duration"] = None  # --contacts alone: as many as asked, however long
    return Scenario.model_validate(fields)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        scenario = scenario_from(args)
    except (ValidationError, ValueError, OSError) as exc:
        print(f"invalid scenario: {exc}", file=sys.stderr)
        return 2
    out = Console()
    err = Console(stderr=True)
    dispatchers = args.dispatchers if args.dispatchers is not None else default_dispatchers(
        args.via)
    try:
        with ProgressView(err, enabled=not args.no_progress) as view:
            report = run_sync(scenario, via=args.via, redis_url=args.redis_url,
                              api_url=args.api_url, dispatchers=dispatchers,
                              erlang=args.erlang, store=not args.no_store, reset=args.reset,
                              on_progress=view.update)
    except (httpx.TransportError, RedisError, ApiError, OSError) as exc:
        where = args.api_url or get_settings().api_url if args.via != "redis" else "Redis"
        print(f"simulator: cannot drive the ACD ({where}): {exc!r}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.document(), indent=2))
    else:
        out.print(render(report))
    if args.report:
        write_html(report, args.report)
        if not args.json:
            out.print(f"charts written to {args.report}")
    return 130 if report.stopped_early else 0


if __name__ == "__main__":
    sys.exit(main())
