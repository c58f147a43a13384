"""python -m lab.ha start|stop|status|drill [--run-dir DIR] [--password PW] [--json]

``drill`` is the failover drill (lab.drill) with its raw writes straight to Redis only:
this topology runs no API (``python -m lab.drill`` drills ./start.sh --ha with contacts).
"""

from __future__ import annotations

import argparse
import json
import sys

from lab.errors import LabError

from . import layout, roles, services


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.ha", description=__doc__)
    parser.add_argument("command", choices=["start", "stop", "status", "drill"])
    parser.add_argument("--run-dir", default=None, help=f"default {layout.DEFAULT_RUN_DIR}")
    parser.add_argument("--password", default=None, help="Redis password (generated if not given)")
    parser.add_argument("--json", action="store_true", help="status or drill report as JSON")
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            topo = services.start(args.password, run_dir=args.run_dir)
            print(roles.format_status(roles.status(topo.run_dir)))
            print(f"REDIS_URL={topo.redis_url}")
            print(f"API_URL={topo.api_url}")
        elif args.command == "stop":
            removed = services.stop(args.run_dir)
            print("\n".join(f"removed {r}" for r in removed) or "nothing to stop")
        elif args.command == "status":
            info = roles.status(args.run_dir)
            print(json.dumps(info, indent=2) if args.json else roles.format_status(info))
        elif args.command == "drill":
            from lab.drill.__main__ import main as drill

            return drill(["--no-contacts",
                          *(["--run-dir", args.run_dir] if args.run_dir else []),
                          *(["--json"] if args.json else [])], prog="python -m lab.ha drill")
    except LabError as exc:
        print(f"lab.ha: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
