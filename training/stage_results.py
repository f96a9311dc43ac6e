"""What each stage of :func:`training.pipeline.train` hands the next: one frozen dataclass per stage."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from authenticator.vision.preprocess import PreprocessSpec
from training.cv import Arrays, CVResult
from training.data import Sample
from training.features import FeatureSet
from training.heads import LinearHead
from training.model import AuthenticatorNet


@dataclass(frozen=True)
class Data:
    """Stage 1: the photos, item-grouped into folds."""

    samples: list[Sample]
    synthetic: bool
    arrays: Arrays  # labels, folds, groups, sources and categories, one row per photo


@dataclass(frozen=True)
class Features:
    """Stage 2: the frozen backbone and what it computed on every photo (cached)."""

    backbone: nn.Module
    features: FeatureSet


@dataclass(frozen=True)
class CrossValidation:
    """Stage 3: every approach's held-out scores and summaries, and the approach chosen to ship."""

    results: dict[str, CVResult]
    summaries: dict[str, dict[str, Any]]
    meta_z: np.ndarray  # the metadata-only (width/height) baseline's held-out scores
    chosen: str


@dataclass(frozen=True)
class Graph:
    """The network of the chosen approach and where its ONNX file goes."""

    net: AuthenticatorNet
    spec: PreprocessSpec
    onnx_path: Path
    probe: np.ndarray  # three development photos, to check the exported graph against torch


@dataclass(frozen=True)
class Quantized:
    """Stage 4: the INT8 graph (written, head still to come) with the chosen approach cross-validated
    again on its own embeddings; ``quantization`` is None when the float graph ships."""

    features: FeatureSet
    cv: CrossValidation
    quantization: dict[str, Any] | None
    float_parity: float | None  # onnxruntime vs torch of the float graph that was quantized


@dataclass(frozen=True)
class Calibration:
    """Stage 5: the shipped (fold-averaged) head, its held-out scores, temperature and thresholds."""

    head: LinearHead
    z: np.ndarray  # each photo scored by the fold head that did not see it
    temperature: float
    authentic_above: float
    counterfeit_below: float


@dataclass(frozen=True)
class Exported:
    """Stage 6: the shipped graph is on disk with the fitted head."""

    parity: float  # onnxruntime vs torch (of the float graph when INT8 ships)
    quantization: dict[str, Any] | None


@dataclass(frozen=True)
class UnfamiliarGate:
    """Stage 7: leave-one-source-out, the reference bank and the card's ``ood`` section."""

    loso: dict[str, Any]
    ood: dict[str, Any]
    bank_path: Path
    recognition_only: dict[str, Any] | None = None  # the card's training_data.recognition_only
