"""The committed notebooks stay readable on GitHub: small, with outputs, no huge widget state."""

from __future__ import annotations

from pathlib import Path

import nbformat

from lab.execute_notebooks import WIDGET_STATE, WIDGET_VIEW, describe_widgets, slim_widget_state

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("[0-9]*.ipynb"))


def test_committed_notebooks_are_small_and_executed() -> None:
    assert len(NOTEBOOKS) == 9
    for path in NOTEBOOKS:
        assert path.stat().st_size < 1_000_000, f"{path.name} is {path.stat().st_size} bytes"
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert any(c.get("outputs") for c in code), f"{path.name} has no outputs"


def test_slim_widget_state_drops_huge_models_but_keeps_their_containers() -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {WIDGET_STATE: {"state": {
        "fig": {"state": {"_esm": "x" * 300_000}},
        "box": {"state": {"children": ["IPY_MODEL_fig", "IPY_MODEL_label"]}},
        "label": {"state": {"value": "queue length"}},
    }}}
    shown = nbformat.v4.new_output("display_data", data={
        WIDGET_VIEW: {"model_id": "box", "version_major": 2, "version_minor": 0},
        "text/plain": "VBox(...)"})
    alone = nbformat.v4.new_output("display_data", data={
        WIDGET_VIEW: {"model_id": "fig", "version_major": 2, "version_minor": 0},
        "text/plain": "FigureWidget(...)"})
    nb.cells.append(nbformat.v4.new_code_cell("live", outputs=[shown, alone]))
    assert slim_widget_state(nb) == 1
    state = nb.metadata["widgets"][WIDGET_STATE]["state"]
    assert set(state) == {"box", "label"}
    assert state["box"]["state"]["children"] == ["IPY_MODEL_label"], "drawn without the figure"
    kept, dropped = (o["data"] for o in nb.cells[0].outputs)
    assert WIDGET_VIEW in kept
    assert WIDGET_VIEW not in dropped and "run this cell" in dropped["text/plain"]


def test_widget_outputs_show_a_picture_not_a_repr() -> None:
    # Viewers without live widgets (GitHub; JupyterLab until the notebook is trusted or
    # run) fall back to HTML or text: the committed outputs carry a picture of each widget.
    pictures = 0
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                assert not str(data.get("text/plain", "")).startswith(("VBox(", "HBox(")), path
                if WIDGET_VIEW in data:
                    assert "run the cell" in data["text/plain"], path
                    assert "<span" in data.get("text/html", ""), f"{path.name}: no picture"
                    pictures += 1
    assert pictures >= 2  # notebook 02's LAA widgets, notebook 04's live view


def test_snapshot_draws_the_saved_tree() -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {WIDGET_STATE: {"state": {
        "box": {"model_name": "HBoxModel",
                "state": {"children": ["IPY_MODEL_t", "IPY_MODEL_h", "IPY_MODEL_gone",
                                        "IPY_MODEL_hidden"]}},
        "t": {"model_name": "ToggleButtonModel", "state": {"description": "Billing",
                                                            "value": True}},
        "h": {"model_name": "HTMLModel", "state": {"value": "<b>queue length: 2</b>"}},
        "hidden": {"model_name": "ButtonModel", "state": {"description": "Accept",
                                                          "layout": "IPY_MODEL_none"}},
        "none": {"model_name": "LayoutModel", "state": {"display": "none"}},
    }}}
    nb.cells.append(nbformat.v4.new_code_cell("w", outputs=[nbformat.v4.new_output(
        "display_data", data={WIDGET_VIEW: {"model_id": "box"}, "text/plain": "HBox(...)"})]))
    describe_widgets(nb)
    data = nb.cells[0].outputs[0]["data"]
    assert "☑ Billing" in data["text/html"] and "<b>queue length: 2</b>" in data["text/html"]
    assert data["text/plain"].startswith("(an interactive widget")
    assert "Accept" not in data["text/html"]  # hidden (display none): not drawn
