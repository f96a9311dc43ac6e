"""train = features -> grouped CV of every approach -> choose -> cross-fitted shipped head ->
temperature + thresholds on its held-out scores -> ONNX + reference bank + card + report."""

from __future__ import annotations

import csv
import dataclasses
import json
import platform
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from authenticator.vision.card import ExtraFile, ModelCard, SelfTest, Thresholds, sha256_file
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
from training.quantize import calibration_samples, quantize_int8, served_embeddings, set_linear_head
from training.splits import grouped_folds, groups_crossing

INPUT_SIZE = {"global224_lr": 224, "global448_lr": 448, "mil448_mean": 448}
POOL = {"global224_lr": "mean", "global448_lr": "mean", "mil448_mean": "regions"}
EMB_ATTR = {"global224_lr": "emb224", "global448_lr": "emb448", "mil448_mean": "emb448"}
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


def choose(summaries: dict[str, dict[str, Any]], results: dict[str, CVResult]) -> str:
    """Shippable approach with the lowest worst-source false-pass at 30% coverage (then AUROC)."""
    cands = [n for n, r in results.items() if r.shippable]

    def key(n: str) -> tuple[float, float]:
        h = summaries[n]["headline"]
        return (h["worst_source_false_pass_at_coverage30"] or 1.0, -(h["auroc"] or 0.0))

    return min(cands, key=key)


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
) -> ModelCard:
    if quantize not in ("int8", "none"):
        raise ValueError(f"quantize={quantize!r}: choose int8 or none")
    t0 = time.time()
    np.random.seed(seed)
    torch.manual_seed(seed)
    synthetic = all(s.synthetic for s in samples)
    log(f"{len(samples)} photos from {len({s.source for s in samples})} sources (synthetic={synthetic})")
    backbone = load_backbone()
    fs = compute_features(samples, backbone, cache_dir)
    fold = grouped_folds(samples, k=k, seed=seed)
    crossing = groups_crossing(samples, fold)
    if crossing:
        raise RuntimeError(f"item groups cross folds: {crossing[:5]}")
    a = arrays_for(samples, fold)
    names = approaches or list(APPROACHES)
    if "meta_wh" not in names:
        names = [*names, "meta_wh"]
    results = run_cv(fs, a, names, seed, log)
    meta_z = results["meta_wh"].logits
    summaries = {
        n: summarize(r.logits, a, meta_z, max_false_pass, max_false_reject, bootstrap_reps) for n, r in results.items()
    }
    for n in names:
        h = summaries[n]["headline"]
        log(
            f"  {n:14s} headline AUROC {h['auroc']} CI {h['auroc_ci95']}  fp@cov30 {h['false_pass_at_coverage30']}"
            f"  honest false-pass {h['false_pass_rate']} coverage {h['coverage']} ECE {h['ece']}"
        )
    chosen = ship or choose(summaries, results)
    if chosen not in INPUT_SIZE:
        raise ValueError(f"approach {chosen} cannot be shipped as one ONNX graph; choose one of {list(INPUT_SIZE)}")
    log(f"shipping {chosen}")
    size = INPUT_SIZE[chosen]
    spec = PreprocessSpec(input_size=size)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / f"{name}.onnx"
    net = AuthenticatorNet(backbone, pool=POOL[chosen], input_size=size, grid=GRID)
    net.eval()
    probe = np.stack([training_input(s.path.read_bytes(), spec) for s in samples[:3]])
    quantization: dict[str, Any] | None = None
    if quantize != "none" and POOL[chosen] != "mean":
        log(f"{chosen} scores regions of the feature map; only globally pooled heads are quantized: shipping float")
    elif quantize != "none":
        # The float graph is checked against torch and the cached features, quantized, and then
        # the shipped approach is cross-validated again on the embeddings the INT8 graph computes.
        with tempfile.TemporaryDirectory() as tmp:
            float_path = Path(tmp) / "float.onnx"
            max_diff = _export_checked(
                net, LinearHead.average(results[chosen].heads), fs, chosen, float_path, probe, log
            )
            calib = calibration_samples(samples, calibration_photos, seed)
            log(f"quantizing to INT8 ({calibration_method} calibration on {len(calib)} photos) ...")
            quantization = quantize_int8(
                float_path, onnx_path, [training_input(s.path.read_bytes(), spec) for s in calib], calibration_method
            )
        float_emb = getattr(fs, EMB_ATTR[chosen])
        served_emb, _ = served_embeddings(onnx_path, samples, spec, cache_dir)
        float_summary = summaries[chosen]
        fs = dataclasses.replace(fs, **{EMB_ATTR[chosen]: served_emb})
        results.update(run_cv(fs, a, [chosen], seed, log))
        summaries[chosen] = summarize(
            results[chosen].logits, a, meta_z, max_false_pass, max_false_reject, bootstrap_reps
        )
        quantization |= quantization_effect(float_emb, served_emb, float_summary, summaries[chosen])
        log(f"INT8 vs float: {quantization['effect']}")
    res = results[chosen]
    head = LinearHead.average(res.heads)
    # held-out scores of the shipped (fold-averaged) model: each photo scored by the fold head that did not see it
    z = res.logits
    temperature = fit_temperature(a.y, z)
    p = sigmoid(z / temperature)
    authentic_above, counterfeit_below = fit_thresholds(a.y, p, a.source, max_false_pass, max_false_reject)
    log(
        f"temperature {temperature:.3f}  authentic_above {authentic_above:.4f}  "
        f"counterfeit_below {counterfeit_below:.4f}"
    )
    emb = getattr(fs, EMB_ATTR[chosen])
    if quantization is not None:
        set_linear_head(onnx_path, head)
        head_diff = _served_head_diff(onnx_path, head, probe)
        quantization["head_consistency_max_abs_diff"] = head_diff
        log(f"INT8 graph: head written; graph logit vs head(graph embedding) diff {head_diff:.2e}")
        if head_diff > 1e-4:
            raise RuntimeError(f"the INT8 graph's logit disagrees with its head: {head_diff}")
    else:
        max_diff = _export_checked(net, head, fs, chosen, onnx_path, probe, log)

    log("leave-one-source-out ...")
    loso_all = leave_one_source_out(fs, a, chosen, emb, max_false_pass, max_false_reject, seed=seed)
    percentile = choose_percentile(loso_all, max_false_pass)
    loso = with_percentile(loso_all, percentile)
    log(f"unfamiliar-photo percentile {percentile}")
    for src, v in loso.items():
        log(
            f"  LOSO {src:20s} AUROC {v['auroc']} false-pass {v['false_pass_rate']} -> with gate "
            f"{v['false_pass_rate_with_gate']} coverage {v['coverage_with_gate']} unfamiliar {v['flagged_unfamiliar']}"
        )
    bank_path = out_dir / f"{name}.bank.npz"
    write_bank(bank_path, emb, a.category, a.source, np.array([s.label for s in samples]))
    ood = fit_ood(emb, fold, a.source, percentile=percentile)
    ood.update(
        {
            "bank": bank_path.name,
            "bank_arrays": {
                "embeddings": "float16 (N, D), L2-normalised",
                "category": "str",
                "source": "str",
                "label": "str",
            },
            "imagenet_category_classes": IMAGENET_CATEGORY_CLASSES,
            "percentile_choice": "largest of 80/90/95/97.5/99 at which leave-one-source-out false-pass with the "
            "gate is within bound for every source (else the strictest)",
        }
    )
    ood["imagenet_min_prob"], ood["imagenet_recognised"] = imagenet_gate(net, emb, a)
    chosen_summary = summaries[chosen]
    for src, v in chosen_summary["per_source"].items():
        log(
            f"  {chosen} {src:20s} n={v['n']:5d} AUROC {v['auroc']} CI {v['auroc_ci95']} (metadata w/h "
            f"{v.get('metadata_wh_auroc')}) ECE {v['ece']} false-pass {v['false_pass_rate']} coverage {v['coverage']}"
        )
    gated = gated_operating_point(res.logits, a, emb, ood, max_false_pass, max_false_reject)
    log(f"with the unfamiliar-photo gate (in-distribution, cross-fitted): {gated['headline']}")
    validated = sorted(
        c for c in chosen_summary["per_category"] if not synthetic and chosen_summary["per_category"][c]["n"] >= 20
    )
    metrics = {
        "approach": chosen,
        "approach_description": APPROACHES[chosen][0],
        "evaluation": f"{k}-fold item-grouped CV stratified by source x label; operating point cross-fitted "
        "(temperature and thresholds for each fold fitted on the other folds' held-out scores)",
        "headline_excludes": list(HEADLINE_EXCLUDES),
        "headline": chosen_summary["headline"] | {"risk_coverage": None},
        "per_source": chosen_summary["per_source"],
        "per_category": chosen_summary["per_category"],
        "threshold_fit": {
            "max_false_pass_per_source": max_false_pass,
            "max_false_reject_per_source": max_false_reject,
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
        "leave_one_source_out": loso,
        "with_unfamiliar_gate": gated,
        "onnx_parity_max_abs_diff": max_diff,
        "onnx_parity_of": "the float graph vs torch" if quantization else "the shipped graph vs torch",
        "quantization": quantization,
        "synthetic_only": synthetic,
    }
    metrics["headline"].pop("risk_coverage", None)
    card = ModelCard(
        name=name,
        version=version or datetime.now(UTC).strftime("%Y.%m.%d-%H%M%S"),
        onnx_file=onnx_path.name,
        sha256=sha256_file(onnx_path),
        synthetic=synthetic,
        preprocessing=spec,
        categories=["bag", "watch", "sneaker"],
        validated_categories=validated,
        temperature=round(temperature, 6),
        aggregation="mean_logit",
        thresholds=Thresholds(authentic_above=authentic_above, counterfeit_below=counterfeit_below),
        ood=ood,
        extra_files=[
            ExtraFile(
                path=bank_path.name,
                sha256=sha256_file(bank_path),
                purpose="reference bank for the unfamiliar-photo (OOD) check: "
                "L2-normalised embeddings with category/source/label",
            )
        ],
        training_data=data_summary(samples),
        metrics=metrics,
        backbone=BACKBONE_INFO,
        reproduce=reproduce,
        self_test=graph_self_test(onnx_path, size),
    )
    card_path = out_dir / f"{name}.card.json"
    card_path.write_text(card.model_dump_json(indent=2))
    ModelCard.load(card_path).verify_files(card_path)
    log(f"wrote {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB), {bank_path}, {card_path}")
    if runs_dir is not None:
        runs_dir.mkdir(parents=True, exist_ok=True)
        np.savez(
            runs_dir / f"{name}.head.npz",
            w=head.w,
            b=head.b,
            input_size=size,
            pool=POOL[chosen],
            grid=GRID,
            int8_features=quantization is not None,
        )
        with (runs_dir / f"{name}.oof.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "source", "category", "item_group", "y", "fold", "logit"])
            for smp, fo, zz in zip(samples, fold, z, strict=True):
                w.writerow([str(smp.path), smp.source, smp.category, smp.item_group, smp.y, int(fo), f"{zz:.6f}"])
    if report:
        from training.report import write_report

        write_report(
            out_dir / "report",
            card,
            summaries,
            results,
            a,
            fs,
            meta_z,
            chosen,
            temperature,
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
