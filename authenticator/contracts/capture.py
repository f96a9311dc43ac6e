"""Capture guides: the photos an assessment of a category asks for, view by view (``GET /v1/capture-guides``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from authenticator.contracts.examples import example
from authenticator.vision.category import Category


class ViewQuality(BaseModel):
    """What the quality gate asks of a photo of this view (stricter for close-ups that must be read)."""

    framing: Literal["whole", "detail", "close_up"]
    checks: str = Field(description="In words: what the gate checks for this view.")
    min_sharpness: float = Field(description="Variance of the Laplacian at a 384 px long side, at least.")
    min_short_side: int = Field(description="Pixels on the photo's short side, at least.")


class CaptureView(BaseModel):
    id: str = Field(description="The view's name in the `views` form field of an assessment.")
    name: str
    instruction: str = Field(description="One line: what the photo must show.")
    required: bool
    quality: ViewQuality
    outline: str | None = Field(default=None, description="An outline drawing of the view (SVG), for upload pages.")


class CaptureGuideOut(BaseModel):
    """The photos an assessment of this category asks for, in the order a seller takes them."""

    model_config = example(
        {
            "category": "watch",
            "lang": "en",
            "required": [
                {
                    "id": "dial",
                    "name": "Dial",
                    "instruction": "The dial straight on, filling the frame, hands and all printing sharp, no glare.",
                    "required": True,
                    "quality": {
                        "framing": "close_up",
                        "checks": "Text that must be read: 2.5x the whole-item sharpness and at least 400 px on the "
                        "short side, so every character of a stamp, serial or label is legible; no glare on the text.",
                        "min_sharpness": 567.5,
                        "min_short_side": 400,
                    },
                    "outline": "/static/outlines/watch-dial.svg",
                }
            ],
            "optional": [
                {
                    "id": "papers",
                    "name": "Box and papers",
                    "instruction": "The box, warranty card and papers that came with the watch.",
                    "required": False,
                    "quality": {
                        "framing": "whole",
                        "checks": "The whole item in frame and in focus: the calibrated limits for blur, exposure, "
                        "glare, contrast and how much of the frame the item fills.",
                        "min_sharpness": 227.0,
                        "min_short_side": 160,
                    },
                    "outline": "/static/outlines/watch-papers.svg",
                }
            ],
            "verdicts": False,
            "note": "Watches cannot be judged from photos yet: for now every watch needs an inspection by an "
            "appraisal lab.",
        }
    )
    category: Category
    lang: str = Field(description="The language of the names and instructions (`en` or `zh-CN`).")
    required: list[CaptureView]
    optional: list[CaptureView]
    verdicts: bool = Field(description="Whether the model gives verdicts for this category (else: a lab).")
    note: str | None = Field(default=None, description="What happens to an assessment of this category.")
