"""The widgets under random clicks in a real browser: JupyterLab + Chromium (Playwright).

A scratch notebook (in a temporary folder, never the committed notebooks) shows the
agent board, the contact composer and the live view of one center, while two real
dispatcher processes (``python -m acd.dispatcher``, as ./start.sh runs them) serve it.
JupyterLab keeps its default ``commsOverSubshells`` (comm messages go to a kernel
subshell: another thread with another event loop), which is what broke the widgets.

The test clicks at random: board skill and availability toggles, composer skill toggles
and its checkbox, Enqueue, the live view's stop and start. Now and then it changes the
center itself, as others would (completes a contact, flips the dispatch mode). After
each step it runs a check in the kernel (through the notebook's kernel connection, on
the main shell): wait until every click so far has reached the widgets, settle, then
``lab.widgets.check.compare`` - what each widget shows against what Redis holds, on a
quiet events stream. Then it waits until the page itself shows what the kernel-side
widgets hold. At the end: no error output, no "Error displaying widget", no
"RuntimeError" anywhere on the page or in the kernel's log, no widget error.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from acd_invariants import dispatcher_processes
from jupyter_browser import FLAGS, NOTEBOOK, chromium, wait_js

from acd import Center, ContactState, connect
from lab.embedded import free_port
from lab.processes import terminate

REPO = Path(__file__).resolve().parents[2]
ACTIONS = int(os.environ.get("WIDGET_STRESS_ACTIONS", "200"))
SEED = int(os.environ.get("WIDGET_STRESS_SEED", "20261201"))
SKILLS = ["English", "Spanish", "Billing", "Support"]
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"

SETUP = """\
import json
from acd import Center, connect
from lab.widgets import AgentBoard, ContactComposer, LiveView
from lab.widgets.check import compare

center = Center(connect(), {center!r})
board = await AgentBoard.create(center)
composer = await ContactComposer.create(center)
view = LiveView(center, interval=0.25, max_seconds=None)
view.start()
widgets = [board, composer, view]


async def check(intents):
    result = await compare(widgets, timeout=3.0, intents=intents)
    print(json.dumps({{
        "mismatches": result.mismatches, "transient": result.transient,
        "transient_diffs": result.transient_diffs,
        "seconds": result.seconds,
        "errors": [f"{{type(w).__name__}}: {{e!r}}" for w in widgets for e in w.errors],
        "refusals": [str(r) for r in board.refusals],
        "intents": sum(w.intents for w in widgets),
        "elsewhere": sum(w.intents_elsewhere for w in widgets),
        "shown": {{type(w).__name__: w.displayed() for w in widgets}}}}))"""

# What the page shows, read from the DOM (the widgets' classes and data attributes).
READ_PAGE = f"""() => {{
    const panel = document.querySelector('{PANEL}');
    const active = b => b.classList.contains('mod-active');
    const rows = [...panel.querySelectorAll('.acd-row')].filter(r => r.offsetParent !== null)
        .map(r => ({{
            agent: r.querySelector('code').innerText,
            skills: [...r.querySelectorAll('.acd-skill')].filter(active)
                .map(b => b.innerText.trim()).sort(),
            state: r.querySelector('.acd-avail').innerText.trim(),
            locked: r.querySelector('.acd-avail').disabled}}));
    const attr = (sel, name) => {{ const e = panel.querySelector(sel);
                                    return e ? e.getAttribute(name) : null; }};
    return {{
        rows,
        ranking: [...panel.querySelectorAll('table.acd-ranking tr[data-agent]')]
            .map(tr => tr.getAttribute('data-agent')),
        need: [...panel.querySelectorAll('.acd-need')].filter(active)
            .map(b => b.innerText.trim()).sort(),
        result: attr('.acd-result', 'data-state'),
        queue: attr('[data-queue]', 'data-queue'),
        live: attr('.acd-live', 'data-live')}};
}}"""

EXECUTE = f"""async (code) => {{
    const kernel = {NOTEBOOK}.sessionContext.session.kernel;
    const future = kernel.requestExecute({{code, store_history: false}});
    let out = '', err = null;
    future.onIOPub = (msg) => {{
        const t = msg.header.msg_type;
        if (t === 'stream') out += msg.content.text;
        if (t === 'error') err = msg.content.ename + ': ' + msg.content.evalue;
    }};
    await future.done;
    return {{out, err}};
}}"""


def page_view(shown: dict[str, Any]) -> dict[str, Any]:
    """What the page must show, from the kernel-side widgets' displayed()."""
    board, composer, view = shown["AgentBoard"], shown["ContactComposer"], shown["LiveView"]
    contact = composer["contact"]
    return {
        "rows": [{"agent": r["agent"], "skills": r["skills"], "state": r["state"],
                  "locked": r["locked"]} for r in board["rows"]],
        "ranking": composer["ranking"], "need": sorted(composer["skills"]),
        "result": contact["state"] if contact else None,
        "queue": str(view["queue_length"]), "live": "1" if view["following"] else "0"}


