"""Stages 8-10 of training: what the model card says (training data, per-line operating points,
metrics), the card itself, and the run files later commands refit from."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from authenticator.vision.card import ExtraFile, ModelCard, ProductLines, Thresholds, sha256_file
from authenticator.vision.category import CATEGORIES
from training.backbone import BACKBONE_INFO
from training.cv import APPROACHES
from training.data import Sample
from training.evaluation import HEADLINE_EXCLUDES
from training.features import GRID
from training.ood import heldout_distances
from training.product_lines import fit_product_lines
from training.run_config import EMB_ATTR, POOL, TrainConfig
from training.shipped_graph import (
    graph_self_test,
)
from training.stage_results import (
    Calibration,
    Data,
    Exported,
    Graph,
    Quantized,
    UnfamiliarGate,
)
from training.unfamiliar_gate import gated_operating_point


def data_summary(samples: list[Sample]) -> dict[str, Any]:
    by_source: dict[str, Any] = {}
    for s in samples:
        e = by_source.setdefault(
            s.source, {"category": s.category, "authentic": 0, "counterfeit": 0, "item_groups": set(), "license": ""}
        )
        e[s.label] += 1
        e["item_groups"].add(s.item_group)
        e["license"] = s.extra.get("license", "synthetic" if s.synthetic else "")
    for e in by_source.values():
        e["item_groups"] = len(e["item_groups"])
    cats = Counter((s.category, s.label) for s in samples)
    return {
        "n_photos": len(samples),
        "synthetic": all(s.synthetic for s in samples),
        "sources": by_source,
        "per_category": {
            c: {lab: cats[(c, lab)] for lab in ("authentic", "counterfeit")} for c in sorted({c for c, _ in cats})
        },
        "licence_note": "Development photos are third-party images used for internal research only; not redistributed.",
    }


def fit_lines(
    data: Data,
    quantized: Quantized,
    calibration: Calibration,
    gate: UnfamiliarGate,
    cfg: TrainConfig,
    log: Callable[[str], None],
) -> ProductLines:
    """An operating point per validated product line, fitted on the shipped head's held-out scores
    of that line's photos (see :mod:`training.product_lines`)."""
    emb = getattr(quantized.features, EMB_ATTR[quantized.cv.chosen])
    a = data.arrays
    dist = heldout_distances(emb, a.fold, int(gate.ood["k"]))
    section, _ = fit_product_lines(
        calibration.z,
        a,
        data.samples,
        dist,
        float(gate.ood["distance_threshold"]),
        emb,
        synthetic=data.synthetic,
        max_false_pass=cfg.max_false_pass,
        max_false_reject=cfg.max_false_reject,
        reps=cfg.bootstrap_reps,
        global_pair=(calibration.temperature, calibration.authentic_above, calibration.counterfeit_below),
    )
    for op in section.lines:
        f = op.figures
        log(
            f"  line {op.key:28s} validated={op.validated} items {op.items} false-pass {f.get('false_pass_rate')} "
            f"false-reject {f.get('false_reject_rate')} coverage {f.get('coverage')}"
            + (f" ({op.why_not_validated})" if op.why_not_validated else "")
        )
    return section


