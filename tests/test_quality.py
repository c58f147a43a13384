"""The code stays ruff and mypy --strict clean (configuration in pyproject.toml)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600)


def test_ruff() -> None:
    proc = run("ruff", "check", "acd", "lab", "tests")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.timeout(600)
def test_mypy_strict() -> None:
    proc = run("mypy")  # packages and strictness from pyproject.toml
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line!r} is not pinned with =="
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_every_installed_package_is_pinned() -> None:
    # requirements.txt pins what we use; constraints.txt everything under it, and the
    # venv that tests/run and start.sh build holds exactly that.
    direct, locked = _pins(REPO / "requirements.txt"), _pins(REPO / "constraints.txt")
    assert {n: v for n, v in direct.items() if locked.get(n) != v} == {}
    proc = run("pip", "freeze", "--all", "--exclude", "pip", "--exclude", "setuptools")
    installed = _pins_of(proc.stdout)
    assert installed == locked, {n: (installed.get(n), locked.get(n))
                                 for n in installed.keys() | locked.keys()
                                 if installed.get(n) != locked.get(n)}


def _pins_of(freeze: str) -> dict[str, str]:
    return {name.lower().replace("_", "-"): version for name, _, version in
            (line.partition("==") for line in freeze.splitlines() if "==" in line)}


def test_each_lua_file_is_one_readable_concept() -> None:
    """The acd library is its files joined (acd.functions): each stays under the size a
    reader takes in whole, and each function registered has its KEYS/ARGV header in the
    file that registers it."""
    from acd.functions import LIBRARY_FILES

    assert LIBRARY_FILES[0].read_text().startswith("#!lua name=acd\n")
    for path in LIBRARY_FILES:
        text = path.read_text()
        assert len(text.splitlines()) <= 400, f"{path.name}: {len(text.splitlines())} lines"
        assert "#!lua" not in text or path == LIBRARY_FILES[0], path.name
        for name in re.findall(r"^register\('(\w+)'", text, re.M):
            assert f"--[[ {name}" in text, f"{path.name}: {name} has no header"
