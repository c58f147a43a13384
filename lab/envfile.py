"""Read and write the lab's ``.env`` (KEY=VALUE lines), keeping keys it does not own."""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import dotenv_values


def read_env(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def is_lab_secret(key: str) -> bool:
    """A key the lab generates that holds a secret: a Redis user's password or URL,
    Jupyter's token or its URL (which carries the token), the lab's REST API key."""
    return (key.startswith("REDIS_") and ("PASSWORD" in key or key.endswith("_URL"))) or (
        key in ("JUPYTER_TOKEN", "JUPYTER_URL", "ACD_API_KEY"))


def forget_secrets(path: Path) -> list[str]:
    """Remove the lab's secrets from the file (``python -m lab rotate``): the next start
    makes new ones. Returns the keys removed."""
    kept = {k: v for k, v in read_env(path).items() if not is_lab_secret(k)}
    gone = sorted(set(read_env(path)) - set(kept))
    _write(path, kept)
    return gone


def write_env(path: Path, values: dict[str, str]) -> None:
    """Merge ``values`` into the file; it holds a password, so only the owner may read it."""
    _write(path, {**read_env(path), **values})


def _write(path: Path, merged: dict[str, str]) -> None:
    text = "# Written by the lab (start.sh). Same keys in every environment.\n"
    text += "".join(f"{k}={v}\n" for k, v in merged.items())
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # never readable by others
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(tmp, 0o600)
    tmp.replace(path)
