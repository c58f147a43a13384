"""The routing features' widgets as a learner clicks them: in the lab's own JupyterLab (the
one ./start.sh starts, its dispatchers and API running), headless Chromium (Playwright).

- Notebook 02, step 7: the ExplanationView shows the recorded explanation of the contact it
  was created with; choosing the other contact in its list shows that one's, and it agrees
  with the record in Redis (the winner is the agent the contact went to).
- Notebook 04, step 7 ("your turn"): the OffersBoard shows the offer of c13 counting down;
  Reject gives it back (a5 one miss), the dispatchers offer it again after the back-off;
  Accept assigns it: in Redis c13 is a5's contact and a5 is c13's agent.
- Notebook 06, step 8: the StatsBoard follows the center live: a contact queued from outside
  the notebook (a POST to the lab's REST API, as a real caller's would be) appears in its
  table without a cell being run; its stop button stops it, its start button follows again.

On copies of the notebooks (the lab's JupyterLab autosaves). Screenshots go to screenshots/
(git-ignored).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from jupyter_browser import (
    NOTEBOOK,
    SHOTS,
    browser_page,
    jupyter_base,
    no_widget_errors,
    open_notebook,
    run_through,
    shut_down_kernels,
    wait_js,
)

from acd.api import apikeys
from lab.envfile import read_env
from lab.lessons import RunningLab

NB02 = "02_availability_and_laa.ipynb"
NB04 = "04_dispatcher.ipynb"
NB06 = "06_api_and_simulator.ipynb"


@pytest.mark.long
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_feature_widgets_in_jupyterlab(running_lab: RunningLab, copies: Path) -> None:
    lab_env = read_env(Path(running_lab.env["LAB_ENV_FILE"]))
    base, token = jupyter_base(running_lab)
    folder = f"notebooks/{copies.name}"
    try:
        with browser_page() as page:
            _check_explanation_view(page, base, token, f"{folder}/{NB02}",
                                    lab_env["REDIS_ADMIN_URL"])
            _check_offers_board(page, base, token, f"{folder}/{NB04}",
                                lab_env["REDIS_ADMIN_URL"])
            _check_stats_board(page, base, token, f"{folder}/{NB06}", lab_env)
    finally:
        print("shut down:", shut_down_kernels(running_lab, folder))


def _panel(page: Any) -> Any:
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")


def _check_explanation_view(page: Any, base: str, token: str, path: str,
                            admin_url: str) -> None:
    open_notebook(page, base, token, path)
    run_through(page, "why = await ExplanationView.create(")
    panel = _panel(page)
    first = panel.locator("[data-explained='refunds-fewest_skills']")
    first.wait_for(timeout=60_000)
    wait_js(page, f"{NOTEBOOK}.sessionContext.session.kernel.status === 'idle'", 60)
    no_widget_errors(page)
    assert first.get_attribute("data-decided") == "fewest_skills", first.inner_text()
    assert first.get_attribute("data-agent") == "spec"  # one skill beats four
    page.screenshot(path=str(SHOTS / "nb02_explanation_first.png"))

    # The learner picks the other contact in the widget's list.
    picker = panel.locator(".widget-dropdown select").last
    label = next(o for o in picker.locator("option").all_inner_texts()
                 if o.startswith("refunds-longest_available"))
    picker.select_option(label=label)
    other = panel.locator("[data-explained='refunds-longest_available']")
    other.wait_for(timeout=15_000)
    shown_agent = other.get_attribute("data-agent")
    assert other.get_attribute("data-decided") == "longest_available", other.inner_text()
    no_widget_errors(page)
    page.screenshot(path=str(SHOTS / "nb02_explanation_picked.png"))

    # What the browser shows is what Redis recorded: the contact's agent, first candidate.
    with redis.Redis.from_url(admin_url, decode_responses=True, socket_timeout=5) as admin:
        raw = admin.execute_command("JSON.GET", "{acd:nb02}:contact:refunds-longest_available",
                                    "$.agent", "$.explanation")
    doc = json.loads(raw)
    record = doc["$.explanation"][0]
    record = json.loads(record) if isinstance(record, str) else record
    assert doc["$.agent"] == [shown_agent] == ["gen"], (doc["$.agent"], shown_agent)
    assert json.dumps(record).find('"gen"') >= 0, record


def _check_offers_board(page: Any, base: str, token: str, path: str,
                        admin_url: str) -> None:
    open_notebook(page, base, token, path)
    run_through(page, 'contact_id="c13"')
    panel = _panel(page)
    # The board shows twice (Step 7's cell, and again under the "your turn" cell): the
    # learner uses the last, the one under the cell she ran.
    offer = panel.locator("[data-offer='a5|c13']").last
    offer.wait_for(timeout=60_000)
    left = float(offer.locator("[data-left]").get_attribute("data-left") or "nan")
    assert 0 < left <= 15, left  # the server's deadline, counting down
    no_widget_errors(page)
    page.screenshot(path=str(SHOTS / "nb04_offer_shown.png"))

    row = _offer_row(page, "a5", "c13")
    row.locator("button", has_text="Reject").click()
    panel.locator("[data-answer='reject']").last.wait_for(timeout=15_000)
    panel.locator("[data-misses='a5|1']").first.wait_for(timeout=15_000)
    # The back-off (5 s) ends, a dispatcher offers c13 to a5 again: a new countdown.
    panel.locator("[data-offer='a5|c13']").last.wait_for(timeout=30_000)
    _offer_row(page, "a5", "c13").locator("button", has_text="Accept").click()
    panel.locator("[data-answer='accept']").last.wait_for(timeout=15_000)
    no_widget_errors(page)
    page.screenshot(path=str(SHOTS / "nb04_offer_accepted.png"))

    with redis.Redis.from_url(admin_url, decode_responses=True, socket_timeout=5) as admin:
        contact = json.loads(admin.execute_command(
            "JSON.GET", "{acd:nb04}:contact:c13", "$.state", "$.agent"))
        agent = json.loads(admin.execute_command(
            "JSON.GET", "{acd:nb04}:agent:a5", "$.state", "$.contact"))
    assert contact == {"$.state": ["assigned"], "$.agent": ["a5"]}, contact
    assert agent == {"$.state": ["busy"], "$.contact": ["c13"]}, agent


def _offer_row(page: Any, agent: str, contact: str) -> Any:
    """The board's row showing this offer: its innermost box (text, Accept, Reject)."""
    offer = page.locator(f"[data-offer='{agent}|{contact}']")
    return _panel(page).locator(".widget-hbox", has=offer).last


