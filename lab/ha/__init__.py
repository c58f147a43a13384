"""The HA lab environment: Redis + Sentinel, HAProxy + keepalived, in network namespaces.

    >>> import lab.ha
    >>> topo = lab.ha.start()            # seconds; returns the running HATopology
    >>> topo.redis_url                   # redis://:<password>@192.168.20.100:12000/0
    >>> lab.ha.kill_primary(); lab.ha.primary(); lab.ha.vip_holder()
    >>> lab.ha.stop()

Command line: ``python -m lab.ha start|stop|status|drill``. Linux and root only.
"""

from .configs import (
    render_haproxy_cfg,
    render_keepalived_conf,
    render_redis_conf,
    render_sentinel_conf,
)
from .drill import DrillResult, drill_kill_primary, drill_stop_lb, run_drill
from .failover import kill_haproxy, kill_primary, restart_node, start_lb, stop_lb, stop_node
from .hooks import run_in_namespace, start_api_replicas, start_dispatchers, stop_in_namespace
from .layout import (
    DEFAULT_RUN_DIR,
    VIP,
    HATopology,
    check_platform,
    ensure_packages,
    topology,
)
from .net import LabError
from .roles import format_status, primary, status, vip_holder, vip_holders
from .services import start, stop

__all__ = [
    "DEFAULT_RUN_DIR",
    "VIP",
    "DrillResult",
    "HATopology",
    "LabError",
    "check_platform",
    "drill_kill_primary",
    "drill_stop_lb",
    "ensure_packages",
    "format_status",
    "kill_haproxy",
    "kill_primary",
    "primary",
    "render_haproxy_cfg",
    "render_keepalived_conf",
    "render_redis_conf",
    "render_sentinel_conf",
    "restart_node",
    "run_drill",
    "run_in_namespace",
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
