"""The model contract: ``weights/<name>.onnx`` plus ``weights/<name>.card.json``.

Training writes the card; the runtime reads it and refuses files whose sha256 differs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from authenticator.errors import ModelError
from authenticator.ledger.entry_types import Thresholds as Thresholds  # one definition: what the log records
from authenticator.vision.category import CATEGORIES
from authenticator.vision.preprocess import PreprocessSpec
from authenticator.vision.product_lines import DeclaredLine, ProductLine, match_line


class ExtraFile(BaseModel):
    """Another file the runtime needs (a reference bank, a second graph), pinned by hash."""

    path: str
    sha256: str
    purpose: str


class SelfTest(BaseModel):
    """What the graph computed on a fixed synthetic input (:func:`~authenticator.vision.runtime.self_test_input`)
    when it was trained. The runtime recomputes it at load and refuses to serve when this machine
    computes something else: INT8 kernels can saturate on CPUs without VNNI, and a model that
    silently scores differently from the one that was measured must not give verdicts."""

    pattern: str = "sinusoids-v1"
    logits: list[float]
    embedding_prefix: list[list[float]] = Field(description="The first dimensions of each probe's embedding.")
    logit_tolerance: float = 0.05
    min_cosine: float = 0.999


class LineOperatingPoint(BaseModel):
    """One product line's own operating point, fitted on its photos' held-out scores."""

    line: ProductLine
    key: str
    validated: bool = Field(description="True when the line met the card's minimum and got its own operating point.")
    why_not_validated: str | None = None
    temperature: float | None = None
    thresholds: Thresholds | None = None
    items: dict[str, int] = Field(default_factory=dict, description="Item groups per label in the training data.")
    photos: dict[str, int] = Field(default_factory=dict, description="Photos per label in the training data.")
    sources: list[str] = Field(default_factory=list)
    figures: dict[str, Any] = Field(
        default_factory=dict,
        description="Nested cross-fitted figures on held-out photos: false-pass, false-reject and coverage with "
        "95% intervals (item-group bootstrap), AUROC, per source.",
    )


class ProductLines(BaseModel):
    """Validated product lines: a verdict is given only with the operating point of the line the item
    was registered as; the global pair (``ModelCard.thresholds``) only where no line is declared."""

    min_items_per_class: int
    lines: list[LineOperatingPoint] = Field(default_factory=list)
    fallback: str = Field(
        default="",
        description="When the card's global temperature and thresholds are used instead of a line's.",
    )
    contradiction: dict[str, Any] = Field(
        default_factory=dict,
        description="The check that the photos show the declared line: k-NN vote of the reference bank's "
        "line labels (k, min_share_other) and what it measured on held-out photos.",
    )

    def validated(self) -> list[LineOperatingPoint]:
        return [op for op in self.lines if op.validated]

    def find(self, declared: DeclaredLine) -> LineOperatingPoint | None:
        """The entry (validated or not) of the line ``declared`` names, or None."""
        found = match_line(declared, [op.line for op in self.lines])
        return None if found is None else next(op for op in self.lines if op.line is found)


class ModelCard(BaseModel):
    name: str
    version: str
    onnx_file: str
    sha256: str
    synthetic: bool = Field(default=False, description="True when trained on synthetic data only (tests, demo).")
    preprocessing: PreprocessSpec
    input_name: str = "image"
    output_names: list[str] = ["authenticity_logit", "imagenet_logits", "embedding"]
    categories: list[str] = list(CATEGORIES)
    validated_categories: list[str] = Field(default_factory=list)
    temperature: float = 1.0
    aggregation: str = "mean_logit"
    thresholds: Thresholds
    ood: dict[str, Any] = Field(default_factory=dict)
    extra_files: list[ExtraFile] = Field(default_factory=list)
    training_data: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    backbone: dict[str, Any] = Field(default_factory=dict)
    reproduce: str = ""
    self_test: SelfTest | None = None
    product_lines: ProductLines | None = Field(
        default=None,
        description="Per-line operating points; absent on cards from before product lines, whose global pair "
        "then serves every line.",
    )

    @classmethod
    def load(cls, path: Path) -> ModelCard:
        try:
            return cls.model_validate_json(path.read_text())
        except FileNotFoundError as exc:
            raise ModelError(f"model card not found: {path}") from exc
        except ValueError as exc:
            raise ModelError(f"model card {path} is invalid: {exc}") from exc

    def onnx_path(self, card_path: Path) -> Path:
        return card_path.parent / self.onnx_file

    def verify_files(self, card_path: Path) -> None:
        """Refuse to serve an ONNX file (or extra file) that is not the one the card describes."""
        for rel, want in [(self.onnx_file, self.sha256)] + [(f.path, f.sha256) for f in self.extra_files]:
            path = card_path.parent / rel
            if not path.is_file():
                raise ModelError(f"model file missing: {path}")
            got = sha256_file(path)
            if got != want:
                raise ModelError(f"{path} has sha256 {got}, the card says {want}")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
