"""Fixtures of the simulator tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import apiserver


@pytest.fixture
def api_url(subprocess_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """A real uvicorn (one worker) on the test Redis, for the API backends."""
    server = apiserver.start(subprocess_env, tmp_path / "api.log", workers=1)
    try:
        yield server.url
    finally:
        apiserver.stop(server)
