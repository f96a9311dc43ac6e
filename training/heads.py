"""Heads trained on cached frozen features. Each ``fit_*`` returns a scorer (higher = authentic).

Linear heads are kept as raw-feature weights ``(w, b)`` so the shipped network applies them
exactly, and averaging the fold heads gives one linear head (the cross-fitted shipped model).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold

from training.metrics import auroc

C_GRID = (0.0003, 0.001, 0.003, 0.01, 0.1)


@dataclass
class LinearHead:
    """logit = x @ w + b on raw (unstandardised) features."""

    w: np.ndarray
    b: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(np.asarray(x, dtype=np.float64) @ self.w + self.b)

    @staticmethod
    def average(heads: list[LinearHead]) -> LinearHead:
        return LinearHead(np.mean([h.w for h in heads], axis=0), float(np.mean([h.b for h in heads])))


def _fit_lr(x: np.ndarray, y: np.ndarray, c: float, seed: int) -> LinearHead:
    mu = x.mean(0)
    sd = x.std(0) + 1e-6
    z = (x - mu) / sd
    lr = LogisticRegression(C=c, class_weight="balanced", max_iter=2000, random_state=seed)
    lr.fit(z, y)
    w = lr.coef_[0] / sd
    b = float(lr.intercept_[0] - (lr.coef_[0] * mu / sd).sum())
    return LinearHead(w.astype(np.float64), b)


def choose_c(x: np.ndarray, y: np.ndarray, groups: np.ndarray, strata: np.ndarray, seed: int = 0) -> float:
    """Pick C by inner item-grouped CV AUROC on the training part only."""
    if len(np.unique(y)) < 2 or len(np.unique(groups)) < 6:
        return 0.01
    inner = StratifiedGroupKFold(n_splits=3, shuffle=True, random_state=seed + 1)
    best, best_c = -1.0, 0.01
    for c in C_GRID:
        s = np.zeros(len(y))
        for tr, te in inner.split(x, strata, groups):
            if len(np.unique(y[tr])) < 2:
                continue
            s[te] = _fit_lr(x[tr], y[tr], c, seed)(x[te])
        a = auroc(y, s)
        if a > best:
            best, best_c = a, c
    return best_c


def fit_linear(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, strata: np.ndarray, seed: int = 0, c: float | None = None
) -> LinearHead:
    c = choose_c(x, y, groups, strata, seed) if c is None else c
    return _fit_lr(x, y, c, seed)


def fit_mil(
    grid: np.ndarray, y: np.ndarray, groups: np.ndarray, strata: np.ndarray, seed: int = 0, c: float | None = None
) -> LinearHead:
    """Instance-level linear head: every region inherits its photo's label (multiple-instance).

    C comes from inner grouped CV of a photo-level head on the mean region embedding (a cheap
    proxy: instance-level inner CV would cost 16x more on 2 CPU cores)."""
    n, k, d = grid.shape
    if c is None:
        c = choose_c(grid.mean(1), y, groups, strata, seed)
    x = grid.reshape(n * k, d).astype(np.float32)
    return _fit_lr(x, np.repeat(y, k), c, seed)


def mil_scores(head: LinearHead, grid: np.ndarray, pool: str = "mean") -> np.ndarray:
    """Pool instance logits into a photo logit: mean, or mean of the 4 lowest (most counterfeit)."""
    n, k, d = grid.shape
    z = head(grid.reshape(n * k, d)).reshape(n, k)
    if pool == "mean":
        return np.asarray(z.mean(1))
    if pool == "min4":
        return np.asarray(np.sort(z, axis=1)[:, :4].mean(1))
    raise ValueError(pool)


def l2n(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return np.asarray(x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-8))


def knn_distance(query: np.ndarray, bank: np.ndarray, k: int = 1) -> np.ndarray:
    """Mean cosine distance of each (L2-normalised) query row to its k nearest bank rows."""
    sims = l2n(query) @ l2n(bank).T
    k = min(k, bank.shape[0])
    top = -np.sort(-sims, axis=1)[:, :k]
    return np.asarray(1.0 - top.mean(1))


def fit_patchcore(
    grid: np.ndarray, y: np.ndarray, seed: int = 0, max_bank: int = 8000
) -> Callable[[np.ndarray], np.ndarray]:
    """PatchCore-style: memory of authentic regions; a photo's score is minus its worst region's
    nearest-neighbour distance (an unfamiliar region suggests a counterfeit)."""
    rng = np.random.default_rng(seed)
    bank = grid[y == 1].reshape(-1, grid.shape[-1])
    if len(bank) > max_bank:
        bank = bank[rng.choice(len(bank), max_bank, replace=False)]
    bank = l2n(bank)

    def score(g: np.ndarray) -> np.ndarray:
        n, k, d = g.shape
        dist = knn_distance(g.reshape(n * k, d), bank, k=1).reshape(n, k)
        return np.asarray(-dist.max(1))

    return score


def fit_knn_contrast(emb: np.ndarray, y: np.ndarray, k: int = 5) -> Callable[[np.ndarray], np.ndarray]:
    """Photo-level kNN: distance to counterfeit references minus distance to authentic ones."""
    auth, fake = l2n(emb[y == 1]), l2n(emb[y == 0])

    def score(q: np.ndarray) -> np.ndarray:
        return np.asarray(knn_distance(q, fake, k) - knn_distance(q, auth, k))

    return score


def fit_mlp(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, strata: np.ndarray, seed: int = 0, max_epochs: int = 60
) -> Callable[[np.ndarray], np.ndarray]:
    """One-hidden-layer MLP on standardised embeddings, class-balanced by oversampling, with
    early stopping on an item-grouped inner validation split (best epoch by AUROC), then refit
    on all training rows for that many epochs."""
    from sklearn.neural_network import MLPClassifier

    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = (x - mu) / sd
    rng = np.random.default_rng(seed)

    def balanced(idx: np.ndarray) -> np.ndarray:
        pos, neg = idx[y[idx] == 1], idx[y[idx] == 0]
        n = max(len(pos), len(neg))
        return rng.permutation(np.r_[rng.choice(pos, n), rng.choice(neg, n)])

    def new() -> MLPClassifier:
        return MLPClassifier((256,), alpha=10.0, learning_rate_init=1e-3, batch_size=64, random_state=seed)

    inner = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=seed + 2)
    tr, va = next(inner.split(z, strata, groups))
    m = new()
    best, best_ep = -1.0, 1
    for ep in range(1, max_epochs + 1):
        b = balanced(tr)
        m.partial_fit(z[b], y[b], classes=np.array([0, 1]))
        a = auroc(y[va], m.predict_proba(z[va])[:, 1])
        if a > best:
            best, best_ep = a, ep
        elif ep - best_ep >= 8:
            break
    m = new()
    every = np.arange(len(y))
    for _ in range(best_ep):
        b = balanced(every)
        m.partial_fit(z[b], y[b], classes=np.array([0, 1]))

    def score(q: np.ndarray) -> np.ndarray:
        p = np.clip(m.predict_proba((q - mu) / sd)[:, 1], 1e-6, 1 - 1e-6)
        return np.asarray(np.log(p / (1 - p)))

    return score
