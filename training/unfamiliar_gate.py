"""Stage 7 of training: the unfamiliar-photo gate (leave-one-source-out, the reference bank, the ImageNet
"what is it?" check) and the operating point measured with it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.backbone import IMAGENET_CATEGORY_CLASSES
from training.cv import Arrays, crossfit_decisions
from training.data import Sample
from training.evaluation import HEADLINE_EXCLUDES
from training.loso import choose_percentile, leave_one_source_out, with_percentile
from training.model import AuthenticatorNet
from training.ood import fit_ood, heldout_distances, write_bank
from training.product_lines import line_keys
from training.run_config import EMB_ATTR, TrainConfig, head_approach
from training.stage_results import (
    Data,
    Graph,
    Quantized,
    UnfamiliarGate,
)


def imagenet_gate(net: AuthenticatorNet, emb: np.ndarray, a: Arrays) -> tuple[float, dict[str, float]]:
    """``imagenet_min_prob`` for the runtime's zero-shot "is it a bag/watch/shoe" check: the 5th
    percentile of the development photos' probability mass on their own category's classes
    (clipped to [0.02, 0.2]), computed from the shipped graph's ImageNet head on the cached
    embedding at the shipped input size; plus the share of each source that passes it."""
    with torch.inference_mode():
        logits = net.backbone.get_classifier()(torch.from_numpy(emb.astype(np.float32))).numpy()
    e = np.exp(logits - logits.max(1, keepdims=True))
    prob = e / e.sum(1, keepdims=True)
    mass = np.array(
        [
            prob[i, IMAGENET_CATEGORY_CLASSES[c]].sum() if c in IMAGENET_CATEGORY_CLASSES else np.nan
            for i, c in enumerate(a.category)
        ]
    )
    ok = np.isfinite(mass)
    if not ok.any():
        return 0.1, {}
    thr = float(np.clip(np.percentile(mass[ok], 5), 0.02, 0.2))
    rec = {str(s): round(float((mass[(a.source == s) & ok] >= thr).mean()), 4) for s in np.unique(a.source[ok])}
    return round(thr, 4), rec


def gated_operating_point(
    z: np.ndarray, a: Arrays, emb: np.ndarray, ood: dict[str, Any], max_false_pass: float, max_false_reject: float
) -> dict[str, Any]:
    """Cross-fitted decisions after the runtime's unfamiliar-photo gate (held-out kNN distance to
    the other folds' bank above the card's threshold -> inconclusive)."""
    _, d = crossfit_decisions(z, a, max_false_pass, max_false_reject)
    dist = heldout_distances(emb, a.fold, int(ood["k"]))
    d = np.where(dist > float(ood["distance_threshold"]), -1, d)
    out: dict[str, Any] = {}
    for name in [*sorted(np.unique(a.source).tolist()), "headline"]:
        m = ~np.isin(a.source, HEADLINE_EXCLUDES) if name == "headline" else a.source == name
        neg = m & (a.y == 0)
        out[name] = {
            "false_pass_rate": round(float((d[neg] == 1).mean()), 4) if neg.any() else None,
            "coverage": round(float((d[m] >= 0).mean()), 4),
            "flagged_unfamiliar": round(float((dist[m] > float(ood["distance_threshold"])).mean()), 4),
        }
    return out


def fit_unfamiliar_gate(
    graph: Graph,
    data: Data,
    quantized: Quantized,
    cfg: TrainConfig,
    out_dir: Path,
    log: Callable[[str], None],
    recognition: list[Sample] | None = None,
    cache_dir: Path | None = None,
) -> UnfamiliarGate:
    """Leave-one-source-out chooses the unfamiliar-photo percentile; the reference bank is written
    beside the graph and the card's ``ood`` section (with the ImageNet "what is it?" gate) fitted;
    ``recognition`` photos then join the bank as recognition-only rows (:mod:`training.recognition`)."""
    chosen, fs, a = quantized.cv.chosen, quantized.features, data.arrays
    emb = getattr(fs, EMB_ATTR[chosen])
    log("leave-one-source-out ...")
    loso_all = leave_one_source_out(
        fs, a, head_approach(chosen), emb, cfg.max_false_pass, cfg.max_false_reject, seed=cfg.seed
    )
    percentile = choose_percentile(loso_all, cfg.max_false_pass)
    loso = with_percentile(loso_all, percentile)
    log(f"unfamiliar-photo percentile {percentile}")
    for src, v in loso.items():
        log(
            f"  LOSO {src:20s} AUROC {v['auroc']} false-pass {v['false_pass_rate']} -> with gate "
            f"{v['false_pass_rate_with_gate']} coverage {v['coverage_with_gate']} unfamiliar {v['flagged_unfamiliar']}"
        )
    bank_path = out_dir / f"{cfg.name}.bank.npz"
    write_bank(bank_path, emb, a.category, a.source, np.array([s.label for s in data.samples]), line_keys(data.samples))
    ood = fit_ood(emb, a.fold, a.source, percentile=percentile)
    ood.update(
        {
            "bank": bank_path.name,
            "bank_arrays": {
                "embeddings": "float16 (N, D), L2-normalised",
                "category": "str",
                "source": "str",
                "label": "str",
                "line": "str (product-line key; empty for none)",
            },
            "imagenet_category_classes": IMAGENET_CATEGORY_CLASSES,
            "percentile_choice": "largest of 80/90/95/97.5/99 at which leave-one-source-out false-pass with the "
            "gate is within bound for every source (else the strictest)",
        }
    )
    ood["imagenet_min_prob"], ood["imagenet_recognised"] = imagenet_gate(graph.net, emb, a)
    if not recognition:
        return UnfamiliarGate(loso=loso, ood=ood, bank_path=bank_path)
    from training.recognition import extend_bank, recognition_summary

    ood.update(extend_bank(bank_path, ood, graph.onnx_path, graph.spec, data.samples, recognition, cache_dir, log))
    return UnfamiliarGate(loso=loso, ood=ood, bank_path=bank_path, recognition_only=recognition_summary(recognition))
