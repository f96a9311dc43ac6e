"""Unfamiliar-photo check: cosine kNN distance to a bank of training embeddings.

The threshold is a percentile of *held-out* distances (each fold against a bank built from the
other folds), so an in-distribution photo crosses it only that often; leaving one whole source
out measures how often a genuinely new kind of photo is caught.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from training.heads import knn_distance, l2n


def heldout_distances(emb: np.ndarray, fold: np.ndarray, k: int) -> np.ndarray:
    d = np.zeros(len(emb))
    for f in np.unique(fold):
        te, tr = fold == f, fold != f
        d[te] = knn_distance(emb[te], emb[tr], k)
    return d


CATEGORY_PERCENTILE = 97.5


def fit_ood(
    emb: np.ndarray,
    fold: np.ndarray,
    source: np.ndarray,
    k: int = 5,
    percentile: float = 99.0,
    category_percentile: float = CATEGORY_PERCENTILE,
) -> dict[str, Any]:
    """Two thresholds on the same held-out kNN distance: ``distance_threshold`` (``percentile``,
    chosen by leaving sources out) is the unfamiliar-photo *safety* gate; the looser
    ``category_distance_threshold`` only says "this looks like our goods" in the "what is it?"
    check, which must accept close-ups of validated goods (it shares the gate's value when that
    is looser)."""
    d = heldout_distances(emb, fold, k)
    thr = float(np.percentile(d, percentile))
    cat_thr = max(thr, float(np.percentile(d, category_percentile)))
    loso: dict[str, Any] = {}
    for s in np.unique(source):
        m = source == s
        if m.all():
            continue
        ds = knn_distance(emb[m], emb[~m], k)
        loso[str(s)] = {
            "n": int(m.sum()),
            "flagged_unfamiliar": round(float((ds > thr).mean()), 4),
            "median_distance": round(float(np.median(ds)), 4),
        }
    return {
        "metric": "cosine",
        "k": k,
        "distance": "1 - mean cosine similarity of the k nearest bank embeddings",
        "percentile": percentile,
        "distance_threshold": round(thr, 5),
        "heldout_in_distribution_flagged": round(float((d > thr).mean()), 4),
        "category_percentile": max(percentile, category_percentile),
        "category_distance_threshold": round(cat_thr, 5),
        "heldout_median_distance": round(float(np.median(d)), 4),
        "leave_one_source_out": loso,
    }


def write_bank(
    path: Any,
    emb: np.ndarray,
    category: np.ndarray,
    source: np.ndarray,
    label: np.ndarray,
    line: np.ndarray | None = None,
) -> None:
    """L2-normalised float16 embeddings with their category, source and label (and product-line
    key, "" for none: the runtime's check that photos show the line an item was registered as)."""
    arrays: dict[str, Any] = {
        "embeddings": l2n(emb).astype(np.float16),
        "category": np.asarray(category).astype("U16"),
        "source": np.asarray(source).astype("U32"),
        "label": np.asarray(label).astype("U12"),
    }
    if line is not None:
        arrays["line"] = np.asarray(line).astype("U64")
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)
