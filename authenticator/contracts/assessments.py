"""An assessment as the API answers it: the verdict, each photo's, its erasures, and the preview."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from authenticator.contracts.common import ModelRef, ReasonOut, Receipt
from authenticator.contracts.examples import CHECKPOINT, HASH, example
from authenticator.ledger.entry_types import Thresholds
from authenticator.vision.decision import Decision


class ViewRef(BaseModel):
    """A view of the item's capture guide (``GET /v1/capture-guides/{category}``)."""

    id: str
    name: str
    instruction: str = Field(description="What the photo of this view should show.")


class PhotoVerdict(BaseModel):
    sha256: str
    probability_authentic: float | None = Field(description="Null for a photo that was set aside: no score at all.")
    category: str | None
    reasons: list[ReasonOut]
    set_aside: bool = Field(
        default=False, description="Left out of the verdict (unreadable, quality, not the item, unfamiliar)."
    )
    file: str | None = None
    heatmap_url: str | None = None
    reused_from: Any = Field(  # the vision's ReusedFrom matches, untyped as published
        default=None,
        description="Photos of other items with (almost) the same perceptual hash, looked up when the photos "
        "were assessed: in the answer that recorded the assessment, not in later reads. The record keeps "
        "the `photo_reused` reason, which names the closest item.",
    )
    erased: bool = Field(default=False, description="The photo was taken back (`photos.erased`): its bytes are gone.")
    erased_at: str | None = None
    view: str | None = Field(
        default=None, description="The view the uploader declared (`unspecified`); null when the upload declared none."
    )


class Assessment(BaseModel):
    model_config = example(
        {
            "id": "asm_9f8e7d6c5b4a392817161514",
            "item_id": "itm_5b1f0c2a9d3e4f5a6b7c8d9e",
            "decision": "authentic",
            "probability_authentic": 0.97,
            "category": "bag",
            "reasons": [],
            "thresholds": {"authentic_above": 0.9, "counterfeit_below": 0.1},
            "model": {"sha256": "ab" * 32, "name": "authenticator", "version": "1.0.0"},
            "photos": [
                {
                    "sha256": "cd" * 32,
                    "probability_authentic": 0.96,
                    "category": "bag",
                    "reasons": [],
                    "file": "front.jpg",
                    "heatmap_url": None,
                }
            ],
            "index": 41,
            "recorded_at": "2026-11-25T16:00:00.000000Z",
            "receipt": {
                "index": 41,
                "leaf_hash": HASH,
                "tree_size": 42,
                "checkpoint": CHECKPOINT,
                "inclusion_proof": [HASH],
            },
        }
    )
    id: str
    item_id: str
    decision: Decision
    probability_authentic: float | None
    category: str | None
    reasons: list[ReasonOut]
    thresholds: Thresholds
    model: ModelRef
    photos: list[PhotoVerdict]
    missing_views: list[ViewRef] | None = Field(
        default=None,
        description="Required views of the item's capture guide no photo was declared as (reason `missing_views`); "
        "null when the upload declared no views.",
    )
    index: int
    recorded_at: str
    receipt: Receipt


class PhotoErasure(BaseModel):
    """A `photos.erased` record: which photos of an assessment were taken back, by whom, when."""

    model_config = example(
        {
            "assessment_id": "asm_9f8e7d6c5b4a392817161514",
            "item_id": "itm_5b1f0c2a9d3e4f5a6b7c8d9e",
            "photo_sha256": ["cd" * 32],
            "by": "plt_0a1b2c3d4e5f60718293a4b5",
            "reason": "seller request",
            "erased_at": "2026-11-28T09:00:00.000000Z",
            "index": 57,
            "receipt": {
                "index": 57,
                "leaf_hash": HASH,
                "tree_size": 58,
                "checkpoint": CHECKPOINT,
                "inclusion_proof": [HASH],
            },
        }
    )
    assessment_id: str
    item_id: str
    photo_sha256: list[str] = Field(description="The hashes this record erased.")
    by: str = Field(description="The principal id that erased them, or `operator` (retention).")
    reason: str | None
    erased_at: str = Field(description="The entry's own time.")
    index: int
    receipt: Receipt


class PreviewPhoto(BaseModel):
    file: str | None
    sha256: str
    probability_authentic: float | None = Field(description="Null for a photo that was set aside: no score at all.")
    category: str | None
    reasons: list[ReasonOut]
    set_aside: bool = Field(description="Left out of the verdict (unreadable, quality, not the item, unfamiliar).")
    usable: bool = Field(description="Counts towards recording: at least one usable photo is needed.")
    retake: str | None = Field(description="For a set-aside photo: what a retake should show.")
    reused_from: Any = Field(  # the vision's ReusedFrom matches, untyped as published
        default=None,
        description="Photos of other items with (almost) the same perceptual hash.",
    )
    view: str | None = Field(default=None, description="The declared view; null when the upload declared none.")


class AssessmentPreview(BaseModel):
    """What recording these photos would give, with nothing stored or appended."""

    model_config = example(
        {
            "recorded": False,
            "item_id": None,
            "decision": "inconclusive",
            "probability_authentic": 0.55,
            "category": "bag",
            "reasons": [{"code": "uncertain_score", "message": "The photos do not allow a confident verdict."}],
            "thresholds": {"authentic_above": 0.9, "counterfeit_below": 0.1},
            "model": {"sha256": "ab" * 32, "name": "authenticator", "version": "1.0.0"},
            "photos": [
                {
                    "file": "front.jpg",
                    "sha256": "cd" * 32,
                    "probability_authentic": 0.55,
                    "category": "bag",
                    "reasons": [],
                    "set_aside": False,
                    "usable": True,
                    "retake": None,
                },
                {
                    "file": "blurred.jpg",
                    "sha256": "ef" * 32,
                    "probability_authentic": None,
                    "category": None,
                    "reasons": [{"code": "blurred", "message": "The photo is blurred: hold the phone steady."}],
                    "set_aside": True,
                    "usable": False,
                    "retake": "sharp edges and readable stamps: hold the phone steady and tap the item to focus",
                },
            ],
            "recordable": True,
            "refusal": None,
        }
    )
    recorded: Literal[False] = False
    item_id: str | None
    decision: Decision = Field(description="Provisional: what recording these photos now would give.")
    probability_authentic: float | None
    category: str | None
    reasons: list[ReasonOut]
    thresholds: Thresholds
    model: ModelRef
    photos: list[PreviewPhoto]
    missing_views: list[ViewRef] | None = Field(
        default=None, description="Required views no photo was declared as; null when the upload declared no views."
    )
    recordable: bool = Field(description="Whether recording these photos would be accepted.")
    refusal: str | None = Field(description="Why recording them would be refused (no usable photo).")
