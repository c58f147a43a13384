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
import html
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
    """Drop saved widget models larger than ``limit``, and take them out of the containers
    that hold them.

    JupyterLab saves every widget's state in the notebook so it can draw the widgets when
    the notebook is opened again. A plotly FigureWidget's state carries plotly.js itself
    (about 5 MB): saved, it makes the notebook too big to read on GitHub. Without it the
    rest of the widget (the live view's queue, assignments and buttons) is still drawn as
    it was; running the cell draws the figure again. An output whose own model is dropped
    keeps a text note. Returns how many models were dropped.
    """
    saved = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    drop = {mid for mid, model in saved.items() if len(json.dumps(model)) > limit}
    refs = {f"IPY_MODEL_{mid}" for mid in drop}
    for model in saved.values():  # a container draws without the child that is gone
        children = model.get("state", {}).get("children")
        if isinstance(children, list):
            model["state"]["children"] = [c for c in children if c not in refs]
    still = {mid for mid, model in saved.items() if mid not in drop
             and any(ref in json.dumps(model) for ref in refs)}
    drop |= still  # referenced other than as a child: cannot be drawn without it
    for mid in drop:
        del saved[mid]
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view and view.get("model_id") in drop:
                del output["data"][WIDGET_VIEW]
                output["data"]["text/plain"] = "(a live widget: run this cell to see it)"
    return len(drop)


SNAPSHOT_NOTE = ("A picture of the widget as it was saved; run the cell (with the lab "
                 "running) to use it live.")


def _snapshot(saved: dict[str, Any], model_id: str) -> str:
    """Static HTML of a saved widget tree: HTML and label values as they were, buttons and
    toggles as labels (pressed ones bold), boxes as rows and columns."""
    model = saved.get(model_id)
    if model is None:
        return ""
    name, state = model.get("model_name", ""), model.get("state", {})
    layout = saved.get(str(state.get("layout", "")).removeprefix("IPY_MODEL_"), {})
    if layout.get("state", {}).get("display") == "none":  # hidden (an unused row)
        return ""
    kids = "".join(_snapshot(saved, c.removeprefix("IPY_MODEL_"))
                   for c in state.get("children", []) if isinstance(c, str))
    if name in ("HTMLModel", "HTMLMathModel"):
        return f"<div>{state.get('value', '')}</div>"
    if name == "LabelModel":
        return f"<span>{html.escape(str(state.get('value', '')))}</span>"
    if name in ("ToggleButtonModel", "ButtonModel", "CheckboxModel"):
        text = html.escape(str(state.get("description", "")))
        pressed = state.get("value") is True
        weight = "font-weight:bold;" if pressed else ""
        return (f"<span style='{weight}border:1px solid #999;border-radius:3px;"
                f"padding:0 4px;margin:1px'>{'☑ ' if pressed else ''}{text}</span>")
    if name == "HBoxModel":
        return f"<div style='display:flex;flex-wrap:wrap;gap:4px'>{kids}</div>"
    return f"<div>{kids}</div>" if kids else ""


def describe_widgets(nb: Any) -> None:
    """Viewers that draw no live widget - GitHub, and JupyterLab itself until the notebook
    is trusted or run - show a widget output's HTML or plain text instead. Give them a
    picture of the widget from its saved state, and a sentence instead of a raw
    ``VBox(children=...)`` repr."""
    saved = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            view = data.get(WIDGET_VIEW)
            if not view:
                continue
            data["text/plain"] = "(an interactive widget: run the cell to use it live)"
            picture = _snapshot(saved, view.get("model_id", ""))
            if picture:
                data["text/html"] = (f"<div style='border:1px dashed #bbb;padding:6px'>"
                                     f"{picture}<p><i>{SNAPSHOT_NOTE}</i></p></div>")


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
