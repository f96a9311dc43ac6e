"""Requests that carry photos to the vision pipeline are live work from the moment they are
accepted until they are answered: the upload read, the assessment and its recording. Shadow
models run only outside them (:mod:`authenticator.vision.live_work`).

Gating the vision call alone left the shadow running beside a request's upload parsing and its
database writes, and the 4-photo p50 with a shadow on stayed +2-9% over none; gated over the
whole request, +2-4% (docs/performance.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Depends

from authenticator.vision.live_work import LIVE_WORK


async def _live_request() -> AsyncIterator[None]:
    with LIVE_WORK.live():
        yield


LIVE_REQUEST = Depends(_live_request)
"""Add to a route's ``dependencies`` when it runs the vision pipeline."""