@pytest.fixture
def scratch_lab(redis_url: str, tmp_path: Path) -> Iterator[tuple[str, str, Path, str]]:
    """A JupyterLab serving a temporary folder with the scratch notebook."""
    center = f"stress-{uuid.uuid4().hex[:8]}"
    root = tmp_path / "root"
    root.mkdir()
    cells = [SETUP.format(center=center), "board", "composer", "view"]
    notebook = {"cells": [{"cell_type": "code", "metadata": {}, "source": c, "outputs": [],
                           "execution_count": None} for c in cells],
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                            "language": "python"}},
                "nbformat": 4, "nbformat_minor": 5}
    (root / "stress.ipynb").write_text(json.dumps(notebook))
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "REDIS_URL": redis_url, "ACD_ENV": "embedded",
           "PYTHONPATH": str(REPO), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    log_path = tmp_path / "jupyter.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip", "127.0.0.1",
         f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         f"--LabApp.user_settings_dir={tmp_path / 'settings'}",
         f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
         "--LabApp.expose_app_in_browser=True", "--ServerApp.port_retries=0",
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("JupyterLab did not start:\n"
                                       + log_path.read_text()[-3000:]) from None
                time.sleep(0.3)
        yield base, token, log_path, center
    finally:
        terminate(proc, timeout=15)
        log.close()


