"""The embedded Redis: a real redis-server with RedisJSON, on 127.0.0.1, with AOF."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import tempfile
from collections.abc import Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import redis

from lab.binaries import redis_server, rejson_module
from lab.processes import Service, private_dir
from lab.redis_users import EMBEDDED_ROLES, role_url, write_acl_file

T = TypeVar("T")

MAXMEMORY_DEFAULT = "1gb"
_SIZE = re.compile(r"^[0-9]+([kmg]b?)?$", re.IGNORECASE)


def redis_maxmemory() -> str:
    """The lab's Redis memory limit: ``LAB_REDIS_MAXMEMORY`` (a Redis size: 512mb, 2gb;
    0 for none), default 1gb. With the noeviction policy Redis never evicts ACD data to
    stay under it: writes that add data are refused instead (the API's 507)."""
    value = os.environ.get("LAB_REDIS_MAXMEMORY", MAXMEMORY_DEFAULT).strip()
    if not _SIZE.fullmatch(value):
        raise ValueError(f"LAB_REDIS_MAXMEMORY {value!r} is not a Redis size: use bytes or "
                         "a number with kb, mb or gb (512mb, 2gb), or 0 for no limit")
    return value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_argv(port: int, data_dir: Path, bind: str = "127.0.0.1",
               extra: list[str] | None = None, acl_file: Path | None = None,
               conf_file: Path | None = None) -> list[str]:
    """redis-server's command line, which ``ps`` shows to every user: no secret in it.
    ``acl_file``: the users (lab.redis_users), how the lab's servers authenticate;
    ``conf_file``: a config file read first (the lesson cluster's password, lab.cluster)."""
    argv = [
        str(redis_server()),
        *([str(conf_file)] if conf_file else []),
        "--port", str(port),
        "--bind", *bind.replace(",", " ").split(),
        "--dir", str(data_dir),
        "--loadmodule", str(rejson_module()),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--daemonize", "no",
        "--protected-mode", "no" if acl_file or conf_file else "yes",
        "--maxmemory", redis_maxmemory(),
        "--maxmemory-policy", "noeviction",
    ]
    if acl_file:
        argv += ["--aclfile", str(acl_file)]
    return argv + (extra or [])


class EmbeddedRedis(Service):
    """redis-server as a lab service; ``url`` is the admin's (the lab's own checks and
    tests), ``url_for(role)`` another role's.

    ``users``: role -> password (lab.redis_users), written to an ACL file (0600) in its run
    folder, the default user off. ``password`` alone: every role with that one password (a
    test's throw-away server, same ACL as the lab). Neither: no authentication at all."""

    def __init__(self, run_dir: Path, port: int, password: str | None = None,
                 name: str = "redis", users: Mapping[str, str] | None = None,
                 learners: Callable[[], Mapping[str, str]] | None = None,
                 bind: str = "127.0.0.1") -> None:
        self.port = port
        self.users = dict(users or {})
        # Workshop learners (name -> password), read at each start: they outlive restarts.
        self.learners = learners or dict
        if password and not users:
            self.users = dict.fromkeys(EMBEDDED_ROLES, password)
        self.password = self.users.get("admin")
        self.data_dir = run_dir / "data" / name
        self.acl_file = run_dir / "run" / f"{name}.acl"
        super().__init__(name=name, argv=redis_argv(
            port, self.data_dir, bind=bind, acl_file=self.acl_file if self.users else None),
            run_dir=run_dir, healthy=self.ping, start_timeout=30)

    def start(self) -> bool:
        private_dir(self.data_dir.parent)  # data/: every server's AOF of the lab
        private_dir(self.data_dir)
        if self.users and not self.running():
            self.write_acl_file()
        return super().start()

    def write_acl_file(self) -> Path:
        """The users the server reads at its next start (or ACL LOAD): every role's and
        every workshop learner's."""
        return write_acl_file(self.acl_file, self.users, self.learners())

    @property
    def url(self) -> str:
        return self.url_for("admin") if self.users else f"redis://127.0.0.1:{self.port}/0"

    def url_for(self, role: str) -> str:
        if role not in self.users:
            raise ValueError(f"{self.name} has no user {role!r}: it has "
                             f"{', '.join(self.users) or 'no users (no authentication)'}")
        return role_url(role, self.users[role], "127.0.0.1", self.port)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True, socket_timeout=5,
                                    socket_connect_timeout=2)

    def ping(self) -> bool:
        with self.client() as r:
            return bool(r.ping())

    def stop(self, timeout: float = 10.0) -> bool:
        was_running = self.running()
        if was_running:
            # SHUTDOWN flushes the AOF; the SIGTERM in Service.stop is the fallback.
            try:
                with self.client() as r:
                    r.shutdown()
            except redis.RedisError:
                pass
        super().stop(timeout)
        return was_running


@contextmanager
def throwaway_redis(name: str, password: str | None = None) -> Iterator[str]:
    """An embedded Redis in a temporary folder for the length of the block (a benchmark's
    own server); yields its URL, then stops it and deletes its data."""
    with tempfile.TemporaryDirectory(prefix=f"acd-{name}-") as tmp:
        server = EmbeddedRedis(Path(tmp), free_port(), password=password, name=name)
        server.start()
        try:
            yield server.url
        finally:
            server.stop()


def on_redis(url: str | None, name: str, body: Callable[[str], T]) -> T:
    """``body(url)``, on a throw-away Redis (:func:`throwaway_redis`) when ``url`` is
    None: what every benchmark's main does with its ``--redis-url``."""
    if url:
        return body(url)
    with throwaway_redis(name) as own:
        return body(own)


def run_on_redis(url: str | None, name: str,
                 body: Callable[[str], Coroutine[Any, Any, int]]) -> int:
    """:func:`on_redis` for a coroutine: ``asyncio.run(body(url))``."""
    return on_redis(url, name, lambda own: asyncio.run(body(own)))

