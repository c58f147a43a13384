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

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from jupyter_browser import (
    FLAGS,
    NOTEBOOK,
    SHOTS,
    browser_page,
    chromium,
    jupyter_base,
    no_widget_errors,
    open_notebook,
    run_through,
    shut_down_kernels,
    wait_js,
)

from lab.envfile import read_env
from lab.learners import connection_file
from lab.lessons import RunningLab
from lab.notebook.session import connection_file as session_connection_file

REPO = Path(__file__).resolve().parents[2]

NB02 = "02_availability_and_laa.ipynb"
NB04 = "04_dispatcher.ipynb"
NB06 = "06_api_and_simulator.ipynb"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_widgets_in_jupyterlab(running_lab: RunningLab, copies: Path) -> None:
    base, token = jupyter_base(running_lab)
    folder = f"notebooks/{copies.name}"
    with browser_page() as page:
        _check_laa(page, base, token, f"{folder}/{NB02}")
        _check_live_view(page, base, token, f"{folder}/{NB04}")
        _check_dashboard(page, base, token, f"{folder}/{NB06}")


def _check_laa(page: Any, base: str, token: str, path: str, shots: str = "nb02") -> None:
    t = time.monotonic()
    open_notebook(page, base, token, path)
    run_through(page, "LAALab.create(center)")
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    ranking = panel.locator(".widget-html-content table.acd-ranking")
    ranking.wait_for(timeout=60_000)
    wait_js(page, f"{NOTEBOOK}.sessionContext.session.kernel.status === 'idle'", 60)
    print(f"notebook 02: LAA widgets rendered {time.monotonic() - t:.1f} s after opening")
    no_widget_errors(page)
    laa_row = ranking.locator("tr", has_text="← LAA")
    assert "a1" in laa_row.inner_text()
    row_a1 = panel.locator(".widget-hbox", has=page.locator("code", has_text=re.compile(r"^a1$")))
    row_a1.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / f"{shots}_laa_before.png"))

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
    no_widget_errors(page)
    ranking.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / f"{shots}_laa_after_click.png"))


def _check_live_view(page: Any, base: str, token: str, path: str) -> None:
    open_notebook(page, base, token, path)
    run_through(page, "view = LiveView(center")
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    plot = panel.locator(".js-plotly-plot").first
    plot.wait_for(timeout=60_000)
    panel.locator("text=queue length:").first.wait_for(timeout=30_000)
    no_widget_errors(page)
    plot.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "nb04_live_view.png"))


def _check_dashboard(page: Any, base: str, token: str, path: str) -> None:
    t = time.monotonic()
    open_notebook(page, base, token, path)
    run_through(page, "fig = make_subplots(")
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    plot = panel.locator(".js-plotly-plot").first
    plot.wait_for(timeout=90_000)
    wait_js(page, f"{NOTEBOOK}.sessionContext.session.kernel.status === 'idle'", 60)
    print(f"notebook 06: KPI dashboard rendered {time.monotonic() - t:.1f} s after opening")
    assert plot.locator(".main-svg").count() > 0, "the plotly figure has no SVG"
    assert "queue length" in plot.inner_text()
    no_widget_errors(page)
    plot.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "nb06_kpi_dashboard.png"))


NB00 = "00_lab_check.ipynb"
LEARNER = "wsb"


