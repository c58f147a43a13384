"""Results recorded once and committed under notebooks/data/ (the benchmark, the failover
drill), for the notebooks that cannot run them live in a few seconds (07, 08)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "notebooks" / "data"


def recorded(name: str) -> dict[str, Any]:
    """A recorded result committed under notebooks/data/ (bench.json, drill.json)."""
    data: dict[str, Any] = json.loads((DATA / name).read_text())
    return data
