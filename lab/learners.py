"""Workshop learners' connection files (lab.workshop writes them, a learner's notebooks
read one).

``python -m lab workshop add alice`` writes ``<lab home>/workshop/alice.env`` (the folder
0700, the file 0600): REDIS_URL (the learner's own Redis user), API_URL, ACD_API_KEY (the
learner's key) and ACD_LEARNER. Nothing else: no other role's password. The same files are
where the lab finds its learners' Redis users at every start (the ACL file is rewritten
then), so learners survive a restart, and removing a file (``workshop remove``) is what
forgets a learner.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import unquote, urlsplit

from acd.api import apikeys
from acd.center import Center
from acd.connection import connect
from lab.envfile import read_env
from lab.processes import private_dir, write_private

FOLDER = "workshop"
KEYS = ("REDIS_URL", "API_URL", "ACD_API_KEY", "ACD_LEARNER")
"""What a connection file holds, in this order."""


def folder(home: Path) -> Path:
    return home / FOLDER


def connection_file(home: Path, learner: str) -> Path:
    return folder(home) / f"{learner}.env"


def write_connection(path: Path, values: dict[str, str]) -> Path:
    """Write a connection file, its owner's only (it holds a password and a key)."""
    private_dir(path.parent)
    text = "# A workshop learner's connection (python -m lab workshop add). Keep it secret.\n"
    return write_private(path, text + "".join(f"{k}={values[k]}\n" for k in KEYS))


def read_connection(path: Path) -> dict[str, str]:
    """A connection file's values; ValueError naming what is missing."""
    if not path.is_file():
        raise ValueError(f"no connection file at {path}")
    values = read_env(path)
    missing = [k for k in KEYS if not values.get(k)]
    if missing:
        raise ValueError(f"{path} is not a workshop connection file: it lacks "
                         f"{', '.join(missing)}")
    return {k: values[k] for k in KEYS}


def redis_password(url: str) -> str:
    return unquote(urlsplit(url).password or "")


def learner_connections(home: Path) -> dict[str, dict[str, str]]:
    """Every learner of the lab in ``home``: name -> her connection file's values."""
    found: dict[str, dict[str, str]] = {}
    if not folder(home).is_dir():
        return found
    for path in sorted(folder(home).glob("*.env")):
        try:
            values = read_connection(path)
        except ValueError:
            continue  # not ours: nothing to grant
        found[values["ACD_LEARNER"]] = values
    return found


def learner_passwords(home: Path) -> dict[str, str]:
    """Every learner of the lab in ``home``, name -> Redis password (for the ACL file)."""
    return {name: redis_password(values["REDIS_URL"])
            for name, values in learner_connections(home).items()}


def restore_learners(admin_url: str, home: Path) -> list[str]:
    """Give the learners of ``home`` back their API keys (their connection files hold them)
    and first centers in a Redis that lost them: the HA lab's data starts empty at each
    start, while its ACL files bring their users back. Returns whose key was restored."""
    async def restore() -> list[str]:
        done = []
        redis = connect(admin_url)
        try:
            for name, values in learner_connections(home).items():
                try:
                    restored = await apikeys.restore(redis, values["ACD_API_KEY"],
                                                     f"workshop learner {name}", learner=name)
                except (apikeys.KeyRejected, ValueError):
                    continue  # a file edited by hand: her key stays unknown, not the start
                if restored:
                    await Center(redis, name).register()
                    done.append(name)
        finally:
            await redis.aclose()
        return done

    return asyncio.run(restore())
