"""python -m lab.enterprise up|down|bootstrap"""

from __future__ import annotations

import argparse
import sys

from .bootstrap import DockerUnavailable, EnterpriseError, bootstrap, down, up


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.enterprise", description=__doc__)
    parser.add_argument(
        "command",
        choices=["up", "down", "bootstrap"],
        help="up = compose up + bootstrap; bootstrap = cluster and database only",
    )
    parser.add_argument("--volumes", action="store_true", help="down: also remove volumes")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            up()
        elif args.command == "bootstrap":
            bootstrap()
        else:
            down(volumes=args.volumes)
    except (DockerUnavailable, EnterpriseError) as exc:
        print(f"lab.enterprise: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
