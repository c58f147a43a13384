"""The scaling curves: assignments per second against agents, both dispatchers, log axes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def draw(records: Sequence[dict[str, Any]], html: Path) -> list[Path]:
    """Write ``html`` (self-contained: plotly.js inline, opens offline) and, when a static
    image engine works without downloading a browser, a PNG beside it. Returns the files."""
    import plotly.graph_objects as go  # type: ignore[import-untyped]

    fig = go.Figure()
    series: dict[str, list[tuple[int, float]]] = {}
    for r in records:
        if r.get("kind") != "throughput":
            continue
        name = "naive (BZPOPMIN + ZINTER)" if r["dispatcher"] == "naive" else (
            f"real acd_dispatch, batch {r['batch']}")
        series.setdefault(name, []).append((r["agents"], r["assignments_per_s"]))
    for name, points in sorted(series.items(), key=lambda kv: (kv[0].startswith("real"), kv[0])):
        points.sort()
        fig.add_trace(go.Scatter(
            x=[p[0] for p in points], y=[p[1] for p in points], name=name,
            mode="lines+markers",
            line={"dash": "solid" if ("naive" in name or "batch 200" in name) else "dot"}))
    fig.update_layout(
        title="Dispatch throughput, contacts pre-queued (one Redis, one run)",
        xaxis={"title": "available agents", "type": "log"},
        yaxis={"title": "assignments per second", "type": "log"},
        template="plotly_white", legend={"x": 0.01, "y": 0.5})
    html.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(html, include_plotlyjs=True)
    written = [html]
    png = html.with_suffix(".png")
    if screenshot(html, png):
        written.append(png)
    return written


def screenshot(html: Path, png: Path, chromium: str = "/usr/bin/chromium") -> bool:
    """PNG of the HTML plot with Playwright driving the system's Chromium (Debian's
    package; tests/run installs it). Never downloads a browser: without Chromium or
    Playwright there is no PNG, and the HTML is the plot."""
    if not Path(chromium).exists():
        return False
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return False
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"])
            try:
                page = browser.new_page(viewport={"width": 900, "height": 550})
                page.goto(html.resolve().as_uri())
                page.wait_for_selector(".main-svg", timeout=15000)
                page.screenshot(path=str(png))
            finally:
                browser.close()
    except Exception:  # noqa: BLE001 - a PNG is a nicety; the HTML is written already
        return False
    return png.exists()
