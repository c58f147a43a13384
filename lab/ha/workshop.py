"""Workshop mode on the HA lab (``./start.sh --ha``): ``python -m lab workshop`` finds it
through .env's ACD_ENV=ha and gets this lab's Workshop (lab.workshop).

What differs from the embedded lab: ACL users are not replicated, so a learner's user is
set (ACL SETUSER/DELUSER) on every node directly, as the admin, the way the lab's own
checks reach the nodes, and written into every node's ACL file (lab.ha.configs): a replica
promoted later and a node the supervisor restarts have her too. Everything else goes
through the VIP to whichever node is the primary: her API key (it lives in Redis and is
replicated), her first center, and ``remove``'s wipe of her centers. Her connection file
names the VIP: REDIS_URL (HAProxy's :12000) and API_URL (:8000).
"""

from __future__ import annotations

from lab.learners import learner_passwords
from lab.redis_users import role_url
from lab.stack import LabConfig
from lab.workshop import Workshop, WorkshopError

from .configs import write_acl_files
from .launcher import HALab
from .layout import NODE_PORT

HOST_NOTE = (
    "The HA lab's VIP ({vip}) is on this machine's bridge only: learners elsewhere reach "
    "{{host}} only if you forward its ports {redis_port} (Redis) and {api_port} (REST API) "
    "to the VIP's (each user and key still needs its password).")


def ha_workshop(config: LabConfig | None = None) -> Workshop:
    """The workshop of the running HA lab of ``config``'s home; WorkshopError when it is
    not running."""
    lab = HALab(config)
    topo = lab.topology()
    if topo is None:
        raise WorkshopError(f"the HA lab is not running ({lab.run_dir}): start it with "
                            "./start.sh --ha")
    home = lab.config.home

    def write_acl() -> None:
        write_acl_files(topo, learner_passwords(home))

    nodes = [role_url("admin", topo.secret("admin"), address, NODE_PORT)
             for address in topo.nodes.values()]
    note = HOST_NOTE.format(vip=topo.vip, redis_port=topo.redis_port, api_port=topo.api_port)
    return Workshop(home, topo.role_url("admin"), topo.api_url, write_acl,
                    node_urls=nodes, host_note=note)
