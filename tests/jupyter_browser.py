"""Shared by the tests that drive JupyterLab or the API's pages in a real browser:
Debian's Chromium (never a downloaded browser), its flags, and JupyterLab's app object
(exposed by the lab's JupyterLab) for waiting on the notebook's state."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from lab.lessons import RunningLab

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
APP = "window.jupyterapp"
SHOTS = Path(__file__).resolve().parents[1] / "screenshots"  # git-ignored
NOTEBOOK = f"{APP}.shell.currentWidget"


def chromium() -> str | None:
    """Debian's chromium; installed with apt-get when missing and we are root."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing Debian's chromium (apt-get install -y chromium)")
        subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True,
                       timeout=600, check=False)
    return CHROMIUM if Path(CHROMIUM).exists() else None


@contextmanager
def browser_page() -> Iterator[Any]:
    """A page (1400 x 1000) of Debian's headless Chromium, closed at the end; the test is
    skipped when there is no Chromium and it cannot be installed."""
    executable = chromium()
    if executable is None:
        pytest.skip(f"{CHROMIUM} is missing and could not be installed")
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=FLAGS)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()


def wait_js(page: Any, condition: str, seconds: float) -> Any:
    """Wait until a JavaScript expression is truthy; errors (app not ready) count as false.
    Returns the handle of its value."""
    return page.wait_for_function(
        f"() => {{ try {{ return ({condition}) || false; }} catch (e) {{ return false; }} }}",
        timeout=seconds * 1000)


def jupyter_base(lab: RunningLab) -> tuple[str, str]:
    """(base URL, token) of the lab's JupyterLab."""
    url = urlsplit(lab.jupyter_url)
    return f"{url.scheme}://{url.netloc}", url.query.split("token=")[1]


def shut_down_kernels(lab: RunningLab, folder: str) -> list[str]:
    """Shut down the kernels of the notebooks under ``folder`` (a path relative to the
    lab's JupyterLab root) and return their notebooks' paths: a kernel left running keeps
    its widgets following Redis as its user, long after the test is over."""
    base, token = jupyter_base(lab)
    headers = {"Authorization": f"token {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
        sessions = http.get("/api/sessions")
        sessions.raise_for_status()
        mine = [s for s in sessions.json() if s["path"].startswith(folder + "/")]
        for session in mine:
            http.delete(f"/api/sessions/{session['id']}").raise_for_status()
    return [s["path"] for s in mine]


def open_notebook(page: Any, base: str, token: str, path: str) -> None:
    page.goto(f"{base}/lab/tree/{path}?token={token}", wait_until="domcontentloaded",
              timeout=60_000)
    wait_js(page, f"{NOTEBOOK}.context.path === '{path}'"
             f" && {NOTEBOOK}.sessionContext.session.kernel.status === 'idle'", 60)


def run_through(page: Any, marker: str) -> None:
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


def no_widget_errors(page: Any) -> None:
    text = page.inner_text(".jp-NotebookPanel:not(.lm-mod-hidden)")
    assert "Error displaying widget" not in text, text[-2000:]
    assert "Traceback" not in text, text[-3000:]
