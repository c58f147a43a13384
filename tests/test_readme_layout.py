"""README's layout and concept tables match the tree: every path they name exists, and
every module of acd/ and every folder of lab/ is named somewhere in README."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
PATHS = set(re.findall(r"`((?:acd|lab|tests|notebooks)/[\w./-]*)`", README))


def test_every_path_readme_names_exists() -> None:
    missing = sorted(p for p in PATHS if not (REPO / p.rstrip("/")).exists())
    assert missing == [], f"README names paths that do not exist: {missing}"


def test_readme_names_every_module_of_acd_and_every_folder_of_lab() -> None:
    wanted = [f"acd/{p.name}" for p in sorted((REPO / "acd").glob("*.py"))
              if p.name not in ("__init__.py", "__main__.py")]
    wanted += [f"lab/{p.name}/" for p in sorted((REPO / "lab").iterdir())
               if p.is_dir() and (p / "__init__.py").exists()]
    unnamed = [w for w in wanted if w not in README and w.rstrip("/") not in README]
    assert unnamed == [], f"README's layout does not name: {unnamed}"
