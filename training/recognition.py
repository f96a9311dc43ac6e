"""Recognition-only photos in the reference bank, and how often "what is it?" names each category.

Some photos teach the runtime what a category looks like but nothing about authenticity: the 80
development watch photos (``../shared/data/watches``; their label leaks through the staging, so
they can train no watch verdict). They join the reference bank as rows of role ``recognition``:
the runtime's k-NN category vote uses them, the unfamiliar-photo safety gate does not (it measures
nearness to the training photos, on which the card's false-pass figures were measured), and no
threshold, temperature or head sees them.

Everything here is measured with the runtime's own :func:`~authenticator.vision.category.categorize`
on the shipped graph's outputs (``served_embeddings``), each photo against a bank without its own
item group (development photos) or its own block of consecutive photos (recognition photos:
consecutive phone photos are often the same watch). Leaving a whole recognition source out says
what a new staging (a seller's own photos) may look like.

``imagenet_decisive_prob`` (a strong ImageNet answer wins over the bank's vote) is chosen on the
development photos alone: the smallest value of :data:`DECISIVE_GRID` at which no development
category is recognised less often than without the rule.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydantic_core

from authenticator.vision.card import ModelCard, sha256_file
from authenticator.vision.category import (
    RECOGNITION_ROLE,
    TRAIN_ROLE,
    CategoryConfig,
    ReferenceBank,
    categorize,
)
from authenticator.vision.preprocess import PreprocessSpec
from training.data import Sample
from training.heads import l2n
from training.quantize import served_embeddings

#: Consecutive recognition photos of one source held out together.
BLOCK = 8
#: Candidate values of ``imagenet_decisive_prob`` (None: the rule is off).
DECISIVE_GRID = (0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.2)


@dataclasses.dataclass(frozen=True)
class Outputs:
    """What the shipped graph computes on a set of photos, with each photo's held-out group."""

    samples: list[Sample]
    embeddings: np.ndarray  # (N, D) float32
    imagenet: np.ndarray  # (N, 1000)
    groups: np.ndarray  # (N,) str: a photo is measured against a bank without its group

    @property
    def categories(self) -> np.ndarray:
        return np.array([s.category for s in self.samples])

    @property
    def sources(self) -> np.ndarray:
        return np.array([s.source for s in self.samples])


def recognition_groups(samples: Sequence[Sample], block: int = BLOCK) -> np.ndarray:
    """Blocks of ``block`` consecutive photos of each source (manifest order)."""
    seen: dict[str, int] = {}
    out = []
    for s in samples:
        i = seen.get(s.source, 0)
        seen[s.source] = i + 1
        out.append(f"{s.source}:block{i // block}")
    return np.array(out)


def item_groups(samples: Sequence[Sample]) -> np.ndarray:
    return np.array([f"{s.source}|{s.item_group}" for s in samples])


def heldout_categories(
    query: Outputs, bank: Outputs, cfg: CategoryConfig, *, by: str = "group", bank_gate: np.ndarray | None = None
) -> np.ndarray:
    """The runtime's category of each ``query`` photo against ``bank`` without the photo's own
    group (``by="group"``) or its own source (``by="source"``); None where it gets none.

    Each photo is categorised by :func:`categorize` against the rows that can matter once its own
    are left out: its ``k`` nearest bank rows and its ``k`` nearest training rows (the vote and both
    distances come out as against the whole bank without those rows)."""
    keys_q = query.groups if by == "group" else query.sources
    keys_b = bank.groups if by == "group" else bank.sources
    emb_b = l2n(bank.embeddings)
    cats_b = bank.categories
    train = np.ones(len(emb_b), bool) if bank_gate is None else bank_gate
    sims = l2n(query.embeddings) @ emb_b.T
    k = cfg.k
    out: list[str | None] = []
    for i in range(len(query.samples)):
        s = np.where(keys_b != keys_q[i], sims[i], -np.inf)
        near = np.argsort(-s)[:k]
        near_train = np.flatnonzero(train)[np.argsort(-s[train])[:k]]
        rows = np.unique(np.concatenate([near, near_train]))
        rows = rows[np.isfinite(s[rows])]
        gate = None if bank_gate is None else train[rows]
        ref = ReferenceBank(embeddings=emb_b[rows], categories=cats_b[rows], gate_rows=gate)
        out.append(categorize(query.imagenet[i : i + 1], query.embeddings[i : i + 1], cfg, ref)[0].category)
    return np.array(out, dtype=object)


def _joined(a: Outputs, b: Outputs | None) -> Outputs:
    if b is None:
        return a
    return Outputs(
        samples=[*a.samples, *b.samples],
        embeddings=np.concatenate([a.embeddings, b.embeddings]),
        imagenet=np.concatenate([a.imagenet, b.imagenet]),
        groups=np.concatenate([a.groups, b.groups]),
    )


