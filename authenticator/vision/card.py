"""The model contract: ``weights/<name>.onnx`` plus ``weights/<name>.card.json``.

Training writes the card; the runtime reads it and refuses files whose sha256 differs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from authenticator.errors import ModelError
from authenticator.vision.category import CATEGORIES
from authenticator.vision.preprocess import PreprocessSpec


class Thresholds(BaseModel):
    """Calibrated P(authentic) above ``authentic_above`` -> authentic; below
    ``counterfeit_below`` -> counterfeit; between -> inconclusive."""

    authentic_above: float
    counterfeit_below: float


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
