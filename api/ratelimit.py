"""Per-key rate limits on uploads (assessments, previews and certificates): ``429`` with ``Retry-After``.

A token bucket per presented API key: ``upload_rate_per_minute`` tokens, refilled evenly, so a
client may burst up to a minute's worth and then goes at the steady rate. Buckets are keyed by
a hash of the whole presented credential, never by the key id alone, so nobody can spend
another client's allowance by sending its key id with a wrong secret (a wrong key gets its own
bucket and then a 401). The check runs before the body is read. Limits are per process: with
``--workers N`` a key gets up to N times the rate. ``0`` turns the limit off.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time
from collections import OrderedDict

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import problem

UPLOAD_PATH = re.compile(r"^/v1/(items/[^/]+/(assessments|certificates)|assessments/preview)/?$")
MAX_BUCKETS = 10_000


class TokenBuckets:
    """Token buckets by name with a bounded memory (least recently used names are dropped)."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.per_second = per_minute / 60.0
        self._buckets: OrderedDict[bytes, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, name: bytes) -> float:
        """Spend one token of ``name``; 0 when allowed, else the seconds until one is there."""
        now = time.monotonic()
        with self._lock:
            tokens, stamp = self._buckets.pop(name, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - stamp) * self.per_second)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.per_second
            self._buckets[name] = (tokens, now)
            while len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
        return wait


class UploadRateLimit:
    """Pure ASGI middleware: POSTs to the upload endpoints spend a token of their API key."""

    def __init__(self, app: ASGIApp, per_minute: int) -> None:
        self.app = app
        self.buckets = TokenBuckets(per_minute) if per_minute > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.buckets is None
            or scope["type"] != "http"
            or scope["method"] != "POST"
            or not UPLOAD_PATH.match(scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        auth = dict(scope.get("headers", [])).get(b"authorization", b"")
        credential = auth.split(None, 1)[-1].strip() if auth else b""  # "Bearer x" and "bearer  x" alike
        wait = self.buckets.take(hashlib.sha256(credential).digest())
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        retry = max(1, math.ceil(wait))
        response = problem(
            429,
            "rate_limited",
            f"too many uploads with this API key; retry in {retry} s",
            instance=scope["path"],
            headers={"Retry-After": str(retry)},
        )
        await response(scope, receive, send)


def install(app: FastAPI) -> None:
    """Add the upload limit with the app's ``upload_rate_per_minute`` setting."""
    app.add_middleware(UploadRateLimit, per_minute=app.state.settings.upload_rate_per_minute)
