"""Fixtures of the sharded tests: one local Redis OSS Cluster of 3 primaries for the
session (lab/cluster.py: the same redis-server and RedisJSON as every other test), the acd
library loaded on every primary, and centers whose hash tags land on each primary."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio.cluster import RedisCluster
from shards import center_names

from acd import Center
from lab.cluster import LocalCluster, load_acd_library, local_cluster


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    with local_cluster(primaries=3, password="cluster-pw") as running:
        asyncio.run(load_acd_library(running))
        yield running


@pytest.fixture
async def cluster_client(cluster: LocalCluster) -> AsyncIterator[RedisCluster]:
    client = cluster.async_client()
    yield client
    await client.aclose()


@pytest.fixture
async def shard_centers(cluster: LocalCluster, cluster_client: RedisCluster
                        ) -> AsyncIterator[list[Center]]:
    """Three centers, one on each primary, deleted at the end."""
    centers = [Center(cluster_client, name) for name in center_names(cluster)]  # type: ignore[arg-type]
    yield centers
    for center in centers:
        await center.wipe()
