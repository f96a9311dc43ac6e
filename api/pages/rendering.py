"""A page template rendered in the page's language, with the language switch and the security headers."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from api.pages.headers import SECURITY_HEADERS
from authenticator.i18n import LOCALES, NATIVE_NAMES, Translator, negotiate, script_messages

API_DIR = Path(__file__).resolve().parents[1]
TEMPLATE_DIR = API_DIR / "templates"
STATIC_DIR = API_DIR / "static"


def translator(request: Request) -> Translator:
    """The page language: ``?lang=`` when it names one of :data:`LOCALES`, else ``Accept-Language``."""
    return Translator(negotiate(request.headers.get("accept-language"), request.query_params.get("lang")))


def language_links(request: Request, tr: Translator) -> list[dict[str, Any]]:
    """The language switch: this page in every language (``?lang=``), the current one marked."""
    out = []
    for locale in LOCALES:
        params = dict(request.query_params)
        params["lang"] = locale
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params.items())
        out.append(
            {
                "locale": locale,
                "name": NATIVE_NAMES[locale],
                "href": f"{request.url.path}?{query}",
                "current": locale == tr.locale,
            }
        )
    return out


def render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200, tr: Translator | None = None
) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.web_templates
    tr = tr or translator(request)
    explicit = request.query_params.get("lang") in LOCALES
    page = {
        "_": tr,
        "lang": tr.locale,
        "languages": language_links(request, tr),
        # links between pages keep a language chosen with the switch
        "lang_query": f"?lang={tr.locale}" if explicit else "",
        # the scripts' messages in this language (empty in English, the scripts' own)
        "script_catalogue": tr.catalogue(script_messages()),
    }
    response = templates.TemplateResponse(request, name, {**context, **page}, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Language"] = tr.locale
    response.headers["Vary"] = "Accept-Language"
    return response


def not_found(request: Request, message: str) -> HTMLResponse:
    return render(request, "not_found.html", {"message": message}, status_code=404)
