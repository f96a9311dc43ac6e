"""The model lifecycle's training side: dataset, candidate, evaluation against the serving model.

**One frozen evaluation split** that never enters training:

- the development photos keep the pipeline's item-grouped folds (``grouped_folds`` of the
  development manifest, k=5, seed 0: the folds the shipped model was cross-validated on), and are
  evaluated by cross-validation: each model's held-out (out-of-fold) scores on them;
- lab-certified items are split by a hash of their item id: one in :data:`HELD_BACK_BUCKETS` is held
  back for evaluation forever (the same item is held back in every dataset, whoever builds it), the
  others train, each in the fold its hash gives (so their folds do not move when the data grows);
- a certified photo that is byte-identical to a development photo is left out (counted).

**Evaluation**: the serving model (champion) and the candidate on that split, each as it serves: the
development part per photo with nested per-line operating points (as the card's figures), the
held-back part per item (mean logit of its familiar photos, the operating point of the line the item
was registered as, the unfamiliar-photo gate and line contradiction) -- false-pass, false-reject,
coverage, AUROC per source and category with 95% intervals (item-group bootstrap), and the promotion
rule (:func:`authenticator.services.promotion.check_promotion`) on those numbers.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from authenticator.errors import DatasetTooSmall
from authenticator.services.promotion import check_promotion, eligible
from authenticator.vision.card import ModelCard, sha256_file
from authenticator.vision.decision import calibrate, decide_codes
from authenticator.vision.line_check import other_line
from authenticator.vision.product_lines import DeclaredLine, category_of
from training.cv import Arrays
from training.data import Sample, read_manifest
from training.evaluation import block
from training.evaluation_report import markdown, plots, summary
from training.heads import knn_distance, l2n
from training.ood import heldout_distances
from training.product_lines import line_keys, nested_decisions
from training.refit import graph_head, photo_embeddings, served_feature_set
from training.splits import grouped_folds

Log = Callable[[str], None]

HELD_BACK_BUCKETS = 5
K_FOLDS = 5
SEED = 0
DEV_SOURCE_NOTE = "development photos (item-grouped CV folds)"
CERTIFIED = "lab-certified"
COLUMNS = [
    "path",
    "label",
    "category",
    "brand",
    "model",
    "item_group",
    "source",
    "width",
    "height",
    "sha256",
    "lab_id",
    "fold",
]


def _bucket(tag: str, key: str, n: int) -> int:
    return int(hashlib.sha256(f"{tag}|{key}".encode()).hexdigest()[:12], 16) % n


def held_back(item_id: str) -> bool:
    """Whether a certified item belongs to the frozen evaluation slice (never trained on)."""
    return _bucket("held-back", item_id, HELD_BACK_BUCKETS) == 0


def certified_fold(item_id: str, k: int = K_FOLDS) -> int:
    return _bucket("fold", item_id, k)


def _sha(s: Sample) -> str:
    return s.extra.get("sha256") or hashlib.sha256(s.path.read_bytes()).hexdigest()


def _row(s: Sample, fold: int | None) -> list[Any]:
    return [
        str(s.path.resolve()),
        s.label,
        category_of(s.category) or s.category,
        s.brand,
        s.extra.get("model", ""),
        s.item_group,
        s.source,
        s.width,
        s.height,
        _sha(s),
        s.extra.get("lab_id", ""),
        "" if fold is None else fold,
    ]


def _write(path: Path, rows: list[list[Any]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        w.writerows(rows)


@dataclass(frozen=True)
class DatasetCounts:
    counts: dict[str, Any]
    manifest: Path
    held_back: Path


def build_dataset(
    dev_manifest: Path,
    certified_manifest: Path | None,
    out: Path,
    *,
    min_items_per_label: int = 20,
    min_certified_items: int = 0,
) -> DatasetCounts:
    """``out/manifest.csv`` (training: development photos + certified items not held back, each
    with its frozen fold), ``out/held_back.csv`` (the certified evaluation slice) and
    ``out/dataset.json`` (counts per part, category, label and lab). Refuses (:class:`DatasetTooSmall`)
    when a label of a category has fewer than ``min_items_per_label`` training items, or fewer than
    ``min_certified_items`` certified items train."""
    dev = read_manifest(dev_manifest)
    dev_fold = grouped_folds(dev, k=K_FOLDS, seed=SEED)
    dev_shas = {_sha(s) for s in dev}
    certified = [] if certified_manifest is None else read_manifest(certified_manifest)
    duplicates = [s for s in certified if _sha(s) in dev_shas]
    certified = [s for s in certified if _sha(s) not in dev_shas]
    train_rows = [_row(s, int(f)) for s, f in zip(dev, dev_fold, strict=True)]
    cert_train = [s for s in certified if not held_back(s.item_group)]
    cert_held = [s for s in certified if held_back(s.item_group)]
    train_rows += [_row(s, certified_fold(s.item_group)) for s in cert_train]
    out.mkdir(parents=True, exist_ok=True)
    manifest, held = out / "manifest.csv", out / "held_back.csv"

    def items(samples: Sequence[Sample]) -> dict[str, Any]:
        per: dict[str, dict[str, set[str]]] = {}
        labs: Counter[str] = Counter()
        for s in samples:
            cat = category_of(s.category) or s.category
            per.setdefault(cat, {"authentic": set(), "counterfeit": set()})[s.label].add(f"{s.source}|{s.item_group}")
        for _item, lab in {(s.item_group, s.extra.get("lab_id", "")) for s in samples}:
            labs[lab or "-"] += 1
        return {
            "photos": len(samples),
            "items": len({f"{s.source}|{s.item_group}" for s in samples}),
            "per_category": {c: {lab: len(v) for lab, v in d.items()} for c, d in sorted(per.items())},
            "per_lab": dict(sorted(labs.items())),
        }

    counts = {
        "development": items(dev),
        "certified_training": items(cert_train),
        "certified_held_back": items(cert_held),
        "certified_duplicates_of_development_photos": len(duplicates),
        "training": {},
        "split": {
            "development_folds": f"grouped_folds(k={K_FOLDS}, seed={SEED}) of {dev_manifest.name}",
            "held_back_rule": f"sha256('held-back|' + item id) mod {HELD_BACK_BUCKETS} == 0",
            "certified_fold_rule": f"sha256('fold|' + item id) mod {K_FOLDS}",
        },
    }
    training = items([*dev, *cert_train])
    counts["training"] = training
    short = [
        f"{cat} {lab}: {n} items"
        for cat, labs in training["per_category"].items()
        for lab, n in labs.items()
        if n < min_items_per_label
    ]
    if short:
        raise DatasetTooSmall(
            f"the training set is too small: {', '.join(short)} (at least {min_items_per_label} items of each label "
            "per category)",
            short=short,
        )
    if len({s.item_group for s in cert_train}) < min_certified_items:
        raise DatasetTooSmall(
            f"only {len({s.item_group for s in cert_train})} lab-certified items to train on (at least "
            f"{min_certified_items}; {len({s.item_group for s in cert_held})} more are held back for evaluation)",
            certified=len({s.item_group for s in cert_train}),
        )
    _write(manifest, train_rows)
    _write(held, [_row(s, None) for s in cert_held])
    counts["manifest_sha256"] = sha256_file(manifest)
    counts["held_back_sha256"] = sha256_file(held)
    counts["development_manifest"] = str(dev_manifest.resolve())
    (out / "dataset.json").write_text(json.dumps(counts, indent=1))
    return DatasetCounts(counts, manifest, held)


# --- candidates ----------------------------------------------------------------------------------


def train_candidate(
    dataset: Path,
    champion_card: Path,
    out: Path,
    *,
    recipe: str = "head",
    version: str | None = None,
    cache_dir: Path | None = Path("training/runs/cache"),
    bootstrap_reps: int = 200,
    log: Log = print,
) -> Path:
    """A candidate (ONNX, card, bank, held-out scores) in ``out`` from the dataset's manifest, on its
    frozen folds. ``head``: the champion's graph with a refitted head (minutes on 2 cores); ``full``:
    ``python -m training train`` (backbone features of every new photo, every approach, INT8)."""
    from training.refit import train_head

    samples = read_manifest(dataset / "manifest.csv")
    if recipe == "head":
        run = train_head(
            samples,
            champion_card,
            out,
            folds=np.array([int(s.extra["fold"]) for s in samples]),
            cache_dir=cache_dir,
            bootstrap_reps=bootstrap_reps,
            version=version,
            reproduce=f"authenticator model train --recipe head (dataset {sha256_file(dataset / 'manifest.csv')[:16]})",
            log=log,
        )
        return run.card_path
    if recipe == "full":
        cmd = [
            sys.executable,
            "-m",
            "training",
            "train",
            "--manifest",
            str(dataset / "manifest.csv"),
            "--out",
            str(out),
        ]
        log("running " + " ".join(cmd))
        subprocess.run(cmd, check=True)
        runs = Path("training/runs")
        if (runs / "authenticator.oof.csv").is_file():
            shutil.copyfile(runs / "authenticator.oof.csv", out / "authenticator.oof.csv")
        return out / "authenticator.card.json"
    raise ValueError(f"recipe {recipe!r}: choose head or full")


# --- evaluation ----------------------------------------------------------------------------------


def _read_oof(card_path: Path) -> dict[str, float] | None:
    """The model's held-out logits by photo sha256 (its training run's ``<name>.oof.csv``)."""
    path = card_path.parent / f"{ModelCard.load(card_path).name}.oof.csv"
    if not path.is_file():
        return None
    out: dict[str, float] = {}
    with path.open(newline="") as f:
        for r in csv.DictReader(f):
            sha = r.get("sha256") or hashlib.sha256(Path(r["path"]).read_bytes()).hexdigest()
            out[sha] = float(r["logit"])
    return out


def _recipe_oof(
    card_path: Path, samples: list[Sample], folds: np.ndarray, cache_dir: Path | None, log: Log
) -> np.ndarray:
    """Held-out logits of the model's recipe (its graph's embeddings, the linear head refitted per
    fold) on ``samples``: for a model without its training run's scores (the shipped one, trained on
    the development photos alone, whose held-out scores these are)."""
    from training.cv import run_cv

    card = ModelCard.load(card_path)
    key = hashlib.sha256((card.sha256 + "".join(_sha(s) for s in samples) + folds.tobytes().hex()).encode())
    cache = None if cache_dir is None else cache_dir / f"oof-{key.hexdigest()[:24]}.npy"
    if cache is not None and cache.is_file():
        return np.asarray(np.load(cache))
    emb = photo_embeddings(card.onnx_path(card_path), samples, card.preprocessing, cache_dir)
    approach = str(card.metrics.get("approach", "global448_lr"))
    z = run_cv(served_feature_set(emb, approach), _arrays(samples, folds), [approach], SEED, log)[approach].logits
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, z)
    return np.asarray(z)


def _arrays(samples: Sequence[Sample], folds: np.ndarray) -> Arrays:
    return Arrays(
        y=np.array([s.y for s in samples]),
        fold=np.asarray(folds),
        groups=np.array([f"{s.source}|{s.item_group}" for s in samples]),
        strata=np.array([f"{s.source}|{s.label}" for s in samples]),
        source=np.array([s.source for s in samples]),
        category=np.array([category_of(s.category) or s.category for s in samples]),
    )


def _blocks(
    y: np.ndarray,
    z: np.ndarray,
    p: np.ndarray,
    d: np.ndarray,
    groups: np.ndarray,
    source: np.ndarray,
    category: np.ndarray,
    reps: int,
) -> dict[str, Any]:
    z = np.nan_to_num(z, nan=0.0)
    p = np.nan_to_num(p, nan=0.5)

    def one(m: np.ndarray, r: int) -> dict[str, Any]:
        b = block(y[m], z[m], p[m], d[m], groups[m], r)
        pos = m & (y == 1)
        b["false_reject_rate"] = round(float((d[pos] == 0).mean()), 4) if pos.any() else None
        return b

    if not len(y):
        return {"overall": {"n": 0}, "per_source": {}, "per_category": {}}
    everything = np.ones(len(y), dtype=bool)
    return {
        "overall": one(everything, reps),
        "per_source": {str(s): one(source == s, reps) for s in sorted(np.unique(source))},
        "per_category": {str(c): one(category == c, reps) for c in sorted(np.unique(category))},
    }


def _development_part(
    card_path: Path, dev: list[Sample], folds: np.ndarray, cache_dir: Path | None, reps: int, log: Log
) -> tuple[dict[str, Any], np.ndarray]:
    """Per photo, held out: the model's out-of-fold logits, each fold decided with the per-line
    operating points fitted on the other folds (lines this model's card validates; other photos get
    no verdict, as served), the unfamiliar-photo gate applied."""
    card = ModelCard.load(card_path)
    a = _arrays(dev, folds)
    stored = _read_oof(card_path)
    shas = [_sha(s) for s in dev]
    if stored is not None and all(sha in stored for sha in shas):
        z = np.array([stored[sha] for sha in shas])
    else:
        z = _recipe_oof(card_path, dev, folds, cache_dir, log)
    emb = photo_embeddings(card.onnx_path(card_path), dev, card.preprocessing, cache_dir)
    dist = heldout_distances(emb, a.fold, int(card.ood.get("k", 5)))
    familiar = dist <= float(card.ood.get("distance_threshold", np.inf))
    keys = line_keys(dev)
    validated = [] if card.product_lines is None else [op.key for op in card.product_lines.validated()]
    fit = card.metrics.get("threshold_fit", {})
    max_fp = float(fit.get("max_false_pass_per_source", 0.01))
    max_fr = float(fit.get("max_false_reject_per_source", 0.05))
    p = np.full(len(z), np.nan)
    d = np.full(len(z), -1, dtype=np.int64)
    if card.product_lines is None:  # a card from before product lines: its global pair everywhere
        from training.cv import crossfit_decisions

        p, d = crossfit_decisions(z, a, max_fp, max_fr)
        d = np.where(familiar, d, -1)
    for key in validated:
        m = keys == key
        pl, dl = nested_decisions(z, a, m, familiar, max_fp, max_fr)
        p[m], d[m] = pl[m], dl[m]
    return _blocks(a.y, z, p, d, a.groups, a.source, a.category, reps), z


def held_back_part(card_path: Path, held: list[Sample], cache_dir: Path | None, reps: int) -> dict[str, Any]:
    """Per item, as served: the graph's logits, the unfamiliar-photo gate against the model's bank,
    the mean logit of the familiar photos, the operating point of the line the item was registered as
    (none: inconclusive), photos that contradict the line: inconclusive."""
    from authenticator.vision.line_check import operating_point

    card = ModelCard.load(card_path)
    if not held:
        return _blocks(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0, int), *(np.zeros(0),) * 3, 0)
    emb = photo_embeddings(card.onnx_path(card_path), held, card.preprocessing, cache_dir)
    head = graph_head(card.onnx_path(card_path))
    logits = head(emb)
    with np.load(card_path.parent / str(card.ood["bank"])) as zb:
        bank = zb["embeddings"].astype(np.float32)
        train_rows = (zb["role"] == "train") if "role" in zb.files else np.ones(len(bank), bool)
        bank_lines = zb["line"].astype(str) if "line" in zb.files else None
    dist = knn_distance(emb, l2n(bank[train_rows]), int(card.ood.get("k", 5)))
    familiar = dist <= float(card.ood.get("distance_threshold", np.inf))
    by_item: dict[str, list[int]] = {}
    for i, s in enumerate(held):
        by_item.setdefault(s.item_group, []).append(i)
    y, z, p, d, src, cat, grp = [], [], [], [], [], [], []
    bank_n = l2n(bank)
    rule = card.product_lines.contradiction if card.product_lines is not None else {}
    rule_k, rule_share = int(rule.get("k", 5)), float(rule.get("min_share_other", 1.01))
    for item, rows in sorted(by_item.items()):
        s = held[rows[0]]
        line = DeclaredLine(s.category, s.brand, s.extra.get("model", ""))
        point = operating_point(card, line)
        fam = [i for i in rows if familiar[i]]
        zi = float(np.mean(logits[fam])) if fam else float(np.mean(logits[rows]))
        pi = calibrate(zi, point.temperature)
        di = -1
        contradicted = (
            point.use.line is not None
            and bank_lines is not None
            and bool(fam)
            and other_line(emb[fam], bank_n, bank_lines, point.use.line, rule_k, rule_share) is not None
        )
        if fam and point.refusal is None and not contradicted:
            di = int(
                decide_codes(np.array([pi]), point.thresholds.authentic_above, point.thresholds.counterfeit_below)[0]
            )
        y.append(s.y)
        z.append(zi)
        p.append(pi)
        d.append(di)
        src.append(s.extra.get("lab_id") or s.source)
        cat.append(category_of(s.category) or s.category)
        grp.append(item)
    return _blocks(
        np.array(y), np.array(z), np.array(p), np.array(d), np.array(grp), np.array(src), np.array(cat), reps
    )


def evaluate_candidate(
    candidate_card: Path,
    champion_card: Path,
    dataset: Path,
    out: Path,
    *,
    cache_dir: Path | None = Path("training/runs/cache"),
    reps: int = 200,
    log: Log = print,
) -> dict[str, Any]:
    """Champion vs candidate on the frozen split; writes ``out/report.json``, ``report.md`` and plots."""
    counts = json.loads((dataset / "dataset.json").read_text())
    dev = read_manifest(Path(counts["development_manifest"]))
    folds = grouped_folds(dev, k=K_FOLDS, seed=SEED)
    held = read_manifest(dataset / "held_back.csv") if (dataset / "held_back.csv").is_file() else []
    models = {"champion": champion_card, "candidate": candidate_card}
    parts: dict[str, dict[str, Any]] = {"development_cv": {}, "certified_held_back": {}}
    for role, card_path in models.items():
        log(f"evaluating the {role} ({ModelCard.load(card_path).sha256[:16]}...) on the frozen split")
        parts["development_cv"][role], _ = _development_part(card_path, dev, folds, cache_dir, reps, log)
        parts["certified_held_back"][role] = held_back_part(card_path, held, cache_dir, reps)
    report: dict[str, Any] = {
        "champion": _describe(champion_card),
        "candidate": _describe(candidate_card),
        "split": {
            "development_manifest_sha256": sha256_file(Path(counts["development_manifest"])),
            "development_photos": len(dev),
            "held_back_sha256": counts.get("held_back_sha256"),
            "held_back_items": len({s.item_group for s in held}),
            "rules": counts.get("split"),
            "never_trained_on": "the held-back certified items; development photos are scored out of fold",
        },
        "parts": parts,
    }
    checks = check_promotion(report)
    report["promotion"] = {"eligible": eligible(checks), "checks": [c.model_dump() for c in checks]}
    report["summary"] = summary(report)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1, default=float))
    (out / "report.md").write_text(markdown(report))
    plots(report, out)
    return report


def _describe(card_path: Path) -> dict[str, Any]:
    card = ModelCard.load(card_path)
    return {"sha256": card.sha256, "card_sha256": sha256_file(card_path), "name": card.name, "version": card.version}
