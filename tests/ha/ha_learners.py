"""Helpers of the tests of workshop mode on the HA lab (lab.ha.workshop): a learner's
connection file, each node's learner users, a contact of hers the lab's dispatchers assign."""

from __future__ import annotations

import asyncio
from pathlib import Path

import redis

from acd import Center, ContactState, connect
from lab.envfile import read_env
from lab.ha import topology
from lab.learners import connection_file, read_connection, write_connection

EARLIER = "cleo"  # a learner of an earlier session: in the lab's home before the start
EARLIER_PASSWORD = "cleo-earlier-session-pw"
EARLIER_KEY = "acd_0123456789ab_" + "k" * 43


def add_earlier_learner(home: Path) -> None:
    """Her connection file, as ``workshop add`` left it: ./start.sh --ha must make her a
    user of every node (its ACL files are written from the home's learners) and store her
    API key again (its data starts empty)."""
    write_connection(connection_file(home, EARLIER), {
        "REDIS_URL": f"redis://learner-{EARLIER}:{EARLIER_PASSWORD}@127.0.0.1:16379/0",
        "API_URL": "http://127.0.0.1:8000", "ACD_API_KEY": EARLIER_KEY,
        "ACD_LEARNER": EARLIER})


def learner(ha_lab: dict[str, str], name: str) -> dict[str, str]:
    return read_connection(connection_file(Path(ha_lab["LAB_HOME"]), name))


def node_admin(ha_lab: dict[str, str], address: str) -> redis.Redis:
    """A node itself (not through the VIP), as the admin."""
    password = read_env(Path(ha_lab["LAB_ENV_FILE"]))["REDIS_ADMIN_PASSWORD"]
    return redis.Redis(host=address, port=6379, username="admin", password=password,
                       socket_timeout=5, decode_responses=True)


def learner_users(ha_lab: dict[str, str]) -> dict[str, tuple[set[str], set[str]]]:
    """Each node's workshop users: live (ACL USERS asked of the node itself, not through
    the VIP) and in its ACL file (what it reads when it starts)."""
    run_dir = Path(ha_lab["LAB_HOME"]) / "ha"
    found = {}
    for node, address in topology(run_dir).nodes.items():
        with node_admin(ha_lab, address) as r:
            live = {u for u in r.acl_users() if u.startswith("learner-")}
        lines = (run_dir / node / "users.acl").read_text().splitlines()
        found[node] = (live, {x.split()[1] for x in lines if x.startswith("user learner-")})
    return found


async def served(url: str, center: str, n: int) -> None:
    """As the learner, through the VIP: an available agent and a contact in her center;
    the HA lab's dispatchers assign it (30 s at most)."""
    client = connect(url)
    mine = Center(client, center)
    try:
        await mine.create_agent(f"a{n}", "An", "N", ["English"], available=True)
        await mine.create_contact(["English"], contact_id=f"c{n}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while (contact := await mine.get_contact(f"c{n}")).state is ContactState.QUEUED:
            assert loop.time() < deadline, f"the HA lab's dispatchers never assigned c{n}"
            await asyncio.sleep(0.05)
        assert contact.state is ContactState.ASSIGNED, contact
        await mine.complete_contact(f"c{n}")
    finally:
        await client.aclose()
