"""Request body limits, enforced before the body is read (pure ASGI middleware).

A ``Content-Length`` over the limit is answered 413 at once; a chunked body is counted while
it streams and cut off as soon as it passes the limit, so no handler ever buffers it whole.
Once a body has passed the limit the answer is 413, whatever the app made of the exception
(FastAPI turns any error while it reads a JSON or form body into a 400). JSON bodies get a much
smaller limit than photo uploads.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem
from authenticator.errors import PayloadTooLarge
from authenticator.sizes import size_words


class BodyTooLarge(PayloadTooLarge):
    """Raised from ``receive`` when a streamed body passes the limit."""


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int, max_json_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_json_bytes = max_json_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        limit = self.max_json_bytes if "json" in content_type else self.max_bytes
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = -1
            if declared < 0:
                await problem(400, "bad_request", "Content-Length is not a number")(scope, receive, send)
                return
            if declared > limit:
                await self._too_large(scope, receive, send, limit)
                return
        received = 0
        exceeded = False
        started = False
        replaced = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise BodyTooLarge(f"the request body is over the limit of {size_words(limit)}")
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge(f"the request body is over the limit of {size_words(limit)}")
            return message

        async def guarded_send(message: Message) -> None:
            # Once the body has passed the limit, the answer is 413 whatever the app made of the
            # exception (FastAPI turns any error while it parses a body into a 400).
            nonlocal started, replaced
            if replaced:
                return
            if message["type"] == "http.response.start":
                if exceeded:
                    replaced = started = True
                    await self._too_large(scope, receive, send, limit)
                    return
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            if not started:
                await self._too_large(scope, receive, send, limit)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response: Any = problem(
            413,
            "payload_too_large",
            f"the upload is larger than {size_words(limit)}, the most one request may send: send fewer or smaller "
            "photos (AUTHENTICATOR_API_MAX_BODY_BYTES sets the limit)"
            if limit == self.max_bytes
            else f"the JSON body is larger than {size_words(limit)}, the most one request may send",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)
