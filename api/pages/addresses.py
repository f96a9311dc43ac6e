"""The addresses that leave the trace page (the printed address, the QR code, the CLI hint).

They are built from the configured ``public_url`` (``AUTHENTICATOR_PUBLIC_URL``), never from the
request's Host header, which any client (or a cache in front of the service) can set. Without one
they are the path alone: the QR code holds the page's path, and the page's script shows the
browser's own origin in front of the path (``location.origin``, which the server never sees or sets).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import qrcode

from authenticator.i18n import ENGLISH, Translator


def public_address(public_url: str | None, path: str) -> str:
    """``path`` (absolute, starting with ``/``) under the configured public base URL, or the path
    alone when none is configured. Never derived from the request (its Host header)."""
    if not path.startswith("/"):
        raise ValueError("path must start with /")
    return f"{public_url}{path}" if public_url else path


def trace_addresses(public_url: str | None, item_id: str, tr: Translator = ENGLISH) -> dict[str, Any]:
    """The trace page's address, its QR code's text and caption, and the CLI hint's trace URL."""
    quoted = quote(item_id, safe="")
    page = public_address(public_url, f"/t/{quoted}")
    relative = not public_url
    return {
        "address": page,
        "trace_address": public_address(public_url, f"/v1/items/{quoted}/trace"),
        "relative_address": relative,
        "qr_text": page,
        "qr_title": (
            tr("QR code of this page's path only (the server has no public address configured): {page}", page=page)
            if relative
            else tr("QR code of this page's address: {page}", page=page)
        ),
    }


def qr_svg(text: str, title: str) -> str:
    """An SVG QR code of ``text`` (one path, no styles, so the page's CSP holds)."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    qr.add_data(text)
    qr.make(fit=True)
    matrix = qr.get_matrix()
    n = len(matrix)
    parts = []
    for y, row in enumerate(matrix):
        x = 0
        while x < n:
            if row[x]:
                start = x
                while x < n and row[x]:
                    x += 1
                parts.append(f"M{start},{y}h{x - start}v1h-{x - start}z")
            else:
                x += 1
    safe_title = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {n} {n}" class="qr" role="img" '
        f'aria-labelledby="qr-title" shape-rendering="crispEdges">'
        f'<title id="qr-title">{safe_title}</title>'
        f'<rect width="{n}" height="{n}" fill="#fff"/><path fill="#000" d="{"".join(parts)}"/></svg>'
    )
