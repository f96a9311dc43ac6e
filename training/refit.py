"""Refits on the shipped graph's own (cached) embeddings, without the backbone or torch features.

Two uses of the same stages as :func:`training.pipeline.train` from the quantized graph on:

- :func:`refit_product_lines` (``python -m training refit-lines``): the card's per-line operating
  points, the bank's line labels and the report's product-line section for a model that is already
  shipped. The ONNX file is not touched (its bytes and sha256 stay the same): the cross-validation of
  the shipped approach is rerun on the embeddings the shipped graph computes, and the refit refuses
  to go on unless the fold-averaged head it gets is the head inside the graph.
- :func:`train_head` (``authenticator model train``'s default recipe): a candidate that keeps the
  champion's frozen INT8 graph and refits its head, temperature, thresholds, product lines,
  unfamiliar-photo bank and card on a new dataset (development photos + lab-certified items), by
  the pipeline's stages (item-grouped CV, cross-fitting, nested figures).

Embeddings are cached per graph (without its head) and photo bytes under ``cache_dir``, so a new
dataset only computes its new photos.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from authenticator.vision.card import ExtraFile, ModelCard, Thresholds, sha256_file
from authenticator.vision.preprocess import PreprocessSpec
from authenticator.vision.runtime import inference_session
from training.approach_choice import split_data
from training.card_writing import data_summary
from training.cv import run_cv
from training.data import Sample, training_input
from training.evaluation import summarize
from training.features import FeatureSet
from training.heads import LinearHead, l2n
from training.metrics import fit_temperature, fit_thresholds, sigmoid
from training.ood import fit_ood, heldout_distances, write_bank
from training.product_lines import fit_product_lines, markdown_section, replace_section
from training.quantize import HEAD_BIAS, HEAD_WEIGHT, graph_digest, set_linear_head
from training.recognition import carry_recognition_rows
from training.run_config import EMB_ATTR, TrainConfig
from training.shipped_graph import graph_self_test
from training.stage_results import Data

Log = Callable[[str], None]


# --- embeddings, cached per graph and photo ------------------------------------------------------


def photo_embeddings(
    graph: Path, samples: Sequence[Sample], spec: PreprocessSpec, cache_dir: Path | None, threads: int = 2
) -> np.ndarray:
    """The graph's embedding of every photo (N, D), as serving computes it; cached per photo in
    ``cache_dir/photo-emb-<graph digest>.npz`` (the graph's head does not change its embeddings)."""
    digest = graph_digest(graph)
    shas = [hashlib.sha256(s.path.read_bytes()).hexdigest() for s in samples]
    store: dict[str, np.ndarray] = {}
    cache = None if cache_dir is None else cache_dir / f"photo-emb-{digest[:24]}.npz"
    if cache is not None and cache.is_file():
        with np.load(cache) as z:
            store = dict(zip(z["sha256"].tolist(), z["embedding"], strict=True))
    missing = [i for i, sha in enumerate(shas) if sha not in store]
    if missing:
        sess = inference_session(graph, threads)
        name = sess.get_inputs()[0].name
        for i in missing:
            (e,) = sess.run(["embedding"], {name: training_input(samples[i].path.read_bytes(), spec)[None]})
            store[shas[i]] = np.asarray(e[0], dtype=np.float32)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            keys = sorted(store)
            tmp = cache.with_suffix(".tmp.npz")
            np.savez(tmp, sha256=np.array(keys), embedding=np.stack([store[k] for k in keys]))
            tmp.replace(cache)
    return np.stack([store[sha] for sha in shas]).astype(np.float32)


def seed_photo_cache(graph: Path, samples: Sequence[Sample], emb: np.ndarray, cache_dir: Path) -> None:
    """Put already computed embeddings of ``samples`` (by this graph) into the per-photo cache."""
    cache = cache_dir / f"photo-emb-{graph_digest(graph)[:24]}.npz"
    store: dict[str, np.ndarray] = {}
    if cache.is_file():
        with np.load(cache) as z:
            store = dict(zip(z["sha256"].tolist(), z["embedding"], strict=True))
    for s, e in zip(samples, emb, strict=True):
        store.setdefault(hashlib.sha256(s.path.read_bytes()).hexdigest(), np.asarray(e, dtype=np.float32))
    keys = sorted(store)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, sha256=np.array(keys), embedding=np.stack([store[k] for k in keys]))


