"""Models registered in the log and the verdicts each gave."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import Ctx
from api.routers.common import MAX_INT, errors
from authenticator.contracts.models import Model, ModelAssessments, ShadowReport
from authenticator.services import lifecycle, models, serving

router = APIRouter(tags=["models"])


@router.get("/v1/models", response_model=list[Model])
def list_models(ctx: Ctx) -> list[Model]:
    """Public: every model version registered in the log, with its status (`serving`: gives the
    verdicts now; `shadow`: scores live assessments in the background; `retired`: served before;
    `registered`), its lineage (the `model.promoted` / `model.shadowed` entries that name it: what it
    replaced, rollbacks) and the summary of the evaluation that promoted it."""
    return lifecycle.models_with_lineage(ctx)


@router.get("/v1/models/{sha256}/shadow", response_model=ShadowReport, responses=errors(404))
def model_shadow(sha256: str, ctx: Ctx) -> ShadowReport:
    """Public: what a shadow model did with live assessments: how often it agreed with the verdict,
    the coverage it would have had, and its false-pass on items a lab certified since (never part of
    a verdict). `dropped`: live assessments it skipped because its queue was full."""
    models.get_model(ctx, sha256)
    return serving.shadow_report(ctx, sha256)


@router.get("/v1/models/{sha256}/assessments", response_model=ModelAssessments, responses=errors(404, 422))
def model_assessments(
    sha256: str,
    ctx: Ctx,
    after: Annotated[int, Query(ge=-1, le=MAX_INT, description="Log index to continue after (paging).")] = -1,
    limit: Annotated[int, Query(ge=1, le=models.MAX_PAGE)] = 100,
) -> ModelAssessments:
    """Public: every verdict this model gave, in log order (for recalls)."""
    return models.model_assessments(ctx, sha256, after, limit)