def _check_stats_board(page: Any, base: str, token: str, path: str,
                       lab_env: dict[str, str]) -> None:
    open_notebook(page, base, token, path)
    run_through(page, "board = StatsBoard(")
    panel = _panel(page)
    panel.locator("code[data-combination='French']").wait_for(timeout=60_000)
    panel.locator("[data-live='1']").wait_for(timeout=15_000)
    no_widget_errors(page)

    # Another client queues a contact: the board shows it with no cell run.
    _queue(lab_env, "browser-de-1", ["German"])
    german = panel.locator("code[data-combination='German']")
    german.wait_for(timeout=15_000)
    assert german.get_attribute("data-row") == "1|parked|0|0", german.get_attribute("data-row")
    page.screenshot(path=str(SHOTS / "nb06_stats_board_live.png"))

    # Stop: the board says it is a snapshot; start: it follows again and catches up.
    panel.locator("button", has_text="stop").last.click()
    panel.locator("[data-live='0']").wait_for(timeout=15_000)
    _queue(lab_env, "browser-it-1", ["Italian"])
    panel.locator("button", has_text="start").last.click()
    panel.locator("[data-live='1']").wait_for(timeout=15_000)
    panel.locator("code[data-combination='Italian']").wait_for(timeout=15_000)
    no_widget_errors(page)
    page.screenshot(path=str(SHOTS / "nb06_stats_board_restarted.png"))


def _queue(lab_env: dict[str, str], contact_id: str, skills: list[str]) -> None:
    """A caller from outside the notebook: a POST to the lab's REST API."""
    answer = httpx.post(f"{lab_env['API_URL']}/v1/centers/nb06/contacts",
                        json={"id": contact_id, "skills": skills}, timeout=10,
                        headers=apikeys.headers(lab_env["ACD_API_KEY"]))
    assert answer.status_code == 201, answer.text
