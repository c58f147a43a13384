"""Fixtures of the notebook tests."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab_runs import NOTEBOOKS

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