def card_metrics(
    data: Data,
    quantized: Quantized,
    exported: Exported,
    gate: UnfamiliarGate,
    cfg: TrainConfig,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """The card's ``metrics``: the chosen approach per source and category, the comparison of every
    approach, leave-one-source-out, the operating point with the unfamiliar-photo gate, parity."""
    cv, a = quantized.cv, data.arrays
    chosen, summaries = cv.chosen, cv.summaries
    quantization = exported.quantization
    chosen_summary = summaries[chosen]
    for src, v in chosen_summary["per_source"].items():
        log(
            f"  {chosen} {src:20s} n={v['n']:5d} AUROC {v['auroc']} CI {v['auroc_ci95']} (metadata w/h "
            f"{v.get('metadata_wh_auroc')}) ECE {v['ece']} false-pass {v['false_pass_rate']} coverage {v['coverage']}"
        )
    emb = getattr(quantized.features, EMB_ATTR[chosen])
    gated = gated_operating_point(cv.results[chosen].logits, a, emb, gate.ood, cfg.max_false_pass, cfg.max_false_reject)
    log(f"with the unfamiliar-photo gate (in-distribution, cross-fitted): {gated['headline']}")
    metrics = {
        "approach": chosen,
        "approach_description": APPROACHES[chosen][0],
        "evaluation": f"{cfg.k}-fold item-grouped CV stratified by source x label; operating point cross-fitted "
        "(temperature and thresholds for each fold fitted on the other folds' held-out scores)",
        "headline_excludes": list(HEADLINE_EXCLUDES),
        "headline": chosen_summary["headline"] | {"risk_coverage": None},
        "per_source": chosen_summary["per_source"],
        "per_category": chosen_summary["per_category"],
        "threshold_fit": {
            "max_false_pass_per_source": cfg.max_false_pass,
            "max_false_reject_per_source": cfg.max_false_reject,
            "fitted_on": "out-of-fold scores of the fold heads averaged into the shipped head (cross-fitting)",
        },
        "comparison": {
            n: {
                "description": APPROACHES[n][0],
                "headline_auroc": s["headline"]["auroc"],
                "headline_auroc_ci95": s["headline"]["auroc_ci95"],
                "false_pass_at_coverage30": s["headline"]["false_pass_at_coverage30"],
                "worst_source_false_pass_at_coverage30": s["headline"]["worst_source_false_pass_at_coverage30"],
                "crossfit_false_pass": s["headline"]["false_pass_rate"],
                "crossfit_coverage": s["headline"]["coverage"],
                "per_source_auroc": {src: v["auroc"] for src, v in s["per_source"].items()},
            }
            for n, s in summaries.items()
        },
        "leave_one_source_out": gate.loso,
        "with_unfamiliar_gate": gated,
        "onnx_parity_max_abs_diff": exported.parity,
        "onnx_parity_of": "the float graph vs torch" if quantization else "the shipped graph vs torch",
        "quantization": quantization,
        "synthetic_only": data.synthetic,
    }
    metrics["headline"].pop("risk_coverage", None)
    return metrics


def write_card(
    graph: Graph,
    data: Data,
    quantized: Quantized,
    calibration: Calibration,
    gate: UnfamiliarGate,
    metrics: dict[str, Any],
    cfg: TrainConfig,
    out_dir: Path,
    log: Callable[[str], None],
    product_lines: ProductLines | None = None,
) -> ModelCard:
    """``<name>.card.json`` beside the graph and the bank, read back and checked against their hashes."""
    chosen_summary = quantized.cv.summaries[quantized.cv.chosen]
    validated = sorted(
        c for c in chosen_summary["per_category"] if not data.synthetic and chosen_summary["per_category"][c]["n"] >= 20
    )
    onnx_path, bank_path = graph.onnx_path, gate.bank_path
    card = ModelCard(
        name=cfg.name,
        version=cfg.version or datetime.now(UTC).strftime("%Y.%m.%d-%H%M%S"),
        onnx_file=onnx_path.name,
        sha256=sha256_file(onnx_path),
        synthetic=data.synthetic,
        preprocessing=graph.spec,
        categories=list(CATEGORIES),
        validated_categories=validated,
        temperature=round(calibration.temperature, 6),
        aggregation="mean_logit",
        thresholds=Thresholds(
            authentic_above=calibration.authentic_above, counterfeit_below=calibration.counterfeit_below
        ),
        ood=gate.ood,
        extra_files=[
            ExtraFile(
                path=bank_path.name,
                sha256=sha256_file(bank_path),
                purpose="reference bank for the unfamiliar-photo (OOD) check: "
                "L2-normalised embeddings with category/source/label/line",
            )
        ],
        training_data=data_summary(data.samples)
        | ({"recognition_only": gate.recognition_only} if gate.recognition_only else {}),
        metrics=metrics,
        backbone=BACKBONE_INFO,
        reproduce=cfg.reproduce,
        self_test=graph_self_test(onnx_path, graph.spec.input_size),
        product_lines=product_lines,
    )
    card_path = out_dir / f"{cfg.name}.card.json"
    card_path.write_text(card.model_dump_json(indent=2))
    ModelCard.load(card_path).verify_files(card_path)
    log(f"wrote {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB), {bank_path}, {card_path}")
    return card


def write_run_files(
    runs_dir: Path, name: str, graph: Graph, data: Data, quantized: Quantized, calibration: Calibration
) -> None:
    """``<name>.head.npz`` (for ``python -m training export``) and ``<name>.oof.csv``, the held-out
    scores ``python -m training calibrate`` refits from."""
    chosen = quantized.cv.chosen
    runs_dir.mkdir(parents=True, exist_ok=True)
    np.savez(
        runs_dir / f"{name}.head.npz",
        w=calibration.head.w,
        b=calibration.head.b,
        input_size=graph.spec.input_size,
        pool=POOL[chosen],
        grid=GRID,
        int8_features=quantized.quantization is not None,
    )
    with (runs_dir / f"{name}.oof.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "source", "category", "item_group", "y", "fold", "logit"])
        for smp, fo, zz in zip(data.samples, data.arrays.fold, calibration.z, strict=True):
            w.writerow([str(smp.path), smp.source, smp.category, smp.item_group, smp.y, int(fo), f"{zz:.6f}"])


def save_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, default=float))
