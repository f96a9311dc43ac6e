"""train = data (item-grouped folds) -> features -> grouped CV of every approach -> choose ->
INT8 graph (CV again on its embeddings) -> temperature + thresholds on the shipped head's held-out
scores -> export -> unfamiliar-photo gate (LOSO, bank) -> product lines (an operating point per
validated line) -> metrics -> card -> run files + report.

Each stage is a function from the dataclasses of the earlier stages to its own (:class:`Data`,
:class:`Features`, :class:`CrossValidation`, :class:`Quantized`, :class:`Calibration`,
:class:`Exported`, :class:`UnfamiliarGate`, :class:`~authenticator.vision.card.ProductLines`);
:func:`train` lists them in order."""

from __future__ import annotations

import csv
import dataclasses
import json
import platform
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from authenticator.vision.card import ExtraFile, ModelCard, ProductLines, SelfTest, Thresholds, sha256_file
from authenticator.vision.category import CATEGORIES
from authenticator.vision.preprocess import PreprocessSpec
from authenticator.vision.runtime import ModelOutputs, record_self_test, self_test_input
from training.backbone import BACKBONE_INFO, IMAGENET_CATEGORY_CLASSES, load_backbone
from training.cv import APPROACHES, Arrays, CVResult, crossfit_decisions, run_cv
from training.data import Sample, training_input
from training.evaluation import HEADLINE_EXCLUDES, summarize
from training.export import export_onnx, parity
from training.features import GRID, FeatureSet, compute_features
from training.heads import LinearHead
from training.loso import choose_percentile, leave_one_source_out, with_percentile
from training.metrics import fit_temperature, fit_thresholds, sigmoid
from training.model import AuthenticatorNet
from training.ood import fit_ood, heldout_distances, write_bank
from training.product_lines import fit_product_lines, line_keys
from training.quantize import calibration_samples, quantize_int8, served_embeddings, set_linear_head
from training.splits import grouped_folds, groups_crossing

INPUT_SIZE = {"global224_lr": 224, "global448_lr": 448, "mil448_mean": 448, "finetune": 448}
POOL = {"global224_lr": "mean", "global448_lr": "mean", "mil448_mean": "regions", "finetune": "mean"}
EMB_ATTR = {"global224_lr": "emb224", "global448_lr": "emb448", "mil448_mean": "emb448", "finetune": "emb448"}
#: The head fitted on the shipped graph's own embeddings: a fine-tuned backbone gets a linear head
#: like the frozen 448 px one (cross-validated again on its served embeddings).
HEAD_APPROACH = {"finetune": "global448_lr"}


def head_approach(chosen: str) -> str:
    return HEAD_APPROACH.get(chosen, chosen)


VALIDATED_MIN_SOURCES_REAL = 1


def arrays_for(samples: list[Sample], fold: np.ndarray) -> Arrays:
    return Arrays(
        y=np.array([s.y for s in samples]),
        fold=fold,
        groups=np.array([f"{s.source}|{s.item_group}" for s in samples]),
        strata=np.array([f"{s.source}|{s.label}" for s in samples]),
        source=np.array([s.source for s in samples]),
        category=np.array([s.category for s in samples]),
    )


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


def _choice_key(summary: dict[str, Any]) -> tuple[float, float]:
    h = summary["headline"]
    return (h["worst_source_false_pass_at_coverage30"] or 1.0, -(h["auroc"] or 0.0))


def choose(summaries: dict[str, dict[str, Any]], results: dict[str, CVResult]) -> str:
    """Shippable approach with the lowest worst-source false-pass at 30% coverage (then AUROC)."""
    cands = [n for n, r in results.items() if r.shippable]
    return min(cands, key=lambda n: _choice_key(summaries[n]))


def shipped_backbone(
    backbone: nn.Module, chosen: str, samples: list[Sample], cfg: TrainConfig, log: Callable[[str], None]
) -> nn.Module:
    """The frozen backbone, or (``finetune`` chosen) the backbone fine-tuned on every photo."""
    if chosen != "finetune":
        return backbone
    if cfg.quantize != "int8":
        raise ValueError("a fine-tuned backbone ships as the INT8 graph (its head is fitted on the served embeddings)")
    from training.finetune import finetune_backbone

    log("fine-tuning the shipped backbone on every photo ...")
    return finetune_backbone(samples, cfg.seed)[0]


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