@pytest.mark.long
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_workshop_learner_in_jupyterlab(running_lab: RunningLab, copies: Path) -> None:
    """A workshop learner as she lives it: the instructor adds her to the running lab
    (python -m lab workshop add); in the lab's JupyterLab she types her connection file's
    path into notebook 00, runs it all (the Run menu) and answers its exercise; then in
    notebook 02 she clicks a skill toggle of the agent board. Everything she did went to
    her own centers (wsb.nb00, wsb.nb02) as her Redis user, and Redis refused her nothing."""
    executable = chromium()
    if executable is None:
        pytest.skip("/usr/bin/chromium is missing and could not be installed")
    from playwright.sync_api import sync_playwright

    added = _workshop(running_lab, "add", LEARNER)
    assert added.returncode == 0, added.stderr
    own_file = connection_file(running_lab.home, LEARNER)
    admin_url = read_env(Path(running_lab.env["LAB_ENV_FILE"]))["REDIS_ADMIN_URL"]
    shared = session_connection_file()  # notebooks/.connection.env: use_connection writes it
    kept = shared.read_bytes() if shared.exists() else None
    base, token = jupyter_base(running_lab)
    folder = f"notebooks/{copies.name}"
    SHOTS.mkdir(exist_ok=True)
    try:
        with redis.Redis.from_url(admin_url, decode_responses=True, socket_timeout=5) as admin:
            admin.acl_log_reset()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=executable, args=FLAGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                _learner_connects(page, base, token, f"{folder}/{NB00}", own_file)
                _check_laa(page, base, token, f"{folder}/{NB02}", shots="learner_nb02")
                panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
                heading = panel.locator("h4", has_text="Agents of center").first.inner_text()
                assert f"{LEARNER}.nb02" in heading, heading
                mode = panel.locator(".acd-mode").first
                # Her widgets count the lab's dispatchers by their heartbeats (she may
                # not list clients): both are there.
                assert mode.get_attribute("data-dispatchers") == "2", mode.inner_text()
            finally:
                browser.close()
        with redis.Redis.from_url(admin_url, decode_responses=True, socket_timeout=5) as admin:
            skills = admin.execute_command("JSON.GET", f"{{acd:{LEARNER}.nb02}}:agent:a1",
                                           "$.skills")
            refused = [(e["username"], e["reason"], e["object"]) for e in admin.acl_log()]
            clients = [c for c in admin.client_list() if c["user"] == f"learner-{LEARNER}"]
        # The click went to her center, through her user.
        assert "Billing" not in skills and "English" in skills, skills
        assert clients, "none of the kernels' connections is her Redis user"
        assert refused == [], refused
    finally:
        # Her kernels would go on following Redis as her user after she is removed: their
        # reconnections, refused, would fill the ACL LOG the next tests read.
        print("shut down:", shut_down_kernels(running_lab, folder))
        if kept is None:
            shared.unlink(missing_ok=True)
        else:
            shared.write_bytes(kept)
        removed = _workshop(running_lab, "remove", LEARNER)
        assert removed.returncode == 0, removed.stderr


def _workshop(lab: RunningLab, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab", "workshop", *args], cwd=REPO,
                          env=lab.env, capture_output=True, text=True, timeout=60)


def _learner_connects(page: Any, base: str, token: str, path: str, own_file: Path) -> None:
    """Notebook 00 as the learner uses it: her file's path typed into the commented-out
    use_connection cell, the exercise answered, Run > Run All Cells."""
    open_notebook(page, base, token, path)
    _type_into(page, "# notebook.use_connection(", f'notebook.use_connection("{own_file}")')
    _type_into(page, "answer = ...", f'answer = "{{acd:{LEARNER}.nb00}}:agent:a7"\n'
               "from lab.notebook import exercises\n"
               'exercises.check_key_name(answer, "nb00", "a7")')
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    panel.locator("text=keys left: 0").wait_for(timeout=90_000)
    wait_js(page, f"{NOTEBOOK}.sessionContext.session.kernel.status === 'idle'", 60)
    text = panel.inner_text()
    assert f"Connected as learner {LEARNER}: Redis user learner-{LEARNER}" in text, text[-3000:]
    assert f"center: {LEARNER}.nb00" in text, text[-3000:]
    assert f"✔ {{acd:{LEARNER}.nb00}}:agent:a7" in text, text[-3000:]
    no_widget_errors(page)
    page.screenshot(path=str(SHOTS / "learner_nb00.png"), full_page=True)


def _type_into(page: Any, marker: str, text: str) -> None:
    """Replace the source of the cell containing marker by typing, as a learner does."""
    index = page.evaluate(
        f"""(marker) => {NOTEBOOK}.content.widgets.findIndex(
               c => c.model.sharedModel.getSource().includes(marker))""", marker)
    assert index >= 0, f"no cell contains {marker!r}"
    editor = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").nth(index) \
        .locator(".cm-content")
    editor.scroll_into_view_if_needed()
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)
    wait_js(page, f"{NOTEBOOK}.content.widgets[{index}].model.sharedModel.getSource()"
                  f" === {json.dumps(text)}", 10)
