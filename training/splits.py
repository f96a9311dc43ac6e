"""Item-grouped, stratified folds: photos of one item or listing never sit on both sides."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from training.data import Sample


def grouped_folds(samples: Sequence[Sample], k: int = 5, seed: int = 0) -> np.ndarray:
    """Fold index per sample; groups stay whole, folds balanced by (source, label)."""
    strata = [f"{s.source}|{s.label}" for s in samples]
    groups = [f"{s.source}|{s.item_group}" for s in samples]
    codes = {v: i for i, v in enumerate(sorted(set(strata)))}
    y = np.array([codes[v] for v in strata])
    fold = np.full(len(samples), -1, dtype=np.int64)
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    for i, (_, test) in enumerate(splitter.split(np.zeros(len(samples)), y, groups)):
        fold[test] = i
    assert (fold >= 0).all()
    return fold


def groups_crossing(samples: Sequence[Sample], fold: np.ndarray) -> list[str]:
    """Item groups found in more than one fold (must be empty)."""
    seen: dict[str, set[int]] = {}
    for s, f in zip(samples, fold, strict=True):
        seen.setdefault(f"{s.source}|{s.item_group}", set()).add(int(f))
    return sorted(g for g, fs in seen.items() if len(fs) > 1)