def train(
    samples: list[Sample],
    out_dir: Path,
    name: str = "authenticator",
    cache_dir: Path | None = Path("training/runs/cache"),
    runs_dir: Path | None = Path("training/runs"),
    k: int = 5,
    seed: int = 0,
    approaches: list[str] | None = None,
    ship: str | None = None,
    max_false_pass: float = 0.01,
    max_false_reject: float = 0.05,
    bootstrap_reps: int = 500,
    quantize: str = "int8",
    calibration_method: str = "percentile",
    calibration_photos: int = 64,
    report: bool = True,
    reproduce: str = "",
    version: str | None = None,
    log: Callable[[str], None] = print,
    recognition: list[Sample] | None = None,
) -> ModelCard:
    """The stages in order; each takes what the earlier ones produced. ``recognition``: photos that
    only join the reference bank's category vote (:mod:`training.recognition`), never a head,
    threshold or figure of the verdict."""
    cfg = TrainConfig(
        name=name,
        k=k,
        seed=seed,
        approaches=approaches,
        ship=ship,
        max_false_pass=max_false_pass,
        max_false_reject=max_false_reject,
        bootstrap_reps=bootstrap_reps,
        quantize=quantize,
        calibration_method=calibration_method,
        calibration_photos=calibration_photos,
        reproduce=reproduce,
        version=version,
    )
    t0 = time.time()
    np.random.seed(seed)
    torch.manual_seed(seed)
    data = split_data(samples, cfg, log)
    feats = extract_features(samples, cache_dir)
    cv = cross_validate(feats.features, data.arrays, cfg, log, samples)
    graph = build_graph(
        shipped_backbone(feats.backbone, cv.chosen, samples, cfg, log), cv.chosen, samples, out_dir, name
    )
    quantized = quantize_graph(graph, data, feats.features, cv, cfg, cache_dir, log)
    calibration = fit_calibration(quantized.cv, data.arrays, cfg, log)
    exported = export_graph(graph, quantized, calibration, log)
    gate = fit_unfamiliar_gate(graph, data, quantized, cfg, out_dir, log, recognition, cache_dir)
    lines = fit_lines(data, quantized, calibration, gate, cfg, log)
    metrics = card_metrics(data, quantized, exported, gate, cfg, log)
    card = write_card(graph, data, quantized, calibration, gate, metrics, cfg, out_dir, log, lines)
    if runs_dir is not None:
        write_run_files(runs_dir, name, graph, data, quantized, calibration)
    if report:
        from training.report import write_report

        write_report(
            out_dir / "report",
            card,
            quantized.cv.summaries,
            quantized.cv.results,
            data.arrays,
            quantized.features,
            quantized.cv.meta_z,
            quantized.cv.chosen,
            calibration.temperature,
            environment={
                "python": platform.python_version(),
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "seconds": round(time.time() - t0, 1),
            },
        )
        log(f"wrote {out_dir / 'report'}")
    log(f"done in {time.time() - t0:.0f} s")
    return card


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


def build_graph(backbone: nn.Module, chosen: str, samples: list[Sample], out_dir: Path, name: str) -> Graph:
    """The chosen approach as one network (backbone + pooling + head) and its probe photos."""
    size = INPUT_SIZE[chosen]
    spec = PreprocessSpec(input_size=size)
    out_dir.mkdir(parents=True, exist_ok=True)
    net = AuthenticatorNet(backbone, pool=POOL[chosen], input_size=size, grid=GRID)
    net.eval()
    probe = np.stack([training_input(s.path.read_bytes(), spec) for s in samples[:3]])
    return Graph(net=net, spec=spec, onnx_path=out_dir / f"{name}.onnx", probe=probe)


