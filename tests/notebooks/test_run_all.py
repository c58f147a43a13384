"""Run All, as a learner does it: every notebook opened in the lab's own JupyterLab (the one
./start.sh starts, with its dispatchers and API running) in a real Chromium, "Run All
Cells", and zero error outputs, zero "Error displaying widget", every code cell executed.

The notebooks are copied into a temporary folder under notebooks/ first (JupyterLab
autosaves, and the committed notebooks must not change); from there they find the
repository exactly as from notebooks/. Uses Debian's /usr/bin/chromium via Playwright; it
never downloads a browser. Screenshots go to screenshots/ (git-ignored).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from jupyter_browser import APP, CHROMIUM, FLAGS, NOTEBOOK, SHOTS, chromium, jupyter_base, wait_js
from lab_runs import NOTEBOOKS

from lab.lessons import RunningLab

RUN_ALL_TIMEOUT = 240  # seconds for one notebook (06 simulates ~12 s, 08 may drill ~40 s)


def _run_all(page: Any, base: str, token: str, path: str) -> dict[str, Any]:
    page.goto(f"{base}/lab/tree/{path}?token={token}", wait_until="domcontentloaded",
              timeout=60_000)
    wait_js(page, f"{NOTEBOOK}.context.path === '{path}'"
             f" && {NOTEBOOK}.sessionContext.session.kernel.status === 'idle'", 90)
    page.evaluate(f"""async () => {{
        await {APP}.commands.execute('notebook:clear-all-cell-outputs');
        await {APP}.commands.execute('notebook:run-all-cells');
    }}""")
    # Done when the kernel is idle and every code cell has an execution count (a cell
    # that raised stops Run All: the cells after it keep none, and the check says so).
    state = wait_js(page, f"""(() => {{
        const nb = {NOTEBOOK};
        if (nb.sessionContext.session.kernel.status !== 'idle') return null;
        const cells = nb.content.widgets.filter(c => c.model.type === 'code');
        const errors = [];
        cells.forEach((c, i) => {{
            for (const o of c.model.outputs.toJSON()) {{
                if (o.output_type === "error")
                    errors.push(`cell ${{i}}: ${{o.ename}}: ${{o.evalue}}`);
            }}
        }});
        const unrun = cells.filter(c => c.model.executionCount === null).length;
        if (unrun && !errors.length) return null;
        return {{cells: cells.length, unrun, errors}};
    }})()""", RUN_ALL_TIMEOUT).json_value()
    state["widget_errors"] = page.locator(  # in outputs: notebook 00's text names it too
        ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output",
        has_text="Error displaying widget").count()
    return dict(state)


@pytest.mark.slow
@pytest.mark.long  # two minutes of clicking: the long tier, so a plain run stays under 15
@pytest.mark.timeout(1200)
def test_run_all_in_the_labs_jupyterlab(running_lab: RunningLab, copies: Path) -> None:
    executable = chromium()
    if executable is None:
        pytest.skip(f"{CHROMIUM} is missing and could not be installed")
    from playwright.sync_api import sync_playwright

    base, token = jupyter_base(running_lab)
    SHOTS.mkdir(exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for nb in NOTEBOOKS:
                started = time.monotonic()
                state = _run_all(page, base, token, f"notebooks/{copies.name}/{nb.name}")
                state["seconds"] = round(time.monotonic() - started, 1)
                results[nb.name] = state
                page.screenshot(path=str(SHOTS / f"run_all_{nb.stem}.png"))
                print(f"{nb.name}: {state}")
        finally:
            browser.close()
    bad = {name: r for name, r in results.items()
           if r["errors"] or r["unrun"] or r["widget_errors"]}
    total = sum(r["seconds"] for r in results.values())
    print(f"Run All of {len(results)} notebooks in the lab's JupyterLab: {total:.0f} s")
    assert not bad, bad
