"""/docs (Swagger UI) and /redoc work offline: every asset comes from the API itself.

In process: the pages reference only local URLs, and each one is served with a fitting
content type. In a real headless Chromium (Debian's /usr/bin/chromium through Playwright;
it never downloads a browser) against a real uvicorn: with every request that is not to
127.0.0.1 aborted, Swagger UI and ReDoc render the API's operations, and the pages asked
for nothing off the machine (the pages' Content-Security-Policy keeps ReDoc from asking for
Redocly's logo). Screenshots go to screenshots/ (git-ignored).
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from jupyter_browser import FLAGS, SHOTS, chromium

from lab.apiserver import ApiServer

AGENTS_PATH = "/v1/centers/{center}/agents"

# What each kind of asset must be served as.
CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png",
                 ".json": "application/json"}


class _Urls(HTMLParser):
    """Every URL a page makes the browser fetch: src, href and ReDoc's spec-url."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "spec-url") and value:
                self.urls.append(value)


def _referenced(html: str) -> list[str]:
    parser = _Urls()
    parser.feed(html)
    return parser.urls


@pytest.mark.parametrize(("page", "expected"), [
    ("/docs", {"/docs-static/swagger-ui-bundle.js", "/docs-static/swagger-ui.css",
               "/docs-static/favicon.png"}),
    ("/redoc", {"/docs-static/redoc.standalone.js", "/docs-static/favicon.png",
                "/openapi.json"}),
])
async def test_docs_pages_reference_only_local_assets(client: httpx.AsyncClient, page: str,
                                                      expected: set[str]) -> None:
    r = await client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "img-src 'self' data:;" in csp
    assert "http" not in csp and "*" not in csp
    # No absolute URL at all: not in a tag, not in the inline script (Swagger's spec URL).
    assert "http://" not in r.text and "https://" not in r.text and "//cdn" not in r.text
    urls = set(_referenced(r.text))
    assert urls == expected
    if page == "/docs":
        assert "url: '/openapi.json'" in r.text
        urls.add("/openapi.json")
    for url in sorted(urls):
        assert url.startswith("/") and not url.startswith("//"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
        kind = CONTENT_TYPES[Path(urlsplit(url).path).suffix]
        assert kind in asset.headers["content-type"], (url, asset.headers["content-type"])
        assert len(asset.content) > 1000, url


async def test_docs_assets_are_the_real_bundles(client: httpx.AsyncClient) -> None:
    swagger = await client.get("/docs-static/swagger-ui-bundle.js")
    redoc = await client.get("/docs-static/redoc.standalone.js")
    assert "SwaggerUIBundle" in swagger.text[:2000]
    assert "Redoc" in redoc.text[:2000]
    assert (await client.get("/docs/oauth2-redirect")).status_code == 200
    assert (await client.get("/docs-static/missing.js")).status_code == 404
    spec = (await client.get("/openapi.json")).json()
    assert not any(p in spec["paths"] for p in ("/docs", "/redoc", "/docs/oauth2-redirect"))


# -- a real browser, no network --------------------------------------------------------


class _Offline:
    """A page on which every request that is not to 127.0.0.1 is aborted and recorded."""

    def __init__(self, browser: Any) -> None:
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.blocked: list[str] = []
        self.local: list[str] = []
        self.errors: list[str] = []
        self.refused: list[str] = []  # what the page's Content-Security-Policy refused
        self.page.route("**/*", self._route)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("console", self._console)

    def _console(self, msg: Any) -> None:
        if msg.type == "error" and "Content Security Policy" in msg.text:
            self.refused.append(msg.text)

    def _route(self, route: Any) -> None:
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1":
            self.local.append(url)
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def open(self, url: str) -> None:
        self.page.goto(url, wait_until="load", timeout=30_000)


def _check_swagger(browser: Any, server: ApiServer) -> None:
    tab = _Offline(browser)
    tab.open(f"{server.url}/docs")
    op = tab.page.locator(f'.opblock-summary-path[data-path="{AGENTS_PATH}"]').first
    op.wait_for(timeout=30_000)
    assert tab.page.locator(".opblock").count() > 20
    assert "Redis ACD" in tab.page.locator(".info .title").inner_text()
    op.click()  # expanding an operation renders its parameters from the schema
    tab.page.locator(".opblock.is-open .parameters-container").first.wait_for(timeout=10_000)
    tab.page.screenshot(path=str(SHOTS / "api_docs_swagger.png"))
    assert not tab.blocked, f"/docs asked for {tab.blocked}"
    assert not tab.errors, tab.errors
    assert not tab.refused, tab.refused
    fetched = {urlsplit(u).path for u in tab.local}
    assert {"/docs", "/docs-static/swagger-ui-bundle.js", "/docs-static/swagger-ui.css",
            "/openapi.json"} <= fetched, fetched
    tab.page.close()


def _check_redoc(browser: Any, server: ApiServer) -> None:
    tab = _Offline(browser)
    tab.open(f"{server.url}/redoc")
    tab.page.locator(".api-content h1", has_text="Redis ACD").first.wait_for(timeout=30_000)
    tab.page.wait_for_function(
        "(path) => document.body.innerText.includes(path)", arg=AGENTS_PATH, timeout=30_000)
    assert tab.page.locator(".menu-content li").count() > 20
    assert "Something went wrong" not in tab.page.locator("body").inner_text()
    tab.page.screenshot(path=str(SHOTS / "api_docs_redoc.png"))
    assert not tab.blocked, f"/redoc asked for {tab.blocked}"
    assert not tab.errors, tab.errors
    # ReDoc's menu always shows Redocly's logo from their CDN; the policy refuses it
    # before any request is made (without the policy, the route above saw the request).
    # Nothing else may be refused: the pages must not need anything from outside.
    print("/redoc: the Content-Security-Policy refused", tab.refused)
    assert all("cdn.redoc.ly/redoc/logo-mini.svg" in r for r in tab.refused), tab.refused
    fetched = {urlsplit(u).path for u in tab.local}
    assert {"/redoc", "/docs-static/redoc.standalone.js", "/openapi.json"} <= fetched, fetched
    tab.page.close()


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_docs_render_in_chromium_with_no_network(uvicorn_server: ApiServer) -> None:
    executable = chromium()
    if executable is None:
        print("SKIP: /usr/bin/chromium is missing and could not be installed")
        pytest.skip("/usr/bin/chromium is missing and could not be installed")
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(exist_ok=True)
    assert urljoin(uvicorn_server.url, "/").startswith("http://127.0.0.1:")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=FLAGS)
        try:
            _check_swagger(browser, uvicorn_server)
            _check_redoc(browser, uvicorn_server)
        finally:
            browser.close()
