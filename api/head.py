"""HEAD for every GET route (RFC 9110, section 9.3.2), as pure ASGI middleware.

FastAPI's routes answer HEAD with 405 (only Starlette's own routes and static files add it), yet
link checkers, health probes and caches use it. The request runs as the GET it asks about and
the body is dropped, so the status and the headers (``Content-Length`` included) are the GET's.
A HEAD on a path without GET gets the same 405 a GET would, with its ``Allow``.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGetMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_without_body)