def served_feature_set(emb: np.ndarray, approach: str) -> FeatureSet:
    """A :class:`FeatureSet` holding only what a globally pooled approach reads (its embedding)."""
    if approach not in ("global224_lr", "global448_lr"):
        raise ValueError(f"approach {approach} needs region features; refit it with python -m training train")
    empty = np.zeros((len(emb), 1), dtype=np.float32)
    fields = {"emb224": empty, "logits224": empty, "emb448": empty, "grid448": empty[:, :, None], "meta": empty}
    fields[EMB_ATTR[approach]] = emb
    return FeatureSet(**fields)


def graph_head(graph: Path) -> LinearHead:
    """The float authenticity head written into the graph."""
    model = onnx.load(str(graph))
    found = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer if i.name in (HEAD_WEIGHT, HEAD_BIAS)}
    return LinearHead(found[HEAD_WEIGHT].reshape(-1).astype(np.float64), float(found[HEAD_BIAS].reshape(-1)[0]))


def _head_diff(a: LinearHead, b: LinearHead) -> float:
    return float(max(np.abs(np.asarray(a.w, np.float32) - np.asarray(b.w, np.float32)).max(), abs(a.b - b.b)))


# --- the card's product lines for a shipped model ------------------------------------------------


def refit_product_lines(
    samples: list[Sample],
    weights: Path,
    name: str = "authenticator",
    cache_dir: Path | None = Path("training/runs/cache"),
    k: int = 5,
    seed: int = 0,
    bootstrap_reps: int = 500,
    log: Log = print,
) -> ModelCard:
    """Add (or refit) the card's ``product_lines``, the bank's ``line`` labels and the report's
    product-line section for the model in ``weights``; the ONNX file stays as it is."""
    card_path = weights / f"{name}.card.json"
    card = ModelCard.load(card_path)
    card.verify_files(card_path)
    onnx_path = card.onnx_path(card_path)
    fit = card.metrics.get("threshold_fit", {})
    cfg = TrainConfig(
        name=name,
        k=k,
        seed=seed,
        bootstrap_reps=bootstrap_reps,
        max_false_pass=float(fit.get("max_false_pass_per_source", 0.01)),
        max_false_reject=float(fit.get("max_false_reject_per_source", 0.05)),
    )
    data = split_data(samples, cfg, log)
    a = data.arrays
    emb = photo_embeddings(onnx_path, samples, card.preprocessing, cache_dir)
    chosen = str(card.metrics.get("approach", "global448_lr"))
    res = run_cv(served_feature_set(emb, chosen), a, [chosen], seed, log)[chosen]
    diff = _head_diff(LinearHead.average(res.heads), graph_head(onnx_path))
    log(f"fold-averaged head vs the head in {onnx_path.name}: max abs diff {diff:.2e}")
    if diff > 1e-5:
        raise RuntimeError(
            f"these photos and folds do not reproduce the shipped head (diff {diff:.2e}): "
            "use the manifest, folds and seed the model was trained with"
        )
    t = fit_temperature(a.y, res.logits)
    log(f"held-out temperature {t:.6f} (card {card.temperature})")
    dist = heldout_distances(emb, a.fold, int(card.ood.get("k", 5)))
    section, keys = fit_product_lines(
        res.logits,
        a,
        samples,
        dist,
        float(card.ood["distance_threshold"]),
        emb,
        synthetic=data.synthetic,
        max_false_pass=cfg.max_false_pass,
        max_false_reject=cfg.max_false_reject,
        reps=bootstrap_reps,
        global_pair=(card.temperature, card.thresholds.authentic_above, card.thresholds.counterfeit_below),
    )
    bank_path = weights / str(card.ood["bank"])
    with np.load(bank_path) as z:
        arrays = {key: z[key] for key in z.files}
    # the training photos' rows (a bank may also hold recognition-only photos, role "recognition")
    rows = np.flatnonzero(arrays["role"] == "train") if "role" in arrays else np.arange(len(arrays["embeddings"]))
    if not np.array_equal(arrays["embeddings"][rows], l2n(emb).astype(np.float16)) or not np.array_equal(
        arrays["source"][rows], a.source.astype(arrays["source"].dtype)
    ):
        raise RuntimeError(f"{bank_path} does not hold these photos' embeddings in this order")
    line = np.full(len(arrays["embeddings"]), "", dtype="U64")
    line[rows] = keys.astype("U64")
    arrays["line"] = line
    with bank_path.open("wb") as f:
        np.savez_compressed(f, **arrays)
    card.product_lines = section
    card.ood["bank_arrays"] = {**card.ood.get("bank_arrays", {}), "line": "str (product-line key; empty for none)"}
    card.extra_files = [_bank_file_entry(f, bank_path) if f.path == bank_path.name else f for f in card.extra_files]
    card_path.write_text(card.model_dump_json(indent=2))
    ModelCard.load(card_path).verify_files(card_path)
    report = weights / "report"
    if (report / "report.md").is_file():
        md = (report / "report.md").read_text()
        (report / "report.md").write_text(replace_section(md, markdown_section(section)))
    if (report / "report.json").is_file():
        doc = json.loads((report / "report.json").read_text())
        doc["product_lines"] = section.model_dump(mode="json")
        (report / "report.json").write_text(json.dumps(doc, indent=1, default=float))
    for op in section.lines:
        fig = op.figures
        log(
            f"line {op.key}: validated={op.validated} false-pass {fig.get('false_pass_rate')} false-reject "
            f"{fig.get('false_reject_rate')} coverage {fig.get('coverage')}"
        )
    log(f"wrote {card_path}, {bank_path} (line labels); {onnx_path.name} unchanged")
    return card


