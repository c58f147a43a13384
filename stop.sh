#!/usr/bin/env bash
# Stop exactly what start.sh started (pid files); keeps the data.
#   ./stop.sh --purge   also deletes the data
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ]; then
  echo "Nothing to stop: the lab was never set up here (.venv is missing)."
  exit 0
fi
exec .venv/bin/python -m lab stop "$@"
