"""Hash slots and a real cluster node (notebook 07).

``slot(key)`` is CLUSTER KEYSLOT computed client side, ``shard_of(slot)`` which of a fresh
cluster's equal slot ranges holds it, and ``cluster_node()`` a real one-node Redis
Cluster, so the notebook can show CROSSSLOT on a single machine.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from lab.binaries import redis_server
from lab.embedded import free_port
from lab.errors import LabError
from lab.processes import terminate

SLOTS = 16384


class ClusterNodeError(LabError):
    """The cluster node's redis-server exited before it answered."""


def slot(key: str) -> int:
    """CLUSTER KEYSLOT computed client side: CRC16 of the hash tag (or the whole key)."""
    from redis.crc import key_slot

    return int(key_slot(key.encode()))


def shard_of(slot_number: int, shards: int = 3) -> int:
    """Which of ``shards`` equal slot ranges holds ``slot_number`` (0-based), the way a
    freshly created cluster of that many primaries splits the 16,384 slots."""
    return min(shards - 1, slot_number * shards // SLOTS)


@asynccontextmanager
async def cluster_node(timeout: float = 15.0) -> AsyncIterator[Redis]:
    """A real one-node Redis Cluster (cluster-enabled, every slot assigned to it), started
    in a temporary folder on a free port and stopped at the end. One node holds every slot,
    so nothing is ever redirected, and yet the cluster rules apply: a multi-key command
    whose keys hash to different slots fails with CROSSSLOT."""
    folder = Path(tempfile.mkdtemp(prefix="acd-cluster-"))
    # The cluster bus needs a port too; by default port + 10000, which may be taken or
    # beyond 65535 for a random free port, so name a free one.
    port, bus = free_port(), free_port()
    proc = subprocess.Popen(
        [str(redis_server()), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
         "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
         "--cluster-port", str(bus),
         "--appendonly", "no", "--save", "", "--daemonize", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    client = Redis(host="127.0.0.1", port=port, decode_responses=True, socket_timeout=5,
                   socket_connect_timeout=2)
    try:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    await client.ping()
                    break
                except (RedisConnectionError, OSError):
                    if proc.poll() is not None:
                        raise ClusterNodeError("the cluster node's redis-server exited before "
                                               "it answered") from None
                    await asyncio.sleep(0.05)
            await client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, SLOTS - 1)  # type: ignore[no-untyped-call]
            while "cluster_state:ok" not in str(
                    await client.execute_command("CLUSTER", "INFO")):  # type: ignore[no-untyped-call]
                await asyncio.sleep(0.05)
        yield client
    finally:
        await client.aclose()
        terminate(proc, timeout=10)
        shutil.rmtree(folder, ignore_errors=True)
