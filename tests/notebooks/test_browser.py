"""The notebooks' widgets in a real browser: JupyterLab + headless Chromium (Playwright).

The test starts its own JupyterLab (free port, random token, repository as root, the
test's Redis in REDIS_URL, autosave off so the committed notebooks are never rewritten),
opens notebook 02, runs it up to the LAA widgets, checks that they render (no "Error
displaying widget"), clicks a skill toggle on the agent board and sees the composer's
ranking change; then runs notebook 04 up to the live view and checks its plotly figure,
and notebook 06 up to its KPI dashboard (the in-process API, a simulator run, a plotly
figure rendered by JupyterLab's plotly extension).
Screenshots go to screenshots/ (git-ignored). Uses Debian's /usr/bin/chromium; it never
downloads a browser.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.processes import terminate

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "screenshots"
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NB02 = "notebooks/02_availability_and_laa.ipynb"
NB04 = "notebooks/04_dispatcher.ipynb"
NB06 = "notebooks/06_api_and_simulator.ipynb"


def _chromium() -> str | None:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing Debian's chromium (apt-get install -y chromium)")
        subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True,
                       timeout=600, check=False)
    return CHROMIUM if Path(CHROMIUM).exists() else None


def _free_port() -> int:
    from lab.embedded import free_port

    return free_port()


@pytest.fixture
def jupyter(redis_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    port, token = _free_port(), secrets.token_hex(16)
    settings = tmp_path / "settings" / "@jupyterlab" / "docmanager-extension"
    settings.mkdir(parents=True)
    (settings / "plugin.jupyterlab-settings").write_text(json.dumps({"autosave": False}))
    env = {**os.environ, "REDIS_URL": redis_url, "ACD_ENV": "embedded",
           "PYTHONPATH": str(REPO), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    log = (tmp_path / "jupyter.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip", "127.0.0.1",
         f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={REPO}",
         f"--LabApp.user_settings_dir={tmp_path / 'settings'}",
         f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
         "--LabApp.expose_app_in_browser=True", "--ServerApp.port_retries=0",
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("JupyterLab did not start:\n" + (
                        tmp_path / "jupyter.log").read_text()[-3000:]) from None
                time.sleep(0.3)
        yield base, token
    finally:
        terminate(proc, timeout=15)
        log.close()


APP = "window.jupyterapp"
NOTEBOOK = f"{APP}.shell.currentWidget"


def _open(page: Any, base: str, token: str, path: str) -> None:
    page.goto(f"{base}/lab/tree/{path}?token={token}", wait_until="domcontentloaded",
              timeout=60_000)
    _wait_js(page, f"{NOTEBOOK}.context.path === '{path}'"
             f" && {NOTEBOOK}.sessionContext.session.kernel.status === 'idle'", 60)


def _wait_js(page: Any, condition: str, seconds: float) -> None:
    """Wait until a JavaScript condition holds; errors (app not ready yet) count as false."""
    page.wait_for_function(
        f"() => {{ try {{ return !!({condition}); }} catch (e) {{ return false; }} }}",
        timeout=seconds * 1000)


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
def test_widgets_in_jupyterlab(jupyter: tuple[str, str]) -> None:
    executable = _chromium()
    if executable is None:
        print("SKIP: /usr/bin/chromium is missing and could not be installed")
        pytest.skip("/usr/bin/chromium is missing and could not be installed")
    from playwright.sync_api import sync_playwright

    base, token = jupyter
    SHOTS.mkdir(exist_ok=True)
    before = {p: (REPO / p).read_bytes() for p in (NB02, NB04, NB06)}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=executable, args=FLAGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                _check_laa(page, base, token)
                _check_live_view(page, base, token)
                _check_dashboard(page, base, token)
            finally:
                browser.close()
    finally:
        for path, content in before.items():  # autosave is off; this is belt and braces
            if (REPO / path).read_bytes() != content:
                (REPO / path).write_bytes(content)
                pytest.fail(f"JupyterLab rewrote {path} (restored)")


def _check_laa(page: Any, base: str, token: str) -> None:
    t = time.monotonic()
    _open(page, base, token, NB02)
    _run_through(page, "LAALab.create(center)")
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    ranking = panel.locator(".widget-html-content table.acd-ranking")
    ranking.wait_for(timeout=60_000)
    _wait_js(page, f"{NOTEBOOK}.sessionContext.session.kernel.status === 'idle'", 60)
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


def _check_live_view(page: Any, base: str, token: str) -> None:
    _open(page, base, token, NB04)
    _run_through(page, "view = LiveView(center")
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    plot = panel.locator(".js-plotly-plot").first
    plot.wait_for(timeout=60_000)
    panel.locator("text=queue length:").first.wait_for(timeout=30_000)
    _no_widget_errors(page)
    plot.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "nb04_live_view.png"))


def _check_dashboard(page: Any, base: str, token: str) -> None:
    t = time.monotonic()
    _open(page, base, token, NB06)
    _run_through(page, "fig = make_subplots(")
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    plot = panel.locator(".js-plotly-plot").first
    plot.wait_for(timeout=90_000)
    _wait_js(page, f"{NOTEBOOK}.sessionContext.session.kernel.status === 'idle'", 60)
    print(f"notebook 06: KPI dashboard rendered {time.monotonic() - t:.1f} s after opening")
    assert plot.locator(".main-svg").count() > 0, "the plotly figure has no SVG"
    assert "queue length" in plot.inner_text()
    _no_widget_errors(page)
    plot.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "nb06_kpi_dashboard.png"))
