"""A contact is confirmed only once a replica has it (acd.durable), with a real replica.

The replica is frozen (SIGSTOP) the way a busy machine freezes a process: it stays
connected, so a WAIT that checks nothing (sent on a connection that wrote nothing) still
counts it. The HA lab's drill then lost contacts confirmed that way (README, Environments).
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from acd import Center, connect
from acd.errors import AlreadyExists, NotDurable
from acd.settings import get_settings
from lab.embedded import EmbeddedRedis, free_port
from lab.processes import wait_until

PASSWORD = "test-pw"


@pytest.fixture(scope="module")
def replica_of(redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[EmbeddedRedis]:
    """A second server replicating the session's one, for this module only."""
    replica = EmbeddedRedis(tmp_path_factory.mktemp("replica"), free_port(), password=PASSWORD,
                            name="replica")
    replica.start()
    try:
        with replica.client() as r:
            r.config_set("masteruser", "admin")
            r.config_set("masterauth", PASSWORD)
            r.execute_command("REPLICAOF", "127.0.0.1", redis_server.port)
            wait_until(lambda: r.info("replication")["master_link_status"] == "up", 30,
                       "the replica's link")
        yield replica
    finally:
        replica.stop()


@pytest.fixture
async def waiting_center(redis_url: str, replica_of: EmbeddedRedis,
                         monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Center]:
    settings = get_settings()
    monkeypatch.setattr(settings, "acd_wait_replicas", 1)
    monkeypatch.setattr(settings, "acd_wait_timeout_ms", 200)
    client = connect(redis_url)
    yield Center(client, f"durable-{uuid.uuid4().hex[:8]}")
    await client.aclose()


def _pid(server: EmbeddedRedis) -> int:
    pid = server.pid()
    assert pid is not None
    return pid


async def test_a_frozen_replica_confirms_nothing(waiting_center: Center,
                                                 replica_of: EmbeddedRedis,
                                                 redis_url: str) -> None:
    center = waiting_center
    assert (await center.create_contact(["en"], contact_id="before")).state == "queued"
    with pytest.raises(AlreadyExists):  # the library's error reply, through the pipeline
        await center.create_contact(["en"], contact_id="before")
    os.kill(_pid(replica_of), signal.SIGSTOP)
    try:
        with pytest.raises(NotDurable, match="0 of 1 replicas"):
            await center.create_contact(["en"], contact_id="frozen")
        # The pitfall: WAIT on a connection that wrote nothing counts the frozen replica
        # at once. The old retry path (the contact exists: WAIT alone) confirmed that way.
        with redis.Redis.from_url(redis_url, socket_timeout=5) as fresh:
            assert fresh.execute_command("WAIT", 1, 200) == 1
        with pytest.raises(NotDurable, match="0 of 1 replicas"):
            await center.get_contact_replicated("frozen")
        assert await center.get_contact_replicated("nobody") is None
    finally:
        os.kill(_pid(replica_of), signal.SIGCONT)
    found = await center.get_contact_replicated("frozen")
    assert found is not None and found.id == "frozen"
    with replica_of.client() as r:
        wait_until(lambda: r.exists(center.keys.contact("frozen")) == 1, 10,
                   "the contact on the replica")
