"""Read and write the lab's ``.env`` (KEY=VALUE lines), keeping keys it does not own."""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import dotenv_values


def read_env(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def write_env(path: Path, values: dict[str, str]) -> None:
    """Merge ``values`` into the file; it holds a password, so only the owner may read it."""
    merged = {**read_env(path), **values}
    text = "# Written by the lab (start.sh). Same keys in every environment.\n"
    text += "".join(f"{k}={v}\n" for k, v in merged.items())
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o600)
    tmp.replace(path)