class Others:
    """Changes made by someone else than the widgets: another client of the center.

    Its own thread and loop: Playwright's sync API already runs a loop in this thread.
    """

    def __init__(self, redis_url: str, center: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.redis = connect(redis_url)
        self.c = Center(self.redis, center)

    def run(self, job: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(job(self.c), self.loop).result(timeout=10)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.redis.aclose(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    def setup(self) -> None:
        async def job(c: Center) -> None:
            for i, skills in enumerate([["English", "Billing"], ["English", "Support"],
                                        ["Spanish", "Billing"], ["English", "Spanish"],
                                        ["Support"], ["English", "Billing", "Support"]]):
                await c.create_agent(f"a{i + 1}", f"Agent{i + 1}", "Stress", skills,
                                     available=i % 2 == 0)
                await asyncio.sleep(0.003)  # distinct availability times
        self.run(job)

    def complete_one(self, rng: random.Random) -> str | None:
        async def job(c: Center) -> str | None:
            busy = [a for a in await c.list_agents() if a.contact]
            if not busy:
                return None
            contact = rng.choice(busy).contact
            assert contact is not None
            ended = await c.complete_contact(contact)
            assert ended.state is ContactState.COMPLETED
            return contact
        return self.run(job)  # type: ignore[no-any-return]

    def flip_mode(self) -> str:
        async def job(c: Center) -> str:
            now = "manual" if await c.dispatch_mode() == "automatic" else "automatic"
            await c.set_dispatch_mode(now)
            return now
        return self.run(job)  # type: ignore[no-any-return]


def _act(page: Any, rng: random.Random, kind: str | None = None) -> str | None:
    """One random click on an enabled control; returns what it was (None: nothing to
    click of that kind)."""
    panel = page.locator(PANEL)
    kind = kind or rng.choice(["board-skill", "board-skill", "board-available",
                               "board-available", "need", "need", "enqueue", "live",
                               "dispatch-now"])
    if kind == "board-skill":
        buttons = panel.locator(".acd-row .acd-skill:visible")
    elif kind == "board-available":
        buttons = panel.locator(".acd-row .acd-avail:visible:enabled")
    elif kind == "need":
        buttons = panel.locator(".acd-need")
    elif kind == "enqueue":
        buttons = panel.locator(".acd-enqueue")
    elif kind == "live":
        buttons = panel.locator(".acd-stop:enabled, .acd-start:enabled")
    else:
        buttons = panel.locator(".widget-checkbox input")
    count = buttons.count()
    if count == 0:
        return None
    target = buttons.nth(rng.randrange(count))
    label = target.inner_text().strip() if kind != "dispatch-now" else "checkbox"
    target.click(timeout=5_000)
    return f"{kind}:{label}"


def _page_errors(page: Any, log_path: Path) -> list[str]:
    found = []
    text = page.inner_text(PANEL)
    for needle in ("Error displaying widget", "RuntimeError", "Traceback",
                   "attached to a different loop"):
        if needle in text:
            found.append(f"page shows {needle!r}")
    outputs = page.evaluate(f"""() => {NOTEBOOK}.content.widgets
        .filter(c => c.model.type === 'code')
        .flatMap(c => c.model.outputs.toJSON())
        .filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue)""")
    found += [f"error output {o}" for o in outputs]
    log = log_path.read_text()
    for needle in ("Traceback", "RuntimeError", "Exception in message handler"):
        if needle in log:
            found.append(f"kernel log has {needle!r}: {log[log.index(needle):][:300]}")
    return found


@pytest.mark.slow
@pytest.mark.long  # 90 s of random clicks: the long tier, so a plain run stays under 15
@pytest.mark.timeout(290)
def test_random_clicks_show_what_redis_holds(scratch_lab: tuple[str, str, Path, str],
                                             redis_url: str) -> None:
    executable = chromium()
    if executable is None:
        pytest.skip("/usr/bin/chromium is missing and could not be installed")
    base, token, log_path, center = scratch_lab
    others = Others(redis_url, center)
    try:
        others.setup()
        figures, problems = _stress(base, token, log_path, center, redis_url, others,
                                    executable)
    finally:
        others.close()
    print("widget stress:", json.dumps(figures))
    for problem in problems[:20]:
        print(" ", problem)
    assert figures["actions"] >= ACTIONS
    assert figures["mismatches"] == 0 and figures["screen_mismatches"] == 0, problems[:10]
    # A settled display that differed from Redis on a quiet stream, even if it caught up
    # by itself later, was a lie while it lasted.
    assert figures["transient"] == 0, problems[:10]
    assert figures["errors"] == 0, problems[:10]


def _stress(base: str, token: str, log_path: Path, center: str, redis_url: str,
            others: Others, executable: str) -> tuple[dict[str, Any], list[str]]:
    from playwright.sync_api import sync_playwright

    rng = random.Random(SEED)
    figures: dict[str, Any] = {"actions": 0, "bursts": 0, "skipped": 0, "others": 0,
                               "mismatches": 0,
                               "transient": 0, "screen_mismatches": 0, "errors": 0}
    problems: list[str] = []
    started = time.monotonic()
    with dispatcher_processes(center, redis_url, 2, idle_ms=500), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            page.goto(f"{base}/lab/tree/stress.ipynb?token={token}",
                      wait_until="domcontentloaded", timeout=60_000)
            wait_js(page, f"{NOTEBOOK}.context.path === 'stress.ipynb' && "
                     f"{NOTEBOOK}.sessionContext.session.kernel.status === 'idle'", 60)
            page.evaluate("async () => { await window.jupyterapp.commands.execute("
                          "'notebook:run-all-cells'); }")
            page.locator(f"{PANEL} .acd-live[data-live='1']").wait_for(timeout=60_000)
            wait_js(page, f"{NOTEBOOK}.sessionContext.session.kernel.status === 'idle'", 60)
            subshells = page.evaluate(f"""() => {{ const k = {NOTEBOOK}.sessionContext
                .session.kernel; return [k.commsOverSubshells, k.supportsSubshells]; }}""")
            print("JupyterLab comms over subshells:", subshells)
            ready = time.monotonic()

            def check(intents: int, what: str) -> dict[str, Any]:
                reply = page.evaluate(EXECUTE, f"await check({intents})")
                assert reply["err"] is None, f"after {what}: {reply['err']}"
                result: dict[str, Any] = json.loads(reply["out"].strip().splitlines()[-1])
                figures["transient"] += result["transient"]
                if result["transient_diffs"] and len(problems) < 40:
                    problems.append(f"(converged) after {what}: {result['transient_diffs']}")
                if result["mismatches"] or result["errors"]:
                    figures["mismatches"] += len(result["mismatches"])
                    figures["errors"] += len(result["errors"])
                    problems.append(f"after {what}: {result['mismatches']} {result['errors']}")
                want = page_view(result["shown"])
                try:  # the browser draws what the kernel sent a moment later
                    page.wait_for_function(
                        f"(want) => JSON.stringify(({READ_PAGE})()) === JSON.stringify(want)",
                        arg=want, timeout=3_000)
                except Exception:  # noqa: BLE001 - counted and reported below
                    figures["screen_mismatches"] += 1
                    problems.append(f"after {what}: the page shows "
                                    f"{page.evaluate(READ_PAGE)}, the widgets hold {want}")
                return result

            result = check(0, "start")
            intents = 0
            while figures["actions"] < ACTIONS:
                if figures["actions"] and figures["actions"] % 7 == 0 and rng.random() < 0.8:
                    done = others.complete_one(rng)
                    what = f"another client completed {done}"
                    if figures["actions"] % 35 == 0:
                        what += f", set dispatch mode {others.flip_mode()}"
                    figures["others"] += 1
                    check(intents, what)
                # Mostly one click then a check; sometimes a burst of skill toggles (always
                # enabled) clicked as fast as the browser can, checked once at the end.
                burst = rng.randint(2, 4) if rng.random() < 0.15 else 1
                done_now = []
                for _ in range(burst):
                    kind = rng.choice(["board-skill", "need"]) if burst > 1 else None
                    action = _act(page, rng, kind)
                    if action is None:
                        figures["skipped"] += 1
                        continue
                    done_now.append(action)
                if not done_now:
                    continue
                intents += len(done_now)
                figures["actions"] += len(done_now)
                figures["bursts"] += burst > 1
                result = check(intents, f"click {figures['actions']} ({', '.join(done_now)})")
            figures["elsewhere"] = result["elsewhere"]
            figures["refusals"] = len(result["refusals"])
            page_errors = _page_errors(page, log_path)
            figures["errors"] += len(page_errors)
            problems += page_errors
            figures["seconds"] = round(time.monotonic() - ready, 1)
            figures["total_seconds"] = round(time.monotonic() - started, 1)
        finally:
            browser.close()
    return figures, problems
