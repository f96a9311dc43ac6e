"""Checking photos before anything is recorded: the provisional verdict, nothing stored."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.auth import Ctx, Platform
from api.live import LIVE_REQUEST
from api.routers.common import errors
from api.routers.items import _MULTIPART, read_upload_form
from authenticator.contracts.assessments import AssessmentPreview
from authenticator.services import assessments
from authenticator.services.views import category_sent

router = APIRouter(tags=["assessments"])

_PREVIEW_MULTIPART: dict[str, Any] = copy.deepcopy(_MULTIPART)
_PREVIEW_MULTIPART["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]["category"] = {
    "type": "string",
    "enum": ["bag", "watch", "sneaker"],
    "description": "The category of the item not registered yet, whose capture guide the `views` are checked "
    "against (an item's own category otherwise).",
}


@router.post(
    "/v1/assessments/preview",
    dependencies=[LIVE_REQUEST],
    response_model=AssessmentPreview,
    openapi_extra=_PREVIEW_MULTIPART,
    responses=errors(400, 401, 403, 413, 415, 422),
)
async def preview_assessment(request: Request, principal: Platform, ctx: Ctx) -> JSONResponse:
    """Check 1-12 photos before registering or recording anything (platform).

    The same pipeline as recording an assessment: each photo's quality, what it shows, and the
    model's provisional verdict; photos that were set aside get no score, only their reasons
    and what a retake should show. Nothing is stored and nothing enters the log; `recordable`
    says whether recording these photos would be accepted. The upload page calls this as the
    seller adds photos."""
    uploads, fields = await read_upload_form(request, "category")
    category = category_sent(fields.get("category") or None)  # an empty field is no category
    preview = await run_in_threadpool(assessments.preview_assessment, ctx, principal, uploads, category=category)
    return JSONResponse(preview.model_dump(mode="json"))
