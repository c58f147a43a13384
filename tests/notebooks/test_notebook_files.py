"""The committed notebooks stay readable on GitHub: small, with outputs, no huge widget state."""

from __future__ import annotations

from pathlib import Path

import nbformat

from lab.execute_notebooks import WIDGET_STATE, WIDGET_VIEW, slim_widget_state

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("[0-9]*.ipynb"))


def test_committed_notebooks_are_small_and_executed() -> None:
    assert len(NOTEBOOKS) == 9
    for path in NOTEBOOKS:
        assert path.stat().st_size < 1_000_000, f"{path.name} is {path.stat().st_size} bytes"
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert any(c.get("outputs") for c in code), f"{path.name} has no outputs"


def test_slim_widget_state_drops_huge_models_and_their_containers() -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {WIDGET_STATE: {"state": {
        "fig": {"state": {"_esm": "x" * 300_000}},
        "box": {"state": {"children": ["IPY_MODEL_fig", "IPY_MODEL_label"]}},
        "label": {"state": {"value": "queue length"}},
    }}}
    shown = nbformat.v4.new_output("display_data", data={
        WIDGET_VIEW: {"model_id": "box", "version_major": 2, "version_minor": 0},
        "text/plain": "VBox(...)"})
    nb.cells.append(nbformat.v4.new_code_cell("live", outputs=[shown]))
    assert slim_widget_state(nb) == 2
    assert set(nb.metadata["widgets"][WIDGET_STATE]["state"]) == {"label"}
    data = nb.cells[0].outputs[0]["data"]
    assert WIDGET_VIEW not in data and "run this cell" in data["text/plain"]
