"""Checking photos before anything is recorded: the provisional verdict, nothing stored."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.auth import Ctx, Platform
from api.routers.common import errors
from api.routers.items import _MULTIPART, read_uploads
from api.schemas import AssessmentPreview
from authenticator.services import assessments

router = APIRouter(tags=["assessments"])


@router.post(
    "/v1/assessments/preview",
    response_model=AssessmentPreview,
    openapi_extra=_MULTIPART,
    responses=errors(400, 401, 403, 413, 415, 422),
)
async def preview_assessment(request: Request, principal: Platform, ctx: Ctx) -> JSONResponse:
    """Check 1-12 photos before registering or recording anything (platform).

    The same pipeline as recording an assessment: each photo's quality, what it shows, and the
    model's provisional verdict; photos that were set aside get no score, only their reasons
    and what a retake should show. Nothing is stored and nothing enters the log; `recordable`
    says whether recording these photos would be accepted. The upload page calls this as the
    seller adds photos."""
    uploads = await read_uploads(request)
    preview = await run_in_threadpool(assessments.preview_assessment, ctx, principal, uploads)
    return JSONResponse(preview)
