"""Models in the log: their status and lineage, what a shadow model did, the verdicts each gave."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from authenticator.contracts.examples import example
from authenticator.ledger.entry_types import ModelPromoted, ModelShadowed
from authenticator.vision.decision import Decision

ModelStatus = Literal["serving", "shadow", "retired", "registered"]


class ModelLineageEntry(BaseModel):
    index: int
    type: Literal["model.promoted", "model.shadowed"]
    action: Literal["promotion", "rollback", "start", "stop"]
    model_sha256: str
    replaces: str | None
    evaluation_sha256: str | None
    recorded_at: str


class Model(BaseModel):
    model_config = example(
        {
            "sha256": "ab" * 32,
            "name": "authenticator",
            "version": "1.0.0",
            "card_sha256": "cd" * 32,
            "metrics": {"auc": 0.93},
            "registered_index": 0,
            "registered_at": "2026-11-25T16:00:00.000000Z",
        }
    )
    sha256: str
    name: str
    version: str
    card_sha256: str
    metrics: dict[str, Any]  # free-form: whatever the model card measured (the log keeps it as JSON)
    registered_index: int
    registered_at: str
    status: ModelStatus = Field(
        default="registered",
        description="serving: gives the verdicts now; shadow: scores live assessments in the background; "
        "retired: served before; registered: in the log, never promoted.",
    )
    lineage: list[ModelLineageEntry] = Field(
        default_factory=list, description="The model.promoted / model.shadowed entries that name this model."
    )
    # free-form: the ``summary`` section of the evaluation report, whatever that report measured
    evaluation: dict[str, Any] | None = Field(
        default=None, description="Summary of the evaluation report that promoted (or shadowed) it."
    )


class ShadowCertified(BaseModel):
    assessments: int = Field(description="Shadow-scored assessments of items a lab certified since.")
    counterfeit: int
    false_pass: float | None = Field(description="Share of the counterfeit ones the shadow model called authentic.")
    champion_false_pass: float | None
    authentic: int
    false_reject: float | None
    champion_false_reject: float | None


class ShadowReport(BaseModel):
    model_config = example(
        {
            "model_sha256": "ef" * 32,
            "scored": 412,
            "dropped": 3,
            "failed": 0,
            "agreement": 0.91,
            "coverage": 0.34,
            "champion_coverage": 0.29,
            "certified": {
                "assessments": 57,
                "counterfeit": 31,
                "false_pass": 0.0,
                "champion_false_pass": 0.0,
                "authentic": 26,
                "false_reject": 0.04,
                "champion_false_reject": 0.08,
            },
        }
    )
    model_sha256: str
    scored: int = Field(description="Live assessments the shadow model scored.")
    dropped: int = Field(description="Live assessments skipped because the shadow queue was full (counted).")
    failed: int
    agreement: float | None = Field(description="Share of scored assessments with the verdict's decision.")
    coverage: float | None = Field(description="Share the shadow model would have decided.")
    champion_coverage: float | None = Field(description="Share the serving model decided, on the same assessments.")
    certified: ShadowCertified


class ModelAssessment(BaseModel):
    id: str
    item_id: str
    index: int
    decision: Decision
    probability_authentic: float | None
    recorded_at: str


class ModelAssessments(BaseModel):
    model_config = example(
        {
            "model_sha256": "ab" * 32,
            "assessments": [
                {
                    "id": "asm_9f8e7d6c5b4a392817161514",
                    "item_id": "itm_5b1f0c2a9d3e4f5a6b7c8d9e",
                    "index": 41,
                    "decision": "authentic",
                    "probability_authentic": 0.97,
                    "recorded_at": "2026-11-25T16:00:00.000000Z",
                }
            ],
            "next_after": None,
        }
    )
    model_sha256: str
    assessments: list[ModelAssessment]
    next_after: int | None


# --- the lifecycle's answers (``authenticator model promote|rollback|shadow``) ---------------------


class PromotionCheck(BaseModel):
    """One check of the promotion rule on an evaluation report
    (:func:`authenticator.services.promotion.check_promotion`)."""

    model_config = ConfigDict(frozen=True)
    part: str
    check: str
    ok: bool
    detail: str


class PromotedAnswer(ModelPromoted):
    """A ``model.promoted`` body as appended (a promotion or a rollback), and its log index."""

    index: int


class PromotionAnswer(PromotedAnswer):
    """A promotion: the entry, the checks of the rule it passed and where the model was stored."""

    checks: list[PromotionCheck]
    stored: str


class ShadowedAnswer(ModelShadowed):
    """A ``model.shadowed`` body as appended (start or stop), and its log index."""

    index: int
