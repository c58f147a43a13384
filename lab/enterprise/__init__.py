"""The Redis Enterprise environment (docker-compose.yml at the repo root).

``python -m lab.enterprise up|down|bootstrap``: needs a Docker engine with Compose v2.
The files: haproxy/haproxy.cfg, keepalived/keepalived-lb{1,2}.conf, database.json (the
database definition sent to the cluster REST API), lb.Dockerfile, app.Dockerfile.
"""

from .bootstrap import (
    COMPOSE_FILE,
    DATABASE_JSON,
    PROJECT,
    DockerUnavailable,
    database_definition,
    down,
    make_certificate,
    require_docker,
    up,
    update_env_file,
)

__all__ = [
    "COMPOSE_FILE",
    "DATABASE_JSON",
    "PROJECT",
    "DockerUnavailable",
    "database_definition",
    "down",
    "make_certificate",
    "require_docker",
    "up",
    "update_env_file",
]
