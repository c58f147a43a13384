"""``python -m lab start|stop|status``: what start.sh and stop.sh call."""

from __future__ import annotations

import argparse
import sys

from lab.processes import StartError
from lab.stack import EmbeddedLab


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab", description="Run the ACD lab.")
    sub = p.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start the lab (embedded by default)")
    start.add_argument("--ha", action="store_true", help="HA topology (Linux, root)")
    start.add_argument("--enterprise", action="store_true",
                       help="Redis Enterprise in Docker (needs a Docker engine)")
    stop = sub.add_parser("stop", help="stop what start started")
    stop.add_argument("--purge", action="store_true", help="delete the data too")
    sub.add_parser("status", help="what runs where")
    args = p.parse_args(argv)

    lab = EmbeddedLab()
    if args.command == "start":
        if args.ha or args.enterprise:
            print("not available yet in this version", file=sys.stderr)
            return 2
        print("Starting the embedded lab:")
        try:
            lab.start()
        except StartError as exc:
            print(f"\nThe lab did not start: {exc}", file=sys.stderr)
            return 1
        print_where(lab)
    elif args.command == "stop":
        print("Stopping the lab:")
        lab.stop(purge=args.purge)
    else:
        for name, pid in lab.status().items():
            print(f"  {name:<13} {'running, pid ' + str(pid) if pid else 'stopped'}")
        if any(lab.status().values()):
            print_where(lab)
    return 0


def print_where(lab: EmbeddedLab) -> None:
    urls = lab.urls
    print(f"""
The lab is up (environment: embedded). Settings are in {lab.config.env_file}.
  JupyterLab  {urls['JUPYTER_URL']}   <- open this
  REST API    {urls['API_URL']}/docs
  Redis       redis://127.0.0.1:{lab.config.redis_port} (password in .env)
Stop it with ./stop.sh (keeps data) or ./stop.sh --purge.""")


if __name__ == "__main__":
    sys.exit(main())
