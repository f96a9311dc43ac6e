"""The FastAPI application factory. Nothing is opened at import time.

``create_app(settings)`` wires the routers, the error handler, the body limits and metrics;
its lifespan opens the ledger, the projection tables, the blob store and the model once per
process, registers the served model in the log (``model.registered``) the first time any
process serves it, switches to the model the log's lineage says serves (``model.promoted``; checked
again before every assessment, see ``authenticator/services/serving.py``) and closes everything on
shutdown.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from api import docs, problems
from api.head import HeadAsGetMiddleware
from api.limits import BodyLimitMiddleware
from api.logredact import install as install_log_redaction
from api.metrics import Metrics, MetricsMiddleware
from api.pages import routes as pages
from api.ratelimit import install as install_upload_rate_limit
from api.routers import admin, assessments, capture_guides, health, items, labs, listings, log, models, previews, tiles
from api.strict_json import StrictJSONMiddleware
from authenticator.config import Settings
from authenticator.errors import AuthenticatorError
from authenticator.services.context import ServiceContext
from authenticator.services.models import ensure_model_registered
from authenticator.services.serving import close_serving, open_serving

logger = logging.getLogger("uvicorn.error")  # configured by uvicorn: the operator sees it

DESCRIPTION = """
Photos in; verdicts, lab certificates, listings and verifiable traces out.

Every state change is an entry of an append-only RFC 9162 Merkle log with signed C2SP
checkpoints. Write endpoints answer a **receipt** (leaf index, leaf hash, signed checkpoint,
inclusion proof); `GET /v1/items/{id}/trace` gives a buyer everything needed to check an item's
history offline (`authenticator trace verify`).

Authenticate with `Authorization: Bearer <API key>`. Roles: `admin` (operators), `platform`
(marketplaces and sellers), `lab` (appraisal labs). Reads a buyer needs are public. Errors are
RFC 9457 `application/problem+json`.
"""


def _open(settings: Settings) -> ServiceContext:
    ctx = ServiceContext.open(settings)
    assessor = ctx.assessor
    if assessor is not None:
        info = assessor.model_info
        ensure_model_registered(
            ctx,
            sha256=info["sha256"],
            name=info["name"],
            version=info["version"],
            card_path=assessor.card_path,
            metrics=assessor.card.metrics,
        )
        open_serving(ctx)  # the model the log says serves (promotions switch it), and its shadows
    ctx.start_witnessing()  # new checkpoints go to AUTHENTICATOR_WITNESSES in the background
    return ctx


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API app; ``settings`` default to the environment (``AUTHENTICATOR_*``)."""
    resolved = settings if settings is not None else Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            ctx = await run_in_threadpool(_open, resolved)
        except AuthenticatorError as exc:  # one clear line for the operator, before uvicorn's report
            logger.error("the API cannot start: %s", exc.message)
            raise
        app.state.ctx = ctx
        try:
            yield
        finally:
            await run_in_threadpool(close_serving, ctx)
            await run_in_threadpool(ctx.close)

    app = FastAPI(
        title="authenticator",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by api.docs without a CDN, with a CSP
        redoc_url=None,
        openapi_tags=[
            {"name": "items", "description": "Register items, assess them from photos, certify, track custody."},
            {"name": "log", "description": "The Merkle log: checkpoints, proofs and entries for auditors."},
        ],
    )
    app.state.settings = resolved
    app.state.metrics = metrics
    problems.install(app)
    for router in (
        items.router,
        previews.router,
        assessments.router,
        capture_guides.router,
        labs.router,
        listings.router,
        models.router,
        log.router,
        tiles.router,  # /checkpoint and /tile/...: C2SP tlog-tiles at the root
        admin.router,
        health.router,
    ):
        app.include_router(router)
    pages.install(app)  # the pages: /t/{item_id}, /l/{listing_id}, /assess and /static
    docs.install(app)  # /docs (Swagger UI) and /docs-assets, from the fastapi-offline package
    install_upload_rate_limit(app)  # 429 + Retry-After per API key on uploads (upload_rate_per_minute)
    install_log_redaction()  # API keys never reach the logs, even when sent in a URL
    app.add_middleware(StrictJSONMiddleware)  # duplicate keys refused; inside the body limit (added before it)
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=resolved.api_max_body_bytes, max_json_bytes=resolved.api_max_json_bytes
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(HeadAsGetMiddleware)  # outermost: everything inside sees the GET it asks about
    return app
