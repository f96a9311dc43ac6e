"""Capture guides: the photos an assessment of each category asks for (public)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.auth import Ctx
from api.routers.common import errors
from api.schemas import CaptureGuideOut
from authenticator.vision.capture_guides import GUIDES, describe
from authenticator.vision.category import Category
from authenticator.vision.reasons import reason

router = APIRouter(tags=["assessments"])


@router.get("/v1/capture-guides/{category}", response_model=CaptureGuideOut, responses=errors(422))
def get_capture_guide(category: Category, ctx: Ctx) -> dict[str, Any]:
    """Public: the views to photograph for an item of this category, in order, with a one-line
    instruction each and what the quality gate asks of that view's photo (close-ups that must be
    read need more sharpness and resolution than a whole-item shot).

    Send each photo's view in the `views` form field of an assessment (in the order of the
    photos); a verdict lists the required views that are missing."""
    guide = GUIDES[category]
    card = ctx.assessor.card if ctx.assessor is not None else None
    verdicts = card is not None and category in card.validated_categories
    out = describe(guide, ctx.settings.quality_thresholds)
    note = None if verdicts else reason("category_not_validated", category=category).message
    return {**out, "lang": "en", "verdicts": verdicts, "note": note}
