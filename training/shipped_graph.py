"""Stages 4-6 of training: the chosen approach as the ONNX graph that ships: built, quantized (and
cross-validated again on its own embeddings), calibrated, exported with its head and checked."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from authenticator.vision.card import SelfTest
from authenticator.vision.preprocess import PreprocessSpec
from authenticator.vision.runtime import ModelOutputs, inference_session, record_self_test, self_test_input
from training.cv import Arrays, run_cv
from training.data import Sample, training_input
from training.evaluation import summarize
from training.export import export_onnx, parity
from training.features import GRID, FeatureSet
from training.heads import LinearHead
from training.metrics import fit_temperature, fit_thresholds, sigmoid
from training.model import AuthenticatorNet
from training.quantize import calibration_samples, quantize_int8, served_embeddings, set_linear_head
from training.run_config import EMB_ATTR, INPUT_SIZE, POOL, TrainConfig, head_approach
from training.stage_results import (
    Calibration,
    CrossValidation,
    Data,
    Exported,
    Graph,
    Quantized,
)


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
    sess = inference_session(path)
    logit, emb = sess.run(["authenticity_logit", "embedding"], {"image": probe.astype(np.float32)})
    return float(np.abs(np.asarray(logit).reshape(-1) - head(np.asarray(emb))).max())


def graph_self_test(path: Path, size: int) -> SelfTest:
    """What the shipped graph computes on the runtime's fixed probe (checked again at every load)."""
    sess = inference_session(path)
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
