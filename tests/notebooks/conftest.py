"""Fixtures of the notebook tests."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from lab_runs import NOTEBOOKS

from acd import Center, connect

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def copies() -> Iterator[Path]:
    """The notebooks copied into a temporary folder under notebooks/: a JupyterLab that
    autosaves (the lab's does) must not rewrite the committed ones, and from there the
    copies find the repository exactly as from notebooks/. (A hidden folder would not be
    served.)"""
    folder = REPO / "notebooks" / f"run-all-{secrets.token_hex(4)}"
    folder.mkdir()
    for nb in NOTEBOOKS:
        shutil.copy(nb, folder / nb.name)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def other(redis_url: str, center: Center) -> AsyncIterator[Center]:
    """The same center through another client: another notebook, the API, a dispatcher."""
    redis = connect(redis_url)
    yield Center(redis, center.name)
    await redis.aclose()
