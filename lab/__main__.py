"""``python -m lab start|stop|status``: what start.sh and stop.sh call; ``python -m lab
apikey add|list|revoke``: the REST API's keys (lab.apikeys); ``python -m lab workshop
add|list|remove``: learners limited to their own centers (lab.workshop)."""

from __future__ import annotations

import argparse
import sys

from lab import apikeys, workshop
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
    apikeys.add_parser(sub)
    workshop.add_parser(sub)
    sub.add_parser("rotate", help="forget every Redis password and Jupyter's token (the "
                   "lab stopped): the next start makes new ones")
    args = p.parse_args(argv)
    if args.command == "apikey":
        return apikeys.run(args)
    if args.command == "workshop":
        return workshop.run(args, lab_workshop)

    lab = EmbeddedLab()
    if args.command == "start":
        if args.ha and args.enterprise:
            print("choose one of --ha and --enterprise", file=sys.stderr)
            return 2
        if args.enterprise:
            return start_enterprise()
        if args.ha:
            return start_ha()
        if ha_up():
            print("The HA lab runs: stop it first with ./stop.sh", file=sys.stderr)
            return 1
        print("Starting the embedded lab:")
        try:
            lab.start()
        except StartError as exc:
            print(f"\nThe lab did not start: {exc}", file=sys.stderr)
            return 1
        print_where(lab)
    elif args.command == "rotate":
        return rotate(lab)
    elif args.command == "stop":
        print("Stopping the lab:")
        lab.stop(purge=args.purge)
        stop_ha(purge=args.purge)
    else:
        for name, pid in lab.status().items():
            print(f"  {name:<13} {'running, pid ' + str(pid) if pid else 'stopped'}")
        if any(lab.status().values()):
            print_where(lab)
        status_ha()
    return 0


def print_where(lab: EmbeddedLab) -> None:
    urls = lab.urls
    print(f"""
The lab is up (environment: embedded). Settings are in {lab.config.env_file}.
  JupyterLab  {urls['JUPYTER_URL']}   <- open this
  REST API    {urls['API_URL']}/docs
  Redis       redis://127.0.0.1:{lab.config.redis_port} (password in .env)
Stop it with ./stop.sh (keeps data) or ./stop.sh --purge.""")
    if lab.config.bind == "0.0.0.0":
        print("Redis and the REST API listen on every interface (LAB_BIND=0.0.0.0): "
              "learners use this machine's address (python -m lab workshop add --host).")


def rotate(lab: EmbeddedLab) -> int:
    """Redis reads its users (the ACL file) when it starts, from .env's passwords: with the
    lab stopped, forgetting them makes the next start generate and use new ones."""
    from lab.envfile import forget_secrets

    if any(lab.status().values()) or ha_up():
        print("The lab runs: stop it first with ./stop.sh, then rotate, then ./start.sh",
              file=sys.stderr)
        return 1
    gone = forget_secrets(lab.config.env_file)
    print(f"Forgot {', '.join(gone) or 'nothing'} in {lab.config.env_file}; "
          "./start.sh makes new ones.")
    return 0


# -- the HA environment (lab.ha) ----------------------------------------------------------
def ha_up() -> bool:
    from lab.ha import ha_state_exists

    if not ha_state_exists():
        return False
    from lab.ha import HALab

    return HALab().is_up()


def start_ha() -> int:
    from lab.ha import HALab

    ha = HALab()
    print("Starting the HA lab (network namespaces; this takes a minute the first time):")
    try:
        ha.start()
    except StartError as exc:
        print(f"\nThe HA lab did not start: {exc}\nNothing of it was left running.",
              file=sys.stderr)
        return 1
    print(ha.where())
    return 0


def stop_ha(purge: bool = False) -> None:
    from lab.ha import HALab, ha_state_exists

    if ha_state_exists() or HALab().jupyter().running():
        HALab().stop(purge=purge)


def status_ha() -> None:
    from lab.ha import HALab, ha_state_exists

    if not ha_state_exists():
        return
    ha = HALab()
    info = ha.status()
    if not info["running"]:
        print(f"  HA lab        stopped (stale state in {info['run_dir']})")
        return
    print("  HA lab        running:")
    for name, pid in info["components"].items():
        print(f"    {name:<17} {'running, pid ' + str(pid) if pid else 'STOPPED'}")
    for key, alive in info["ha"]["processes"].items():
        if not key.endswith("/app"):
            print(f"    {key:<17} {'running' if alive else 'STOPPED'}")
    print(ha.where())


# -- Redis Enterprise (lab.enterprise) ------------------------------------------------------
def start_enterprise() -> int:
    from lab.enterprise.bootstrap import DockerUnavailable, EnterpriseError, up

    print("Starting Redis Enterprise in Docker (python -m lab.enterprise up):")
    try:
        up()
    except DockerUnavailable as exc:
        print(f"\nThe Enterprise lab needs Docker: {exc}\n"
              "Install Docker Engine with Compose v2, or use ./start.sh (embedded) or "
              "./start.sh --ha.", file=sys.stderr)
        return 2
    except EnterpriseError as exc:
        print(f"\nThe Enterprise lab did not start: {exc}", file=sys.stderr)
        return 1
    return 0


# -- workshop mode (lab.workshop) --------------------------------------------------------
def lab_workshop() -> workshop.Workshop:
    """The workshop of the lab that .env describes (LAB_HOME, LAB_ENV_FILE): the embedded
    lab, or the HA lab (lab.ha.workshop)."""
    from lab.stack import EmbeddedLab

    lab = EmbeddedLab()
    env = lab.env
    if env.get("ACD_ENV") == "ha":
        from lab.ha.workshop import ha_workshop

        return ha_workshop(lab.config)
    if env.get("ACD_ENV", "embedded") != "embedded" or "REDIS_ADMIN_URL" not in env:
        raise workshop.WorkshopError(
            "workshop mode needs the embedded lab or the HA lab started once (./start.sh or "
            f"./start.sh --ha): {lab.config.env_file} has no REDIS_ADMIN_URL of either")

    def write_acl() -> None:
        if lab.redis.acl_file.exists():  # else the next start writes it
            lab.redis.write_acl_file()

    note = None
    if listens_everywhere(env["REDIS_ADMIN_URL"]):
        note = ("The lab listens on every interface (LAB_BIND=0.0.0.0): learners reach it "
                "at {host} if their network does.")
    return workshop.Workshop(lab.config.home, env["REDIS_ADMIN_URL"],
                             env.get("API_URL", lab.urls["API_URL"]), write_acl,
                             host_note=note)


def listens_everywhere(admin_url: str) -> bool:
    """Whether the running Redis was started with LAB_BIND=0.0.0.0 (not the LAB_BIND of
    this shell, which may differ); False when it does not answer."""
    import redis

    try:
        with redis.Redis.from_url(admin_url, socket_timeout=3, socket_connect_timeout=3,
                                  decode_responses=True) as r:
            bind = str(r.config_get("bind").get("bind", ""))
    except (redis.RedisError, OSError):
        return False
    return bool({"0.0.0.0", "*"} & set(bind.split()))


if __name__ == "__main__":
    sys.exit(main())
