"""Re-execute the lab's notebooks and write their outputs in place.

    python -m lab.execute_notebooks [notebooks/02_*.ipynb ...]

The outputs are the lab's as learners see it: the script starts a lab of its own exactly
as ./start.sh does (lab.lessons: its Redis, API, two dispatchers and JupyterLab, in a
temporary home on free ports) and runs each notebook in a fresh kernel with the
environment that lab's JupyterLab gives its kernels, then stops it. Readers on GitHub see
real results, and the nbval tests (tests/notebooks/, tests/ha/) compare new runs in the
embedded and the HA lab with these outputs. Widget state is saved with the notebook (large
plotly models left out), so an unexecuted notebook opened in JupyterLab shows the widgets.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"


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


def describe_widgets(nb: Any) -> None:
    """Widget outputs keep their view (JupyterLab draws it from the saved state); their
    plain-text fallback, which GitHub and other viewers show, says what it is instead of a
    raw ``VBox(children=...)`` repr."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW in data and str(data.get("text/plain", "")).startswith(
                    ("VBox(", "HBox(", "Box(", "Output(")):
                data["text/plain"] = ("(an interactive widget: JupyterLab shows it as it was "
                                      "saved; run the cell to use it live)")


def execute(path: Path, env: dict[str, str], timeout: int) -> float:
    """Run one notebook in a fresh kernel and write it back; returns the seconds it took."""
    nb = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    started = time.monotonic()
    old = dict(os.environ)
    os.environ.clear()
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
    describe_widgets(nb)
    nbformat.write(nb, path)  # type: ignore[no-untyped-call]
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.execute_notebooks",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("notebooks", nargs="*", type=Path,
                   help="notebooks to run (default: every notebooks/NN_*.ipynb)")
    p.add_argument("--timeout", type=int, default=90, help="seconds per cell")
    args = p.parse_args(argv)
    paths = args.notebooks or sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))

    from lab.lessons import running_lab

    failed = 0
    with tempfile.TemporaryDirectory(prefix="acd-nbexec-") as folder, \
            running_lab(Path(folder)) as lab:
        for path in paths:
            try:
                seconds = execute(path.resolve(), lab.kernel_env, args.timeout)
                print(f"ok     {path.name} ({seconds:.1f} s)")
            except Exception as exc:  # noqa: BLE001 - report every notebook, then fail
                failed += 1
                print(f"FAILED {path.name}: {type(exc).__name__}: {str(exc)[-2000:]}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
