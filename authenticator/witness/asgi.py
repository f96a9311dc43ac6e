"""The witness over HTTP: a small ASGI app (served by uvicorn), no web framework.

``POST /add-checkpoint`` is C2SP tlog-witness: 200 with the cosignature line(s) as
``text/plain``; a refusal with the spec's status and a one-line reason (409 for a stale ``old``
carries the witness's size as ``text/x.tlog.size``). ``GET /`` names the witness, its verifier
key and the logs it witnesses. Bodies over the limit are refused (413) before being read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from authenticator.errors import AuthenticatorError, WitnessRefusal
from authenticator.witness.protocol import ADD_CHECKPOINT, MAX_REQUEST_BYTES, SIZE_CONTENT_TYPE
from authenticator.witness.witness import Witness

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

logger = logging.getLogger("authenticator.witness")


class _TooLarge(Exception):
    pass


class WitnessApp:
    """ASGI application of one :class:`Witness`."""

    def __init__(self, witness: Witness, max_body_bytes: int = MAX_REQUEST_BYTES) -> None:
        self.witness = witness
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path, method = scope.get("path", ""), scope.get("method", "")
        if path == ADD_CHECKPOINT:
            if method != "POST":
                await _answer(send, 405, "use POST\n", extra=[(b"allow", b"POST")])
                return
            await self._add_checkpoint(scope, receive, send)
        elif path == "/" and method in ("GET", "HEAD"):
            await _answer(send, 200, self._about(), head=method == "HEAD")
        else:
            await _answer(send, 404, "not found\n")

    def _about(self) -> str:
        logs = "".join(f"log {v.verifier_key}\n" for keys in self.witness.logs.values() for v in keys)
        return (
            f"C2SP tlog-witness {self.witness.signer.name}\n"
            f"verifier key {self.witness.signer.verifier_key}\n"
            f"submit: POST {ADD_CHECKPOINT}\n{logs}"
        )

    async def _add_checkpoint(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            body = await self._read_body(scope, receive)
        except _TooLarge:
            await _answer(send, 413, "the request is too large\n")
            return
        try:
            cosigned = await asyncio.to_thread(self.witness.add_checkpoint, body)
        except WitnessRefusal as exc:
            size = exc.details.get("size")
            if exc.http_status == 409 and isinstance(size, int):
                await _answer(send, 409, f"{size}\n", content_type=SIZE_CONTENT_TYPE)
            else:
                await _answer(send, exc.http_status, exc.message.replace("\n", " ") + "\n")
            return
        except AuthenticatorError as exc:  # the state cannot be written: nothing was cosigned
            logger.error("add-checkpoint failed: %s", exc.message)
            await _answer(send, 503, "the witness cannot record checkpoints right now\n")
            return
        cp = cosigned.checkpoint
        logger.info("cosigned %s at size %d", cp.origin, cp.size)
        await _answer(send, 200, cosigned.lines)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    if int(value) > self.max_body_bytes:
                        raise _TooLarge
                except ValueError:
                    pass
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_body_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


async def _answer(
    send: Send,
    status: int,
    text: str,
    *,
    content_type: str = "text/plain; charset=utf-8",
    head: bool = False,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = text.encode("utf-8")
    headers = [
        (b"content-type", content_type.encode("ascii")),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"cache-control", b"no-store"),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})
