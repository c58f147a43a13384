"""python -m lab.drill [--json] [--no-contacts] [--no-writes] ..."""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console

from lab.errors import LabError

from .runner import run


def main(argv: list[str] | None = None, prog: str = "python -m lab.drill") -> int:
    p = argparse.ArgumentParser(prog=prog, description="The failover drill of the HA lab.")
    p.add_argument("--rate", type=float, default=10.0, help="contacts per second (default 10)")
    p.add_argument("--agents", type=int, default=20, help="agents (default 20)")
    p.add_argument("--handle", type=float, default=0.3, help="seconds an agent holds a contact")
    p.add_argument("--write-rate", type=float, default=200.0,
                   help="raw writes per second straight to Redis (default 200)")
    p.add_argument("--no-contacts", action="store_true",
                   help="no contacts through the API (the bare topology of python -m lab.ha)")
    p.add_argument("--no-writes", action="store_true", help="no raw writes straight to Redis")
    p.add_argument("--run-dir", help="the HA run dir (default: $LAB_HOME/ha)")
    p.add_argument("--json", action="store_true", help="print the report as JSON only")
    args = p.parse_args(argv)
    if args.no_contacts and args.no_writes:
        p.error("--no-contacts and --no-writes leave nothing to measure")
    err = Console(stderr=True)
    try:
        report = run(
            rate=args.rate,
            agents=args.agents,
            handle_s=args.handle,
            contacts=not args.no_contacts,
            writes=not args.no_writes,
            write_rate=args.write_rate,
            run_dir=args.run_dir,
            echo=None if args.json else err.print,
        )
    except LabError as exc:
        print(f"{prog.removeprefix('python -m ')}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        Console(width=None if sys.stdout.isatty() else 160).print(report.table())
        for note in report.notes:
            err.print(f"  note: {note}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
