"""Fine-tuning as a compared approach (issue 13, point 1): it runs on the pipeline's folds (CPU here,
CUDA when present), is never chosen automatically, and ``--ship finetune`` is refused unless it wins."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
import torch

from training import finetune
from training.approach_choice import cross_validate, split_data
from training.cv import CVResult
from training.features import compute_features
from training.finetune import FinetuneConfig, finetune_cv
from training.run_config import TrainConfig
from training.synthetic import generate

pytestmark = pytest.mark.torch


def test_finetune_scores_every_photo_out_of_fold(tmp_path: Path) -> None:
    torch.set_num_threads(2)
    samples = generate(tmp_path / "photos", n_per_class=5, seed=2, size=96)
    data = split_data(samples, TrainConfig(k=3), lambda _: None)
    res = finetune_cv(samples, data.arrays, cfg=FinetuneConfig(input_size=64, epochs=1, batch=8), log=lambda _: None)
    assert res.name == "finetune" and not res.shippable and res.heads == []
    assert res.logits.shape == (len(samples),) and np.isfinite(res.logits).all()
    assert finetune.device() in ("cpu", "cuda")


def test_finetune_ships_only_if_it_wins_on_the_same_folds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.set_num_threads(2)
    samples = generate(tmp_path / "photos", n_per_class=6, seed=1)
    cfg = TrainConfig(k=3, approaches=["global224_lr", "finetune"], bootstrap_reps=10, ship="finetune")
    data = split_data(samples, cfg, lambda _: None)
    from training.backbone import load_backbone

    fs = compute_features(samples, load_backbone(), tmp_path / "cache")

    def hopeless(samples: object, a: object, seed: int = 0, cfg: object = None, log: object = None) -> CVResult:
        y = np.array([s.y for s in samples])  # type: ignore[attr-defined]
        return CVResult("finetune", np.where(y == 1, -3.0, 3.0), [], shippable=False)  # scores backwards

    monkeypatch.setattr(finetune, "finetune_cv", hopeless)
    with pytest.raises(ValueError, match="does not beat"):
        cross_validate(fs, data.arrays, cfg, lambda _: None, samples)
    # compared but not asked to ship: the frozen approach is chosen, the comparison is reported
    cv = cross_validate(
        fs, data.arrays, TrainConfig(k=3, approaches=cfg.approaches, bootstrap_reps=10), lambda _: None, samples
    )
    assert cv.chosen == "global224_lr" and "finetune" in cv.summaries
