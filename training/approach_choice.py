"""Stages 1-3 of training: item-grouped folds, the frozen backbone's features, and the cross-validated
comparison of every approach that chooses the one to ship."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from training.backbone import load_backbone
from training.cv import APPROACHES, Arrays, CVResult, run_cv
from training.data import Sample
from training.evaluation import summarize
from training.features import FeatureSet, compute_features
from training.run_config import INPUT_SIZE, TrainConfig
from training.splits import grouped_folds, groups_crossing
from training.stage_results import (
    CrossValidation,
    Data,
    Features,
)


def arrays_for(samples: list[Sample], fold: np.ndarray) -> Arrays:
    return Arrays(
        y=np.array([s.y for s in samples]),
        fold=fold,
        groups=np.array([f"{s.source}|{s.item_group}" for s in samples]),
        strata=np.array([f"{s.source}|{s.label}" for s in samples]),
        source=np.array([s.source for s in samples]),
        category=np.array([s.category for s in samples]),
    )


def _choice_key(summary: dict[str, Any]) -> tuple[float, float]:
    h = summary["headline"]
    return (h["worst_source_false_pass_at_coverage30"] or 1.0, -(h["auroc"] or 0.0))


def choose(summaries: dict[str, dict[str, Any]], results: dict[str, CVResult]) -> str:
    """Shippable approach with the lowest worst-source false-pass at 30% coverage (then AUROC)."""
    cands = [n for n, r in results.items() if r.shippable]
    return min(cands, key=lambda n: _choice_key(summaries[n]))


def split_data(samples: list[Sample], cfg: TrainConfig, log: Callable[[str], None]) -> Data:
    """Item-grouped folds stratified by source x label; no item group may cross folds."""
    synthetic = all(s.synthetic for s in samples)
    log(f"{len(samples)} photos from {len({s.source for s in samples})} sources (synthetic={synthetic})")
    given = [s.extra.get("fold") for s in samples]
    if all(f is not None and f != "" for f in given):
        fold = np.array([int(str(f)) for f in given], dtype=np.int64)  # frozen by the manifest (model lifecycle)
        log(f"folds from the manifest's fold column ({len(np.unique(fold))} folds)")
    else:
        fold = grouped_folds(samples, k=cfg.k, seed=cfg.seed)
    crossing = groups_crossing(samples, fold)
    if crossing:
        raise RuntimeError(f"item groups cross folds: {crossing[:5]}")
    return Data(samples=samples, synthetic=synthetic, arrays=arrays_for(samples, fold))


def extract_features(samples: list[Sample], cache_dir: Path | None) -> Features:
    """The frozen backbone's features of every photo (computed once, then read from ``cache_dir``)."""
    backbone = load_backbone()
    return Features(backbone=backbone, features=compute_features(samples, backbone, cache_dir))


def cross_validate(
    fs: FeatureSet,
    a: Arrays,
    cfg: TrainConfig,
    log: Callable[[str], None],
    samples: list[Sample] | None = None,
) -> CrossValidation:
    """Every approach (and the metadata-only baseline) on the same folds; choose the one to ship.
    Fine-tuning is compared by default only where CUDA is (``--approach finetune`` asks for it on
    the CPU too); it ships only if it beats every frozen approach by :func:`choose`'s key."""
    import torch

    names = cfg.approaches or [n for n in APPROACHES if n != "finetune" or torch.cuda.is_available()]
    if "meta_wh" not in names:
        names = [*names, "meta_wh"]
    tuned = None
    if "finetune" in names and samples is not None:
        from training.finetune import finetune_cv

        tuned = finetune_cv(samples, a, cfg.seed, log=log)
    results = run_cv(fs, a, [n for n in names if n != "finetune"], cfg.seed, log)
    if tuned is not None:
        results["finetune"] = tuned
    meta_z = results["meta_wh"].logits
    summaries = {
        n: summarize(r.logits, a, meta_z, cfg.max_false_pass, cfg.max_false_reject, cfg.bootstrap_reps)
        for n, r in results.items()
    }
    for n in names:
        h = summaries[n]["headline"]
        log(
            f"  {n:14s} headline AUROC {h['auroc']} CI {h['auroc_ci95']}  fp@cov30 {h['false_pass_at_coverage30']}"
            f"  honest false-pass {h['false_pass_rate']} coverage {h['coverage']} ECE {h['ece']}"
        )
    chosen = cfg.ship or choose(summaries, results)
    if "finetune" in results:
        frozen = choose(summaries, results)
        wins = _choice_key(summaries["finetune"]) < _choice_key(summaries[frozen])
        log(f"finetune vs {frozen} on the same folds: {'finetune wins' if wins else 'the frozen backbone stays'}")
        if chosen == "finetune" and not wins:
            raise ValueError(f"finetune does not beat {frozen} on the same folds: it is not shipped")
    elif chosen == "finetune":
        raise ValueError("--ship finetune needs the finetune approach compared on the same folds (--approach)")
    if chosen not in INPUT_SIZE:
        raise ValueError(f"approach {chosen} cannot be shipped as one ONNX graph; choose one of {list(INPUT_SIZE)}")
    log(f"shipping {chosen}")
    return CrossValidation(results=results, summaries=summaries, meta_z=meta_z, chosen=chosen)