def rates(categories: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Share of each true category's photos given that category."""
    return {str(c): round(float(np.mean(categories[truth == c] == c)), 4) for c in sorted(set(truth.tolist()))}


def fit_decisive_prob(
    dev: Outputs, recognition: Outputs | None, cfg: CategoryConfig
) -> tuple[float | None, dict[str, Any]]:
    """The smallest ``imagenet_decisive_prob`` of :data:`DECISIVE_GRID` that recognises no development
    category less often than the rule switched off (bank: development + recognition photos, each
    development photo without its own item); the development rates of every candidate."""
    bank = _joined(dev, recognition)
    base_cfg = dataclasses.replace(cfg, imagenet_decisive_prob=None)
    base = rates(heldout_categories(dev, bank, base_cfg), dev.categories)
    table: dict[str, Any] = {"off": base}
    chosen: float | None = None
    for value in DECISIVE_GRID:
        got = rates(
            heldout_categories(dev, bank, dataclasses.replace(cfg, imagenet_decisive_prob=value)), dev.categories
        )
        table[str(value)] = got
        if chosen is None and all(got[c] >= base[c] for c in base):
            chosen = value
    return chosen, table


def measure(dev: Outputs, recognition: Outputs | None, cfg: CategoryConfig) -> dict[str, Any]:
    """Recognition rates per category with ``cfg`` and the bank of development (+ recognition)
    photos; recognition photos also with their whole source left out."""
    bank = _joined(dev, recognition)
    gate = (
        None
        if recognition is None
        else np.r_[np.ones(len(dev.samples), bool), np.zeros(len(recognition.samples), bool)]
    )
    everyone = _joined(dev, recognition)
    cats = heldout_categories(everyone, bank, cfg, bank_gate=gate)
    out: dict[str, Any] = {"recognised": rates(cats, everyone.categories), "photos": {}}
    for c in sorted(set(everyone.categories.tolist())):
        out["photos"][c] = int((everyone.categories == c).sum())
    per_source = {}
    for s in sorted(set(everyone.sources.tolist())):
        m = everyone.sources == s
        cat = everyone.categories[m][0]
        per_source[s] = {
            "category": str(cat),
            "photos": int(m.sum()),
            "recognised": round(float(np.mean(cats[m] == cat)), 4),
        }
    out["per_source"] = per_source
    if recognition is not None:
        loso = heldout_categories(recognition, bank, cfg, by="source", bank_gate=gate)
        out["recognition_leave_source_out"] = rates(loso, recognition.categories)
        for s in sorted(set(recognition.sources.tolist())):
            m = recognition.sources == s
            per_source[s]["recognised_source_left_out"] = round(
                float(np.mean(loso[m] == recognition.categories[m][0])), 4
            )
    return out


def graph_outputs(
    onnx: Path, samples: list[Sample], spec: PreprocessSpec, groups: np.ndarray, cache_dir: Path | None
) -> Outputs:
    emb, inet = served_embeddings(onnx, samples, spec, cache_dir)
    return Outputs(samples=samples, embeddings=emb, imagenet=inet, groups=groups)


def recognition_summary(samples: Sequence[Sample]) -> dict[str, Any]:
    """The card's ``training_data.recognition_only``: what the recognition rows are."""
    out: dict[str, Any] = {}
    for s in samples:
        e = out.setdefault(
            s.source,
            {
                "category": s.category,
                "photos": 0,
                "license": s.extra.get("license", ""),
                "used_for": "reference-bank rows for the category check only (role 'recognition'); no head, "
                "threshold, temperature or unfamiliar-photo figure uses them",
            },
        )
        e["photos"] += 1
    return out


def bank_with_recognition(
    bank_path: Path, dev: Outputs, recognition: Outputs, log: Callable[[str], None] = print
) -> None:
    """Rewrite the bank at ``bank_path``: its training rows (checked against ``dev``, same order) then
    one ``recognition`` row per recognition photo; earlier recognition rows are replaced."""
    with np.load(bank_path, allow_pickle=False) as z:
        arrays = {k: np.asarray(z[k]) for k in z.files}
    n = len(arrays["embeddings"])
    roles = arrays.get("role", np.full(n, TRAIN_ROLE)).astype(str)
    train = roles == TRAIN_ROLE
    if int(train.sum()) != len(dev.samples):
        raise ValueError(f"{bank_path} has {int(train.sum())} training rows, the manifest {len(dev.samples)} photos")
    cos = (arrays["embeddings"][train].astype(np.float32) * l2n(dev.embeddings)).sum(1)
    if float(cos.min()) < 0.999:
        raise ValueError(
            f"{bank_path}'s training rows are not these photos through this graph (min cosine {cos.min():.4f})"
        )
    m = len(recognition.samples)
    new_rows: dict[str, np.ndarray] = {
        "embeddings": l2n(recognition.embeddings).astype(np.float16),
        "category": np.array([s.category for s in recognition.samples]),
        "source": np.array([s.source for s in recognition.samples]),
        "label": np.array([s.label for s in recognition.samples]),
        "role": np.full(m, RECOGNITION_ROLE),
    }
    out: dict[str, np.ndarray] = {}
    for key, values in {**arrays, "role": roles}.items():
        kept = values[train]
        add = new_rows.get(key)
        if add is None:  # an array this module does not know (another engineer's): empty for the new rows
            add = np.zeros(m, dtype=kept.dtype) if kept.dtype.kind not in "US" else np.full(m, "", dtype=kept.dtype)
        if kept.dtype.kind == "U":
            width = max(kept.dtype.itemsize // 4, max((len(str(v)) for v in add), default=1), 1)
            kept, add = kept.astype(f"U{width}"), np.asarray(add).astype(f"U{width}")
        out[key] = np.concatenate([kept, add.astype(kept.dtype)])
    with open(bank_path, "wb") as f:
        np.savez_compressed(f, **out)  # type: ignore[arg-type]
    log(f"wrote {bank_path}: {int(train.sum())} training rows + {m} recognition rows")


def extend_bank(
    bank_path: Path,
    ood: dict[str, Any],
    onnx: Path,
    spec: PreprocessSpec,
    dev_samples: list[Sample],
    recognition_samples: list[Sample],
    cache_dir: Path | None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Rewrite the bank with the recognition photos' rows, choose ``imagenet_decisive_prob`` and
    measure recognition; returns the keys to update in the card's ``ood`` section."""
    log(f"{len(dev_samples)} development photos, {len(recognition_samples)} recognition photos through {onnx.name}")
    dev = graph_outputs(onnx, dev_samples, spec, item_groups(dev_samples), cache_dir)
    rec = graph_outputs(onnx, recognition_samples, spec, recognition_groups(recognition_samples), cache_dir)
    cfg = CategoryConfig.from_card(ood)
    decisive, table = fit_decisive_prob(dev, rec, cfg)
    log(f"imagenet_decisive_prob {decisive} (development rates per candidate: {table})")
    figures = _figures(dev, rec, dataclasses.replace(cfg, imagenet_decisive_prob=decisive))
    figures["with_recognition_rows_without_decisive_rule"] = measure(
        dev, rec, dataclasses.replace(cfg, imagenet_decisive_prob=None)
    )
    figures["decisive_rule_choice"] = {
        "rule": f"smallest of {list(DECISIVE_GRID)} at which no development category is recognised less "
        "often than with the rule off",
        "development_rates": table,
    }
    bank_with_recognition(bank_path, dev, rec, log)
    return {
        "imagenet_decisive_prob": decisive,
        "bank_arrays": {
            **ood.get("bank_arrays", {}),
            "role": f"str: '{TRAIN_ROLE}' (training photos: the category vote and the unfamiliar-photo gate) or "
            f"'{RECOGNITION_ROLE}' (recognition-only photos: the category vote only)",
        },
        "recognition": figures,
    }


def add_recognition(
    card_path: Path,
    dev_samples: list[Sample],
    recognition_samples: list[Sample],
    cache_dir: Path | None = Path("training/runs/cache"),
    log: Callable[[str], None] = print,
    reproduce: str = "",
) -> dict[str, Any]:
    """Add recognition photos to a shipped model's bank and update its card (bank hash, the
    ``ood`` section's rule and figures, ``training_data.recognition_only``); the ONNX graph is not
    touched. Returns the recognition figures written to the card."""
    card = ModelCard.load(card_path)
    card.verify_files(card_path)
    onnx = card.onnx_path(card_path)
    graph_sha = sha256_file(onnx)
    bank_name = str(card.ood["bank"])
    bank_path = card_path.parent / bank_name
    updates = extend_bank(
        bank_path, card.ood, onnx, card.preprocessing, dev_samples, recognition_samples, cache_dir, log
    )
    updates["recognition"]["reproduce"] = reproduce or "python -m training add-recognition"
    # edit the card's JSON as it is (other sections, and fields this code does not know, kept as written)
    raw = pydantic_core.from_json(card_path.read_bytes())
    raw["ood"].update(updates)
    raw["training_data"]["recognition_only"] = recognition_summary(recognition_samples)
    for extra in raw["extra_files"]:
        if extra["path"] == bank_name:
            extra["sha256"] = sha256_file(bank_path)
    card_path.write_bytes(pydantic_core.to_json(raw, indent=2))
    fresh = ModelCard.load(card_path)
    fresh.verify_files(card_path)
    if sha256_file(onnx) != graph_sha or fresh.sha256 != graph_sha:
        raise RuntimeError("the ONNX graph changed")
    log(f"updated {card_path} (graph {graph_sha[:12]} untouched)")
    figures: dict[str, Any] = updates["recognition"]
    return figures


def _figures(dev: Outputs, rec: Outputs, cfg: CategoryConfig) -> dict[str, Any]:
    """Recognition rates with ``cfg`` (bank: development + recognition photos) and, for comparison,
    with the category check as it was before recognition rows (training rows only, no decisive rule)."""
    off = dataclasses.replace(cfg, imagenet_decisive_prob=None)
    before = measure(dev, None, off)
    before["recognition_photos"] = rates(heldout_categories(rec, dev, off), rec.categories)
    return {
        "method": "Measured with the runtime's categorize() on the shipped graph's outputs; each development "
        "photo against the bank without its own item group, each recognition photo without its block of "
        f"{BLOCK} consecutive photos of its source (consecutive phone photos are often the same item); "
        "'recognition_leave_source_out': without its whole source (a new staging)",
        "now": measure(dev, rec, cfg),
        "bank_of_training_photos_only": before,
    }


def measure_card(
    card_path: Path,
    dev_samples: list[Sample],
    recognition_samples: list[Sample],
    cache_dir: Path | None = Path("training/runs/cache"),
) -> dict[str, Any]:
    """The recognition figures of the card as it is (its ``imagenet_decisive_prob``), nothing written."""
    card = ModelCard.load(card_path)
    card.verify_files(card_path)
    onnx, spec = card.onnx_path(card_path), card.preprocessing
    dev = graph_outputs(onnx, dev_samples, spec, item_groups(dev_samples), cache_dir)
    rec = graph_outputs(onnx, recognition_samples, spec, recognition_groups(recognition_samples), cache_dir)
    return _figures(dev, rec, CategoryConfig.from_card(card.ood))


def recognition_table(figures: dict[str, Any]) -> str:
    """The figures as a few printable lines."""
    now = figures["now"]
    old = figures["bank_of_training_photos_only"]
    lines = ["category   photos  recognised now  before (training rows only, no decisive rule)"]
    for c, n in now["photos"].items():
        before = old["recognised"].get(c, old.get("recognition_photos", {}).get(c))
        lines.append(f"{c:10s} {n:6d}  {now['recognised'][c]:14.2%}  {before if before is None else f'{before:.2%}'}")
    for c, v in now.get("recognition_leave_source_out", {}).items():
        lines.append(f"{c:10s} whole source left out: {v:.2%}")
    for s, v in now["per_source"].items():
        extra = f", source left out {v['recognised_source_left_out']:.2%}" if "recognised_source_left_out" in v else ""
        lines.append(f"  {s:22s} {v['category']:8s} {v['photos']:5d} photos  {v['recognised']:.2%}{extra}")
    return "\n".join(lines)


def carry_recognition_rows(source_bank: Path, bank: Path) -> int:
    """Append ``source_bank``'s recognition-only rows to ``bank`` (a candidate that keeps the source's
    frozen graph: their embeddings still hold); ``bank``'s own rows become training rows. Returns how
    many rows were carried (0 when the source has none; ``bank`` is then left as it is)."""
    with np.load(source_bank, allow_pickle=False) as z:
        src = {k: np.asarray(z[k]) for k in z.files}
    if "role" not in src or not (src["role"].astype(str) == RECOGNITION_ROLE).any():
        return 0
    keep = src["role"].astype(str) == RECOGNITION_ROLE
    with np.load(bank, allow_pickle=False) as z:
        dst = {k: np.asarray(z[k]) for k in z.files}
    n = len(dst["embeddings"])
    dst["role"] = np.full(n, TRAIN_ROLE)
    out: dict[str, np.ndarray] = {}
    for key, values in dst.items():
        add = src[key][keep] if key in src else None
        if add is None:
            kind = values.dtype.kind
            add = (
                np.full(int(keep.sum()), "", dtype=values.dtype)
                if kind in "US"
                else np.zeros(int(keep.sum()), values.dtype)
            )
        if values.dtype.kind == "U" or add.dtype.kind == "U":
            width = max(values.dtype.itemsize, add.dtype.itemsize) // 4 or 1
            values, add = values.astype(f"U{width}"), add.astype(f"U{width}")
        out[key] = np.concatenate([values, add.astype(values.dtype)])
    with open(bank, "wb") as f:
        np.savez_compressed(f, **out)  # type: ignore[arg-type]
    return int(keep.sum())
