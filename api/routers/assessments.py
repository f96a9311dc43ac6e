"""Recorded assessments; their photos and heat maps for the owning platform only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from api.auth import Ctx, Platform
from api.routers.common import errors
from api.schemas import Assessment
from authenticator.services import assessments

router = APIRouter(tags=["assessments"])


def _image_type(data: bytes) -> str:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp":
        return "image/heic"
    return "application/octet-stream"


@router.get("/v1/assessments/{assessment_id}", response_model=Assessment, responses=errors(404))
def get_assessment(assessment_id: str, ctx: Ctx) -> dict[str, Any]:
    """Public: a recorded verdict (its entry is public in the log) with a fresh inclusion proof."""
    return assessments.get_assessment(ctx, assessment_id)


@router.get(
    "/v1/assessments/{assessment_id}/photos/{sha256}",
    response_class=Response,
    responses={
        200: {
            "description": "The photo's bytes as uploaded (content-addressed by its SHA-256).",
            "content": {"image/jpeg": {"example": "<JPEG bytes>"}, "image/png": {"example": "<PNG bytes>"}},
        },
        **errors(401, 403, 404),
    },
)
def get_photo(assessment_id: str, sha256: str, principal: Platform, ctx: Ctx) -> Response:
    """A photo of the assessment (the item's platform only)."""
    data = assessments.assessment_photo(ctx, principal, assessment_id, sha256)
    return Response(data, media_type=_image_type(data), headers={"Cache-Control": "private, max-age=3600"})


@router.get(
    "/v1/assessments/{assessment_id}/heatmaps/{sha256}",
    response_class=Response,
    responses={
        200: {
            "description": "PNG overlay: red where occluding the region moved the score most.",
            "content": {"image/png": {"example": "<PNG bytes>"}},
        },
        **errors(401, 403, 404),
    },
)
def get_heatmap(assessment_id: str, sha256: str, principal: Platform, ctx: Ctx) -> Response:
    """The occlusion heat map of one photo (the item's platform only; asked for with `heatmaps=true`)."""
    data = assessments.assessment_heatmap(ctx, principal, assessment_id, sha256)
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})
