"""The security headers every page, static file and ``/docs`` answer carries.

Every page answer carries a strict Content-Security-Policy (no inline script, nothing from
other origins), ``nosniff`` and ``frame-ancestors 'none'``.
"""

from __future__ import annotations

from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(self), geolocation=(), microphone=()",
}


class SecureStaticFiles(StaticFiles):
    """Static files with the same ``nosniff``/framing headers as the pages."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        response.headers.setdefault("Cache-Control", "no-cache")
        return response
