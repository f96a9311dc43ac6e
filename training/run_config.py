"""What a training run is told: its knobs (:class:`TrainConfig`) and how each approach ships as one ONNX
graph (input size, pooling, which cached embedding, which head)."""

from __future__ import annotations

from dataclasses import dataclass

INPUT_SIZE = {"global224_lr": 224, "global448_lr": 448, "mil448_mean": 448, "finetune": 448}
POOL = {"global224_lr": "mean", "global448_lr": "mean", "mil448_mean": "regions", "finetune": "mean"}
EMB_ATTR = {"global224_lr": "emb224", "global448_lr": "emb448", "mil448_mean": "emb448", "finetune": "emb448"}
#: The head fitted on the shipped graph's own embeddings: a fine-tuned backbone gets a linear head
#: like the frozen 448 px one (cross-validated again on its served embeddings).
HEAD_APPROACH = {"finetune": "global448_lr"}


def head_approach(chosen: str) -> str:
    return HEAD_APPROACH.get(chosen, chosen)


VALIDATED_MIN_SOURCES_REAL = 1


@dataclass(frozen=True)
class TrainConfig:
    """The knobs of one training run (the keyword arguments of :func:`train`)."""

    name: str = "authenticator"
    k: int = 5
    seed: int = 0
    approaches: list[str] | None = None
    ship: str | None = None
    max_false_pass: float = 0.01
    max_false_reject: float = 0.05
    bootstrap_reps: int = 500
    quantize: str = "int8"
    calibration_method: str = "percentile"
    calibration_photos: int = 64
    reproduce: str = ""
    version: str | None = None

    def __post_init__(self) -> None:
        if self.quantize not in ("int8", "none"):
            raise ValueError(f"quantize={self.quantize!r}: choose int8 or none")