def quantize_graph(
    graph: Graph,
    data: Data,
    fs: FeatureSet,
    cv: CrossValidation,
    cfg: TrainConfig,
    cache_dir: Path | None,
    log: Callable[[str], None],
) -> Quantized:
    """With ``quantize=int8`` (globally pooled heads only): the float graph is checked against torch
    and the cached features, quantized, and the chosen approach is cross-validated again on the
    embeddings the INT8 graph computes, so the head, thresholds and metrics are the served graph's."""
    chosen = cv.chosen
    if cfg.quantize == "none":
        return Quantized(features=fs, cv=cv, quantization=None, float_parity=None)
    if POOL[chosen] != "mean":
        log(f"{chosen} scores regions of the feature map; only globally pooled heads are quantized: shipping float")
        return Quantized(features=fs, cv=cv, quantization=None, float_parity=None)
    samples, spec = data.samples, graph.spec
    with tempfile.TemporaryDirectory() as tmp:
        float_path = Path(tmp) / "float.onnx"
        if chosen == "finetune":  # no cached features of this backbone: parity with torch only, a zero head
            graph.net.set_head(LinearHead(np.zeros(1280), 0.0))
            export_onnx(graph.net, float_path, INPUT_SIZE[chosen])
            max_diff = parity(graph.net, float_path, graph.probe)
        else:
            max_diff = _export_checked(
                graph.net, LinearHead.average(cv.results[chosen].heads), fs, chosen, float_path, graph.probe, log
            )
        calib = calibration_samples(samples, cfg.calibration_photos, cfg.seed)
        log(f"quantizing to INT8 ({cfg.calibration_method} calibration on {len(calib)} photos) ...")
        quantization = quantize_int8(
            float_path,
            graph.onnx_path,
            [training_input(s.path.read_bytes(), spec) for s in calib],
            cfg.calibration_method,
        )
    float_emb = getattr(fs, EMB_ATTR[chosen])
    served_emb, _ = served_embeddings(graph.onnx_path, samples, spec, cache_dir)
    float_summary = cv.summaries[chosen]
    if chosen == "finetune":
        float_emb = served_emb  # the frozen features are another backbone's: nothing to compare with
    fs = dataclasses.replace(fs, **{EMB_ATTR[chosen]: served_emb})
    head = head_approach(chosen)
    refit = run_cv(fs, data.arrays, [head], cfg.seed, log)[head]
    results = {**cv.results, chosen: dataclasses.replace(refit, name=chosen, shippable=True)}
    summaries = dict(cv.summaries)
    summaries[chosen] = summarize(
        results[chosen].logits, data.arrays, cv.meta_z, cfg.max_false_pass, cfg.max_false_reject, cfg.bootstrap_reps
    )
    quantization |= quantization_effect(float_emb, served_emb, float_summary, summaries[chosen])
    log(f"INT8 vs float: {quantization['effect']}")
    return Quantized(
        features=fs,
        cv=dataclasses.replace(cv, results=results, summaries=summaries),
        quantization=quantization,
        float_parity=max_diff,
    )


def fit_calibration(cv: CrossValidation, a: Arrays, cfg: TrainConfig, log: Callable[[str], None]) -> Calibration:
    """Temperature and the two thresholds, fitted on the held-out scores of the shipped model."""
    res = cv.results[cv.chosen]
    head = LinearHead.average(res.heads)
    # held-out scores of the shipped (fold-averaged) model: each photo scored by the fold head that did not see it
    z = res.logits
    temperature = fit_temperature(a.y, z)
    p = sigmoid(z / temperature)
    authentic_above, counterfeit_below = fit_thresholds(a.y, p, a.source, cfg.max_false_pass, cfg.max_false_reject)
    log(
        f"temperature {temperature:.3f}  authentic_above {authentic_above:.4f}  "
        f"counterfeit_below {counterfeit_below:.4f}"
    )
    return Calibration(
        head=head,
        z=z,
        temperature=temperature,
        authentic_above=authentic_above,
        counterfeit_below=counterfeit_below,
    )


