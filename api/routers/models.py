"""Models registered in the log and the verdicts each gave."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.auth import Ctx
from api.routers.common import MAX_INT, errors
from api.schemas import Model, ModelAssessments
from authenticator.services import models

router = APIRouter(tags=["models"])


@router.get("/v1/models", response_model=list[Model])
def list_models(ctx: Ctx) -> list[dict[str, Any]]:
    """Public: every model version that served verdicts, as registered in the log."""
    return models.list_models(ctx)


@router.get("/v1/models/{sha256}/assessments", response_model=ModelAssessments, responses=errors(404, 422))
def model_assessments(
    sha256: str,
    ctx: Ctx,
    after: Annotated[int, Query(ge=-1, le=MAX_INT, description="Log index to continue after (paging).")] = -1,
    limit: Annotated[int, Query(ge=1, le=models.MAX_PAGE)] = 100,
) -> dict[str, Any]:
    """Public: every verdict this model gave, in log order (for recalls)."""
    return models.model_assessments(ctx, sha256, after, limit)
