"""Re-execute the lab's notebooks and write their outputs in place.

    python -m lab.execute_notebooks [--embedded] [notebooks/02_*.ipynb ...]

Readers on GitHub then see real results, and the nbval tests (tests/notebooks/) compare
new runs with these outputs. The notebooks use REDIS_URL (environment or .env); with
``--embedded``, or when that Redis does not answer, this script starts its own embedded
Redis (RedisJSON loaded) in a temporary folder and stops it at the end. Each notebook runs
in a fresh kernel from the notebooks folder, with a cell timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat
import redis
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"


def _answers(url: str) -> bool:
    try:
        with redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2) as r:
            return bool(r.ping())
    except (redis.RedisError, OSError):
        return False


WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
MAX_WIDGET_MODEL = 200_000  # bytes of saved state for one widget model


def slim_widget_state(nb: Any, limit: int = MAX_WIDGET_MODEL) -> int:
    """Drop saved widget models larger than ``limit`` and the models that contain them.

    JupyterLab saves every widget's state in the notebook so it can draw the widgets when
    the notebook is opened again. A plotly FigureWidget's state carries plotly.js itself
    (about 5 MB): saved, it makes the notebook too big to read on GitHub. Its output keeps
    a text note instead, and running the cell draws the live widget again. Returns how many
    models were dropped.
    """
    saved = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    drop = {mid for mid, model in saved.items() if len(json.dumps(model)) > limit}
    while True:  # a container whose child is gone cannot be drawn either
        parents = {mid for mid, model in saved.items() if mid not in drop
                   and any(f"IPY_MODEL_{d}" in json.dumps(model) for d in drop)}
        if not parents:
            break
        drop |= parents
    for mid in drop:
        del saved[mid]
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view and view.get("model_id") in drop:
                del output["data"][WIDGET_VIEW]
                output["data"]["text/plain"] = "(a live widget: run this cell to see it)"
    return len(drop)


def execute(path: Path, env: dict[str, str], timeout: int) -> float:
    """Run one notebook in a fresh kernel and write it back; returns the seconds it took."""
    nb = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    started = time.monotonic()
    old = dict(os.environ)
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}},
                                record_timing=False)
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    slim_widget_state(nb)
    nbformat.write(nb, path)  # type: ignore[no-untyped-call]
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.execute_notebooks",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("notebooks", nargs="*", type=Path,
                   help="notebooks to run (default: every notebooks/NN_*.ipynb)")
    p.add_argument("--embedded", action="store_true",
                   help="always start a private embedded Redis")
    p.add_argument("--timeout", type=int, default=60, help="seconds per cell")
    args = p.parse_args(argv)
    paths = args.notebooks or sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))

    from acd.settings import get_settings

    url = get_settings().redis_url
    server = None
    if args.embedded or not _answers(url):
        from lab.embedded import EmbeddedRedis, free_port

        if not args.embedded:
            print("Redis at REDIS_URL does not answer: starting an embedded one",
                  file=sys.stderr)
        server = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="acd-nbexec-")), free_port())
        server.start()
        url = server.url
    # ACD_ENV is pinned so the committed outputs name the same environment every run.
    env = {"REDIS_URL": url, "ACD_ENV": os.environ.get("ACD_ENV", "embedded"),
           "PYTHONPATH": str(REPO)}
    failed = 0
    try:
        for path in paths:
            try:
                seconds = execute(path, env, args.timeout)
                print(f"ok     {path.name} ({seconds:.1f} s)")
            except Exception as exc:  # noqa: BLE001 - report every notebook, then fail
                failed += 1
                print(f"FAILED {path.name}: {type(exc).__name__}: {str(exc)[-2000:]}")
    finally:
        if server is not None:
            server.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