def export_graph(graph: Graph, quantized: Quantized, calibration: Calibration, log: Callable[[str], None]) -> Exported:
    """Write the fitted head into the INT8 graph (and check it), or export the float graph with it."""
    head, quantization = calibration.head, quantized.quantization
    if quantization is None:
        parity = _export_checked(
            graph.net, head, quantized.features, quantized.cv.chosen, graph.onnx_path, graph.probe, log
        )
        return Exported(parity=parity, quantization=None)
    assert quantized.float_parity is not None  # measured when the float graph was quantized
    set_linear_head(graph.onnx_path, head)
    head_diff = _served_head_diff(graph.onnx_path, head, graph.probe)
    log(f"INT8 graph: head written; graph logit vs head(graph embedding) diff {head_diff:.2e}")
    if head_diff > 1e-4:
        raise RuntimeError(f"the INT8 graph's logit disagrees with its head: {head_diff}")
    return Exported(
        parity=quantized.float_parity, quantization={**quantization, "head_consistency_max_abs_diff": head_diff}
    )


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


def _export_checked(
    net: AuthenticatorNet,
    head: LinearHead,
    fs: FeatureSet,
    chosen: str,
    path: Path,
    probe: np.ndarray,
    log: Callable[[str], None],
) -> float:
    """Export the float graph with ``head`` and prove it computes what torch and the cached
    features (on which the CV measured everything) compute; returns the onnxruntime parity."""
    net.set_head(head)
    export_onnx(net, path, INPUT_SIZE[chosen])
    max_diff = parity(net, path, probe)
    # the cached-feature scores the CV measured must be what the exported network computes
    emb = getattr(fs, EMB_ATTR[chosen])
    cached = head(emb[:3]) if POOL[chosen] == "mean" else head(fs.grid448[:3].astype(np.float32).mean(1))
    with torch.inference_mode():
        live = net(torch.from_numpy(probe))[0].numpy()
    feat_diff = float(np.abs(cached - live).max())
    log(f"onnx parity max abs diff {max_diff:.2e}; cached-feature vs network logit diff {feat_diff:.2e}")
    if max_diff > 1e-4:
        raise RuntimeError(f"onnxruntime parity failed: {max_diff}")
    if feat_diff > (1e-3 if POOL[chosen] == "mean" else 3e-2):  # region features are cached as float16
        raise RuntimeError(f"cached features disagree with the network: {feat_diff}")
    return max_diff


def _served_head_diff(path: Path, head: LinearHead, probe: np.ndarray) -> float:
    """Max |graph logit - head(graph embedding)|: the head written into the graph is the fitted one."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logit, emb = sess.run(["authenticity_logit", "embedding"], {"image": probe.astype(np.float32)})
    return float(np.abs(np.asarray(logit).reshape(-1) - head(np.asarray(emb))).max())


def graph_self_test(path: Path, size: int) -> SelfTest:
    """What the shipped graph computes on the runtime's fixed probe (checked again at every load)."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logit, emb = sess.run(["authenticity_logit", "embedding"], {"image": self_test_input(size)})
    return record_self_test(ModelOutputs(np.asarray(logit).reshape(-1), None, np.asarray(emb)))


def quantization_effect(
    float_emb: np.ndarray, served_emb: np.ndarray, float_summary: dict[str, Any], served_summary: dict[str, Any]
) -> dict[str, Any]:
    """How far the INT8 embeddings are from torch's float ones, and what that did to the CV."""
    cos = (float_emb * served_emb).sum(1) / (
        np.linalg.norm(float_emb, axis=1) * np.linalg.norm(served_emb, axis=1) + 1e-12
    )
    fh, sh = float_summary["headline"], served_summary["headline"]
    return {
        "effect": {
            "embedding_cosine_to_float": {
                "median": round(float(np.median(cos)), 4),
                "p01": round(float(np.percentile(cos, 1)), 4),
                "min": round(float(cos.min()), 4),
            },
            "headline_auroc_float_features": fh["auroc"],
            "headline_auroc_int8_features": sh["auroc"],
            "headline_false_pass_float_features": fh["false_pass_rate"],
            "headline_false_pass_int8_features": sh["false_pass_rate"],
            "headline_coverage_float_features": fh["coverage"],
            "headline_coverage_int8_features": sh["coverage"],
            "per_source_auroc_float_features": {k: v["auroc"] for k, v in float_summary["per_source"].items()},
        }
    }


def save_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, default=float))
