"""``/docs`` (Swagger UI) and ``/redoc`` served with no request off the machine.

FastAPI's own docs pages load Swagger UI, ReDoc and the favicon from a CDN, so they are
blank without internet, and workshops are often offline. The same pages are served here
with those assets from the pinned ``fastapi-offline`` wheel (Swagger UI's dist bundle and
CSS, ReDoc's standalone bundle, a favicon), mounted as static files. Only its files are
used: the app stays our own FastAPI subclass.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
STATIC_URL = "/docs-static"
# Swagger UI's swagger-ui-bundle.js and swagger-ui.css, ReDoc's redoc.standalone.js,
# favicon.png. A real directory inside the installed wheel (StaticFiles needs one).
ASSETS = Path(str(files("fastapi_offline") / "static"))
# The pages may load and connect to nothing but this server. ReDoc's side menu shows
# Redocly's logo from their CDN whatever its options; this policy makes the browser
# refuse it (the menu hides a logo that fails to load) instead of asking the internet.
# Inline script and styles: FastAPI's page starts Swagger UI inline, and both UIs style
# themselves inline; data: images are Swagger UI's icons; ReDoc searches in a blob: worker.
CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; "
       "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
       "worker-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'self'; "
       "form-action 'self'")


def _local_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = CSP
    return page


def install(app: FastAPI) -> None:
    """Add the docs pages and their assets. The app must be created with
    ``docs_url=None, redoc_url=None`` so FastAPI does not add its CDN-based ones."""
    app.mount(STATIC_URL, StaticFiles(directory=ASSETS), name="docs-static")

    def prefix(request: Request) -> str:
        # Behind a proxy that mounts the API under a path, every URL needs that path.
        return str(request.scope.get("root_path", "")).rstrip("/")

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = prefix(request)
        return _local_only(get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT_URL}",
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters))

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = prefix(request)
        return _local_only(get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            with_google_fonts=False))  # the fonts would come from Google's servers
