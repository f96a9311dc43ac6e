"""``/docs``: the interactive API reference (Swagger UI) with no CDN and a strict CSP.

FastAPI's own ``/docs`` loads Swagger UI's script and styles from a CDN and starts it with an
inline script, so it runs with no Content-Security-Policy at all. Here the same Swagger UI
files come from the ``fastapi-offline`` package (MIT; it vendors ``swagger-ui-dist``,
Apache-2.0) and are served under ``/docs-assets``; the page is a small static HTML document whose
only scripts are that bundle and ``/static/docs-init.js`` (which reads the OpenAPI address from a
``data-`` attribute), so the CSP allows scripts from this origin only, never inline ones.
ReDoc is not served (it needs inline styles and a blob: worker): ``/redoc`` redirects here.
"""

from __future__ import annotations

import html
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from api.pages.headers import SECURITY_HEADERS, SecureStaticFiles

DOCS_URL = "/docs"
ASSETS_URL = "/docs-assets"
ASSET_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
DOCS_HEADERS = {**SECURITY_HEADERS, "Content-Security-Policy": DOCS_CSP, "Cache-Control": "no-cache"}

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title}</title>
  <link rel="icon" href="{root}/static/favicon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="{root}{assets}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui" data-openapi-url="{openapi}"></div>
  <script src="{root}{assets}/swagger-ui-bundle.js"></script>
  <script src="{root}/static/docs-init.js"></script>
</body>
</html>
"""


def docs_page(app: FastAPI, root_path: str = "") -> str:
    """The ``/docs`` HTML: external scripts and styles from this origin only."""
    root = html.escape(root_path.rstrip("/"), quote=True)
    return PAGE.format(
        title=html.escape(f"{app.title} API reference"),
        root=root,
        assets=ASSETS_URL,
        openapi=f"{root}{html.escape(app.openapi_url or '/openapi.json', quote=True)}",
    )


def install(app: FastAPI) -> None:
    """Serve ``/docs`` and its assets; call with FastAPI's own ``docs_url``/``redoc_url`` set to None."""
    for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
        if not (ASSET_DIR / name).is_file():  # a broken install: say so at start, not in a browser
            raise RuntimeError(f"fastapi-offline has no {name} in {ASSET_DIR}")
    app.mount(ASSETS_URL, SecureStaticFiles(directory=str(ASSET_DIR)), name="docs-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        return HTMLResponse(docs_page(app, str(request.scope.get("root_path", ""))), headers=DOCS_HEADERS)

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> RedirectResponse:
        return RedirectResponse(DOCS_URL, status_code=307, headers=SECURITY_HEADERS)