def _bank_file_entry(f: ExtraFile, path: Path) -> ExtraFile:
    purpose = f.purpose.replace("category/source/label", "category/source/label/line")
    if "/line" not in purpose:
        purpose += " (and product-line key)"
    return ExtraFile(path=f.path, sha256=sha256_file(path), purpose=purpose)


# --- a candidate: the champion's graph with a head refitted on a new dataset ----------------------


@dataclass(frozen=True)
class HeadRun:
    card: ModelCard
    card_path: Path
    oof: np.ndarray  # out-of-fold logits, one per sample
    data: Data


def train_head(
    samples: list[Sample],
    champion_card: Path,
    out: Path,
    *,
    folds: np.ndarray | None = None,
    name: str = "authenticator",
    cache_dir: Path | None = Path("training/runs/cache"),
    k: int = 5,
    seed: int = 0,
    bootstrap_reps: int = 200,
    version: str | None = None,
    reproduce: str = "",
    log: Log = print,
) -> HeadRun:
    """A candidate in ``out`` (ONNX, card, bank, oof.csv): the champion's graph with its head,
    temperature, thresholds, product lines, bank and figures refitted on ``samples``.

    ``folds``: a frozen fold per sample (the lifecycle's evaluation split); default: the pipeline's
    item-grouped folds. The unfamiliar-photo percentile is the champion's (no leave-one-source-out
    run here)."""
    champ = ModelCard.load(champion_card)
    champ.verify_files(champion_card)
    chosen = str(champ.metrics.get("approach", "global448_lr"))
    cfg = TrainConfig(name=name, k=k, seed=seed, bootstrap_reps=bootstrap_reps, version=version, reproduce=reproduce)
    data = split_data(samples, cfg, log)
    if folds is not None:
        data = dataclasses.replace(data, arrays=dataclasses.replace(data.arrays, fold=np.asarray(folds)))
    a = data.arrays
    emb = photo_embeddings(champ.onnx_path(champion_card), samples, champ.preprocessing, cache_dir)
    res = run_cv(served_feature_set(emb, chosen), a, [chosen], seed, log)[chosen]
    head = LinearHead.average(res.heads)
    z = res.logits
    t = fit_temperature(a.y, z)
    hi, lo = fit_thresholds(a.y, sigmoid(z / t), a.source, cfg.max_false_pass, cfg.max_false_reject)
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / f"{name}.onnx"
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / onnx_path.name
        shutil.copyfile(champ.onnx_path(champion_card), staged)
        set_linear_head(staged, head)
        shutil.move(str(staged), onnx_path)
    ood = fit_ood(emb, a.fold, a.source, k=int(champ.ood.get("k", 5)), percentile=float(champ.ood["percentile"]))
    ood = {**champ.ood, **ood, "bank": f"{name}.bank.npz"}
    ood["percentile_choice"] = "the champion's percentile (a head refit runs no leave-one-source-out)"
    dist = heldout_distances(emb, a.fold, int(ood["k"]))
    section, keys = fit_product_lines(
        z,
        a,
        samples,
        dist,
        float(ood["distance_threshold"]),
        emb,
        synthetic=data.synthetic,
        max_false_pass=cfg.max_false_pass,
        max_false_reject=cfg.max_false_reject,
        reps=bootstrap_reps,
        global_pair=(t, hi, lo),
    )
    bank_path = out / f"{name}.bank.npz"
    write_bank(bank_path, emb, a.category, a.source, np.array([s.label for s in samples]), keys)
    # the champion's recognition-only rows (watches: training/recognition.py) go along: same graph
    carried = carry_recognition_rows(champion_card.parent / str(champ.ood["bank"]), bank_path)
    if carried and "recognition" in ood:
        ood["recognition"] = {**ood["recognition"], "measured_on": f"the champion's bank ({champ.sha256[:12]})"}
    summary = summarize(z, a, None, cfg.max_false_pass, cfg.max_false_reject, bootstrap_reps)
    card = ModelCard(
        name=name,
        version=cfg.version or datetime.now(UTC).strftime("%Y.%m.%d-%H%M%S"),
        onnx_file=onnx_path.name,
        sha256=sha256_file(onnx_path),
        synthetic=data.synthetic,
        preprocessing=champ.preprocessing,
        categories=champ.categories,
        validated_categories=sorted(
            c for c, v in summary["per_category"].items() if not data.synthetic and v["n"] >= 20
        ),
        temperature=round(t, 6),
        aggregation=champ.aggregation,
        thresholds=Thresholds(authentic_above=hi, counterfeit_below=lo),
        ood=ood,
        extra_files=[
            ExtraFile(
                path=bank_path.name,
                sha256=sha256_file(bank_path),
                purpose="reference bank for the unfamiliar-photo (OOD) check: "
                "L2-normalised embeddings with category/source/label/line",
            )
        ],
        training_data=data_summary(samples)
        | (
            {"recognition_only": champ.training_data["recognition_only"]}
            if carried and "recognition_only" in champ.training_data
            else {}
        ),
        metrics={
            "approach": chosen,
            "recipe": "head refit on the champion's frozen graph",
            "champion_sha256": champ.sha256,
            "evaluation": f"{len(np.unique(a.fold))}-fold item-grouped CV (frozen folds); operating point cross-fitted",
            "headline": summary["headline"] | {"risk_coverage": None},
            "per_source": summary["per_source"],
            "per_category": summary["per_category"],
            "threshold_fit": {
                "max_false_pass_per_source": cfg.max_false_pass,
                "max_false_reject_per_source": cfg.max_false_reject,
                "fitted_on": "out-of-fold scores of the fold heads averaged into the shipped head (cross-fitting)",
            },
            "synthetic_only": data.synthetic,
        },
        backbone=champ.backbone,
        reproduce=reproduce,
        self_test=graph_self_test(onnx_path, champ.preprocessing.input_size),
        product_lines=section,
    )
    card.metrics["headline"].pop("risk_coverage", None)
    card_path = out / f"{name}.card.json"
    card_path.write_text(card.model_dump_json(indent=2))
    ModelCard.load(card_path).verify_files(card_path)
    write_oof(out / f"{name}.oof.csv", samples, a.fold, z)
    log(f"candidate {card.sha256[:16]} in {out}: temperature {t:.3f}, thresholds {hi:.4f}/{lo:.4f}")
    return HeadRun(card=card, card_path=card_path, oof=z, data=data)


def write_oof(path: Path, samples: Sequence[Sample], fold: np.ndarray, z: np.ndarray) -> None:
    """Held-out logits per photo (the frozen evaluation split's development part reads them)."""
    import csv

    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sha256", "source", "category", "item_group", "y", "fold", "logit"])
        for s, fo, zz in zip(samples, fold, z, strict=True):
            sha = s.extra.get("sha256") or hashlib.sha256(s.path.read_bytes()).hexdigest()
            w.writerow([sha, s.source, s.category, s.item_group, s.y, int(fo), f"{zz:.6f}"])
