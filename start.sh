#!/usr/bin/env bash
# Start the ACD lab: creates .venv on first run, installs the pinned requirements,
# then starts Redis (with RedisJSON), the REST API, two dispatchers and JupyterLab.
# Running it again is harmless: it reports what already runs.
#   ./start.sh               the embedded lab (default; no Docker, no root)
#   ./start.sh --ha          the HA topology (Linux, root)
#   ./start.sh --enterprise  Redis Enterprise in Docker
set -euo pipefail
cd "$(dirname "$0")"
source lab/bootstrap.sh
exec .venv/bin/python -m lab start "$@"
