"""Capture guides: the photos an assessment of each category asks for (public)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query

from api.auth import Ctx
from api.routers.common import errors
from authenticator.contracts.capture import CaptureGuideOut
from authenticator.i18n import LOCALES, Translator, negotiate
from authenticator.services.capture_guides import capture_guide
from authenticator.vision.category import Category

router = APIRouter(tags=["assessments"])


@router.get("/v1/capture-guides/{category}", response_model=CaptureGuideOut, responses=errors(422))
def get_capture_guide(
    category: Category,
    ctx: Ctx,
    lang: Annotated[
        str | None,
        Query(description=f"The language of the names and instructions: one of {', '.join(LOCALES)}."),
    ] = None,
    accept_language: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> CaptureGuideOut:
    """Public: the views to photograph for an item of this category, in order, with a one-line
    instruction each and what the quality gate asks of that view's photo (close-ups that must be
    read need more sharpness and resolution than a whole-item shot). In English or Simplified
    Chinese (`?lang=zh-CN`, else `Accept-Language`).

    Send each photo's view in the `views` form field of an assessment (in the order of the
    photos); a verdict lists the required views that are missing."""
    from api.pages.contexts import outline_url

    card = ctx.assessor.card if ctx.assessor is not None else None
    validated = card.validated_categories if card is not None else ()
    tr = Translator(negotiate(accept_language, lang))
    return capture_guide(category, ctx.settings.quality_thresholds, tr, validated=validated, outline=outline_url)
