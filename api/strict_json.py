"""Every JSON request body is strict JSON (pure ASGI middleware).

FastAPI parses JSON bodies with ``json.loads``, which keeps the *last* of two equal keys and
accepts ``NaN``; this middleware reads each JSON body first (``application/json`` or any
``+json`` type, decided exactly as FastAPI decides it) with
:func:`authenticator.strict_json.loads` and answers **400 problem+json** naming the key for a
duplicate object key, and 400 for anything else the strict loader refuses (not UTF-8, lone
surrogates, non-finite numbers, not JSON at all). A body that passes is replayed to the app
unchanged, byte for byte.

It must run *inside* :class:`api.limits.BodyLimitMiddleware`: the body it buffers has then
already passed the JSON size limit (a body over it is answered 413 by that middleware).
"""

from __future__ import annotations

import email.message

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem
from authenticator.strict_json import DuplicateKeyError, StrictJSONError, loads


def is_json_content_type(value: str) -> bool:
    """True for the media types FastAPI parses as JSON: ``application/json`` and ``application/*+json``."""
    message = email.message.Message()
    message["content-type"] = value
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


class StrictJSONMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        content_type = next((v for k, v in scope.get("headers", []) if k.lower() == b"content-type"), b"")
        if not is_json_content_type(content_type.decode("latin-1")):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        last: Message | None = None
        while True:
            message = await receive()  # the body limit outside raises here past the JSON limit
            if message["type"] != "http.request":
                last = message  # http.disconnect
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if last is None and body:
            try:
                loads(body)
            except DuplicateKeyError as exc:
                await problem(400, "bad_request", f"the body has a {exc}", instance=scope.get("path"))(
                    scope, receive, send
                )
                return
            except StrictJSONError as exc:
                await problem(400, "bad_request", f"the body is not valid JSON: {exc}", instance=scope.get("path"))(
                    scope, receive, send
                )
                return
        # A client that went away mid-body: the app sees only the disconnect (Starlette raises
        # ClientDisconnect), never a truncated body passed off as complete.
        pending: list[Message] = [last] if last is not None else [{"type": "http.request", "body": body}]

        async def replay() -> Message:
            if pending:
                return pending.pop(0)
            return await receive()

        await self.app(scope, replay, send)
