"""The one place where errors become HTTP answers: RFC 9457 ``application/problem+json``.

Every :class:`~authenticator.errors.AuthenticatorError` carries its status and code; FastAPI's
validation errors become 422 (400 for a body that is not JSON at all, 415 for a body of the
wrong media type); unknown routes and methods keep 404/405. Anything unexpected is logged
server-side and answered as a bare 500, never with a stack trace.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from authenticator.errors import AuthenticatorError, NoUsablePhoto

log = logging.getLogger("authenticator.api")
PROBLEM_TYPE_BASE = "https://authenticator.local/problems/"
MEDIA_TYPE = "application/problem+json"


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    instance: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    extensions: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance is not None:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = errors
    for name, value in (extensions or {}).items():
        body.setdefault(name, value)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _error_response(request: Request, exc: AuthenticatorError) -> JSONResponse:
    status = exc.http_status
    if status >= 500:
        log.error("%s on %s %s: %s", exc.code, request.method, request.url.path, exc.message)
    headers = {"WWW-Authenticate": 'Bearer realm="authenticator"'} if status == 401 else None
    if status == 503:
        headers = {"Retry-After": "5"}
    detail = exc.message if status < 500 or status == 503 else "internal error"
    # A conflict names what it collided with (the first assessment, the open listing...): ids only.
    extensions: dict[str, Any] = (
        {k: v for k, v in exc.details.items() if k.endswith("_id") and isinstance(v, str)} if status == 409 else {}
    )
    if isinstance(exc, NoUsablePhoto):  # each photo's reason codes, for clients that act on them
        extensions["photos"] = exc.details.get("photos", [])
    return problem(status, exc.code, detail, instance=request.url.path, headers=headers, extensions=extensions)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _validation_response(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in exc.errors()
    ][:20]
    body_errors = [e for e in errors if e["loc"][:1] == ["body"]]
    content_type = request.headers.get("content-type", "")
    if body_errors and not _is_json(content_type):  # no Content-Type at all is not JSON either
        return problem(415, "unsupported_media_type", "send the body as application/json", instance=request.url.path)
    if any(e["type"] == "json_invalid" for e in errors):
        return problem(400, "bad_request", "the body is not valid JSON", instance=request.url.path, errors=errors)
    detail = "invalid request"
    if errors:
        loc, msg = ".".join(errors[0]["loc"]), str(errors[0]["msg"])
        detail = f"{loc}: {msg}" if loc else msg
    return problem(422, "invalid_request", detail, instance=request.url.path, errors=errors)


def _http_response(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no route {request.url.path}"
    headers = dict(exc.headers) if exc.headers else None
    return problem(exc.status_code, code, detail, instance=request.url.path, headers=headers)


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return problem(500, "internal_error", "internal error", instance=request.url.path)


def install(app: FastAPI) -> None:
    """Register the handlers: the only code that turns exceptions into responses."""

    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AuthenticatorError)
        return _error_response(request, exc)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return _validation_response(request, exc)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return _http_response(request, exc)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _unexpected(request, exc)

    app.add_exception_handler(AuthenticatorError, on_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
