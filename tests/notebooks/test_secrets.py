"""No secret of the running lab (Redis passwords, Jupyter's token, API keys: whatever
.env holds) on any command line or in any file the lab writes; its folders private; and
nothing the lab did (start, and the lessons when test_nbval ran first in this session)
was refused by Redis's ACL: each role has what its component needs.

After test_nbval in a plain run (pytest orders the files of a folder by name), so that
the logs hold a whole series of lessons, not only a start."""

from __future__ import annotations

import stat
from pathlib import Path

import redis

from lab.envfile import read_env
from lab.lessons import RunningLab
from lab.processes import command_lines

SECRET_KEYS = ("PASSWORD", "TOKEN", "SECRET", "APIKEY", "API_KEY")


def lab_secrets(lab: RunningLab) -> dict[str, str]:
    env = read_env(Path(lab.env["LAB_ENV_FILE"]))
    found = {k: v for k, v in env.items() if any(s in k for s in SECRET_KEYS) and v}
    assert {"REDIS_PASSWORD", "REDIS_API_PASSWORD", "REDIS_ADMIN_PASSWORD",
            "JUPYTER_TOKEN"} <= set(found), f"expected secrets in .env, found {sorted(found)}"
    return found


def test_no_secret_on_a_command_line_or_in_a_file_of_the_lab(running_lab: RunningLab) -> None:
    secrets = lab_secrets(running_lab)
    ps = "\n".join(command_lines().values())
    assert "redis-server" in ps and "acd.dispatcher" in ps and "jupyter" in ps
    for key, value in secrets.items():
        assert value not in ps, f"{key} is on a command line (/proc/*/cmdline)"
    files = [p for p in running_lab.home.rglob("*") if p.is_file()]
    assert any(p.suffix == ".log" for p in files) and any(p.suffix == ".acl" for p in files)
    for path in files:
        text = path.read_bytes()
        for key, value in secrets.items():
            assert value.encode() not in text, f"{key} is in {path}"


def test_the_labs_folders_and_files_are_its_owners_only(running_lab: RunningLab) -> None:
    home = running_lab.home
    for folder in ("data", "logs", "run"):
        mode = stat.S_IMODE((home / folder).stat().st_mode)
        assert mode == 0o700, f"{home / folder} is {mode:o}, not 700"
    env_file = Path(running_lab.env["LAB_ENV_FILE"])
    for path in [env_file, *home.rglob("*.log"), *home.rglob("*.acl"),
                 *(home / "data").rglob("*")]:
        if path.is_file():
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode & 0o077 == 0, f"{path} is {mode:o}: others may read it"


def test_no_component_was_refused_by_the_acl(running_lab: RunningLab) -> None:
    env = read_env(Path(running_lab.env["LAB_ENV_FILE"]))
    with redis.Redis.from_url(env["REDIS_ADMIN_URL"], decode_responses=True,
                              socket_timeout=5) as admin:
        refused = [(e["username"], e["reason"], e["object"]) for e in admin.acl_log()]
    assert not refused, f"Redis refused the lab's own components: {refused[:10]}"
