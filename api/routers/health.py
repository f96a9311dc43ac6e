"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from api.auth import Ctx
from api.problems import problem
from authenticator.contracts.admin import Health
from authenticator.errors import AuthenticatorError

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process answers."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"description": "Not ready (problem+json)."}})
def readyz(ctx: Ctx) -> Health | JSONResponse:
    """The database answers, the blob store is writable and the model is loaded."""
    checks: dict[str, str] = {}
    try:
        ctx.ledger.size()
        checks["database"] = "ok"
        ctx.blobs.check_writable()
        checks["blobs"] = "ok"
        if ctx.assessor is None:
            return problem(503, "not_ready", "no model loaded", headers={"Retry-After": "5"})
        checks["model"] = "ok"
    except AuthenticatorError as exc:
        return problem(503, "not_ready", exc.message, headers={"Retry-After": "5"})
    return Health(status="ok", checks=checks)


_METRICS_EXAMPLE = (
    "# TYPE authenticator_ledger_size gauge\nauthenticator_ledger_size 42.0\n"
    'authenticator_assessments_total{decision="authentic"} 7.0\n'
)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"example": _METRICS_EXAMPLE}}}},
)
def metrics(request: Request, ctx: Ctx) -> Response:
    """Prometheus text format: request latency, assessments by decision, ledger size, checkpoint age."""
    return Response(request.app.state.metrics.render(ctx), media_type=CONTENT_TYPE_LATEST)
