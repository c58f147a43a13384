"""The HA lab environment: Redis + Sentinel, HAProxy + keepalived, in network namespaces.

    >>> import lab.ha
    >>> topo = lab.ha.start()            # seconds; returns the running HATopology
    >>> topo.redis_url                   # redis://lab:<password>@192.168.20.100:12000/0
    >>> lab.ha.kill_primary(); lab.ha.primary(); lab.ha.vip_holder()
    >>> lab.ha.stop()

Command line: ``python -m lab.ha start|stop|status|drill``. Linux and root only.
``./start.sh --ha`` puts the ACD on top (lab.ha.launcher); the failover drill is lab.drill.

The modules, each importing only those above it: net (bridge, namespaces), layout
(addresses, HATopology, Redis clients, platform checks), state (run dir, state file), procs
(processes in namespaces, recorded in the state file), roles (who is primary, who holds the
VIP), configs, components (how Redis, Sentinel, HAProxy, keepalived start), services (start
and stop the topology), failover (failures on purpose), hooks (API replicas, dispatchers),
launcher (the whole lab).
"""

from lab.errors import LabError

from .configs import (
    render_haproxy_cfg,
    render_keepalived_conf,
    render_redis_conf,
    render_sentinel_conf,
)
from .failover import kill_haproxy, kill_primary, restart_node, start_lb, stop_lb, stop_node
from .hooks import (
    app_pids,
    run_in_namespace,
    start_api_replicas,
    start_dispatchers,
    stop_in_namespace,
)
from .launcher import HALab, ha_state_exists
from .layout import (
    DEFAULT_RUN_DIR,
    VIP,
    HATopology,
    check_platform,
    ensure_packages,
    redis_client,
    sentinel_client,
)
from .roles import format_status, primary, status, vip_holder, vip_holders
from .services import start, stop
from .state import resolve_run_dir, running_topology, topology

__all__ = [
    "DEFAULT_RUN_DIR",
    "VIP",
    "HALab",
    "HATopology",
    "LabError",
    "app_pids",
    "check_platform",
    "ensure_packages",
    "format_status",
    "ha_state_exists",
    "kill_haproxy",
    "kill_primary",
    "primary",
    "redis_client",
    "render_haproxy_cfg",
    "render_keepalived_conf",
    "render_redis_conf",
    "render_sentinel_conf",
    "resolve_run_dir",
    "restart_node",
    "run_in_namespace",
    "running_topology",
    "sentinel_client",
    "start",
    "start_api_replicas",
    "start_dispatchers",
    "start_lb",
    "status",
    "stop",
    "stop_in_namespace",
    "stop_lb",
    "stop_node",
    "topology",
    "vip_holder",
    "vip_holders",
]
