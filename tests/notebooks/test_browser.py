"""The notebooks' widgets in a real browser, in the lab's own JupyterLab (the one ./start.sh
starts, its dispatchers and API running) with headless Chromium (Playwright).

On copies of the notebooks (the lab's JupyterLab autosaves): notebook 02 runs up to the
LAA widgets, which must render (no "Error displaying widget"); a click on a skill toggle
of the agent board changes the composer's ranking. Notebook 04 runs up to the live view
and its plotly figure; notebook 06 up to its KPI dashboard (a simulator run, a plotly
figure rendered by JupyterLab's plotly extension). Screenshots go to screenshots/
(git-ignored).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from jupyter_browser import APP, FLAGS, NOTEBOOK, SHOTS, chromium, jupyter_base, wait_js

from lab.lessons import RunningLab

NB02 = "02_availability_and_laa.ipynb"
NB04 = "04_dispatcher.ipynb"
NB06 = "06_api_and_simulator.ipynb"



def _open(page: Any, base: str, token: str, path: str) -> None:
    page.goto(f"{base}/lab/tree/{path}?token={token}", wait_until="domcontentloaded",
              timeout=60_000)
    wait_js(page, f"{NOTEBOOK}.context.path === '{path}'"
             f" && {NOTEBOOK}.sessionContext.session.kernel.status === 'idle'", 60)


def _run_through(page: Any, marker: str) -> None:
    """Clear outputs, then run every cell up to and including the one containing marker."""
    index = page.evaluate(
        f"""(marker) => {{
            const nb = {NOTEBOOK}.content;
            return nb.widgets.findIndex(c => c.model.sharedModel.getSource().includes(marker));
        }}""", marker)
    assert index >= 0, f"no cell contains {marker!r}"
    page.evaluate(f"""async (index) => {{
        const app = {APP};
        await app.commands.execute('notebook:clear-all-cell-outputs');
        {NOTEBOOK}.content.activeCellIndex = index;
        await app.commands.execute('notebook:run-all-above');
        {NOTEBOOK}.content.activeCellIndex = index;
        await app.commands.execute('notebook:run-cell');
    }}""", index)


def _no_widget_errors(page: Any) -> None:
    text = page.inner_text(".jp-NotebookPanel:not(.lm-mod-hidden)")
    assert "Error displaying widget" not in text, text[-2000:]
    assert "Traceback" not in text, text[-3000:]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_widgets_in_jupyterlab(running_lab: RunningLab, copies: Path) -> None:
    executable = chromium()
    if executable is None:
        pytest.skip("/usr/bin/chromium is missing and could not be installed")
    from playwright.sync_api import sync_playwright

    base, token = jupyter_base(running_lab)
    folder = f"notebooks/{copies.name}"
    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            _check_laa(page, base, token, f"{folder}/{NB02}")
            _check_live_view(page, base, token, f"{folder}/{NB04}")
            _check_dashboard(page, base, token, f"{folder}/{NB06}")
        finally:
            browser.close()


def _check_laa(page: Any, base: str, token: str, path: str) -> None:
    t = time.monotonic()
    _open(page, base, token, path)
    _run_through(page, "LAALab.create(center)")
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    ranking = panel.locator(".widget-html-content table.acd-ranking")
    ranking.wait_for(timeout=60_000)
    wait_js(page, f"{NOTEBOOK}.sessionContext.session.kernel.status === 'idle'", 60)
    print(f"notebook 02: LAA widgets rendered {time.monotonic() - t:.1f} s after opening")
    _no_widget_errors(page)
    laa_row = ranking.locator("tr", has_text="← LAA")
    assert "a1" in laa_row.inner_text()
    row_a1 = panel.locator(".widget-hbox", has=page.locator("code", has_text=re.compile(r"^a1$")))
    row_a1.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "nb02_laa_before.png"))

    toggle = row_a1.locator("button", has_text="Billing")
    assert "mod-active" in (toggle.get_attribute("class") or ""), "a1 should have Billing"
    t = time.monotonic()
    toggle.click()
    page.wait_for_function(
        """() => [...document.querySelectorAll('table.acd-ranking tr')]
                 .some(tr => tr.innerText.includes('← LAA') && tr.innerText.includes('a2'))""",
        timeout=15_000)
    print(f"notebook 02: ranking changed {1000 * (time.monotonic() - t):.0f} ms after the click")
    assert "a1" not in ranking.inner_text()
    assert "mod-active" not in (toggle.get_attribute("class") or "")
    _no_widget_errors(page)
    ranking.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "nb02_laa_after_click.png"))


def _check_live_view(page: Any, base: str, token: str, path: str) -> None:
    _open(page, base, token, path)
    _run_through(page, "view = LiveView(center")
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    plot = panel.locator(".js-plotly-plot").first
    plot.wait_for(timeout=60_000)
    panel.locator("text=queue length:").first.wait_for(timeout=30_000)
    _no_widget_errors(page)
    plot.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "nb04_live_view.png"))


def _check_dashboard(page: Any, base: str, token: str, path: str) -> None:
    t = time.monotonic()
    _open(page, base, token, path)
    _run_through(page, "fig = make_subplots(")
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    plot = panel.locator(".js-plotly-plot").first
    plot.wait_for(timeout=90_000)
    wait_js(page, f"{NOTEBOOK}.sessionContext.session.kernel.status === 'idle'", 60)
    print(f"notebook 06: KPI dashboard rendered {time.monotonic() - t:.1f} s after opening")
    assert plot.locator(".main-svg").count() > 0, "the plotly figure has no SVG"
    assert "queue length" in plot.inner_text()
    _no_widget_errors(page)
    plot.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "nb06_kpi_dashboard.png"))
