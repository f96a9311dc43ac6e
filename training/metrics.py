"""Metrics, calibration and the two decision thresholds, as plain numpy (checked against sklearn).

Decisions themselves are the runtime's (:func:`authenticator.vision.decision.decide_codes`).

Conventions: ``y`` is 1 for authentic, scores/logits are higher for authentic. A *false pass*
is a counterfeit called authentic; a *false reject* is an authentic called counterfeit.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import rankdata

from authenticator.vision.decision import decide_codes


def sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(x, -60, 60))))


def auroc(y: np.ndarray, s: np.ndarray) -> float:
    """Mann-Whitney AUROC with ties counted half; nan when one class is missing."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(s, dtype=np.float64)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(s)
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of P(authentic), equal-width bins."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.sum() / len(p) * abs(p[m].mean() - y[m].mean())
    return float(total)


def reliability(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    idx = np.minimum((np.asarray(p) * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        m = idx == b
        if m.any():
            out.append({"bin": b, "n": int(m.sum()), "p_mean": float(p[m].mean()), "frac_auth": float(y[m].mean())})
    return out


def fit_temperature(y: np.ndarray, logits: np.ndarray) -> float:
    """Temperature T minimising the log loss of sigmoid(logit / T) (golden-section on log T)."""
    y = np.asarray(y, dtype=np.float64)
    z = np.asarray(logits, dtype=np.float64)

    def nll(log_t: float) -> float:
        q = sigmoid(z / np.exp(log_t))
        q = np.clip(q, 1e-12, 1 - 1e-12)
        return float(-(y * np.log(q) + (1 - y) * np.log(1 - q)).mean())

    lo, hi = np.log(0.05), np.log(100.0)
    g = (np.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = nll(a), nll(b)
    for _ in range(80):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = nll(b)
    return float(np.exp((lo + hi) / 2))


def _strict_upper(values: np.ndarray, allowed: int) -> float:
    """Smallest t with at most ``allowed`` of ``values`` strictly above t."""
    v = np.sort(np.asarray(values, dtype=np.float64))[::-1]
    if len(v) == 0:
        return 0.0
    if allowed >= len(v):
        return 0.0
    return float(v[allowed])


def fit_thresholds(
    y: np.ndarray,
    p: np.ndarray,
    groups: np.ndarray,
    max_false_pass: float = 0.01,
    max_false_reject: float = 0.05,
) -> tuple[float, float]:
    """Two thresholds on calibrated P(authentic) from held-out scores.

    ``authentic_above``: the lowest value at which, *in every group* (source), at most
    ``max_false_pass`` of its counterfeits score above it. ``counterfeit_below``: the highest
    value at which, in every group, at most ``max_false_reject`` of its authentics score below
    it (never above ``authentic_above``). Counts are floored, so 1% of 40 counterfeits allows none.
    """
    y = np.asarray(y)
    p = np.asarray(p, dtype=np.float64)
    groups = np.asarray(groups)
    hi = 0.0
    lo = 1.0
    for g in np.unique(groups):
        m = groups == g
        neg = p[m & (y == 0)]
        pos = p[m & (y == 1)]
        if len(neg):
            hi = max(hi, _strict_upper(neg, int(np.floor(max_false_pass * len(neg)))))
        if len(pos):
            allowed = int(np.floor(max_false_reject * len(pos)))
            lo = min(lo, -_strict_upper(-pos, allowed))
    hi = float(min(max(hi, 0.5), 1.0))
    lo = float(min(max(lo, 0.0), 0.5, hi))
    return hi, lo


def operating_point(y: np.ndarray, p: np.ndarray, authentic_above: float, counterfeit_below: float) -> dict[str, float]:
    """Operating point of calibrated probabilities under the two thresholds."""
    return operating_point_from_decisions(np.asarray(y), decide_codes(p, authentic_above, counterfeit_below))


def operating_point_from_decisions(y: np.ndarray, d: np.ndarray) -> dict[str, float]:
    """False-pass, coverage and the confusion counts of decisions (1 authentic, 0 counterfeit, -1 abstain)."""
    neg, pos = y == 0, y == 1
    decided = d >= 0
    return {
        "n": len(y),
        "n_authentic": int(pos.sum()),
        "n_counterfeit": int(neg.sum()),
        "false_pass_rate": float((d[neg] == 1).mean()) if neg.any() else float("nan"),
        "false_pass_count": int((d[neg] == 1).sum()),
        "false_reject_rate": float((d[pos] == 0).mean()) if pos.any() else float("nan"),
        "coverage": float(decided.mean()) if len(y) else float("nan"),
        "abstain_rate": float(1 - decided.mean()) if len(y) else float("nan"),
        "accuracy_decided": float((d[decided] == y[decided]).mean()) if decided.any() else float("nan"),
        "authentic_called_authentic": int(((d == 1) & pos).sum()),
        "counterfeit_called_counterfeit": int(((d == 0) & neg).sum()),
        "authentic_inconclusive": int(((d == -1) & pos).sum()),
        "counterfeit_inconclusive": int(((d == -1) & neg).sum()),
        "authentic_called_counterfeit": int(((d == 0) & pos).sum()),
        "counterfeit_called_authentic": int(((d == 1) & neg).sum()),
    }


def bootstrap_ci(
    fn: Callable[[np.ndarray], float], n: int, groups: np.ndarray | None = None, reps: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95% percentile interval of ``fn(index_array)``, resampling item groups when given."""
    rng = np.random.default_rng(seed)
    vals = []
    if groups is None:
        for _ in range(reps):
            v = fn(rng.integers(0, n, n))
            if np.isfinite(v):
                vals.append(v)
    else:
        uniq, inv = np.unique(groups, return_inverse=True)
        members = [np.flatnonzero(inv == i) for i in range(len(uniq))]
        for _ in range(reps):
            pick = rng.integers(0, len(uniq), len(uniq))
            v = fn(np.concatenate([members[i] for i in pick]))
            if np.isfinite(v):
                vals.append(v)
    if not vals:
        return float("nan"), float("nan")
    return float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))


def risk_coverage(y: np.ndarray, p: np.ndarray) -> list[dict[str, float]]:
    """False-pass rate among counterfeits vs share of photos called authentic as the bar rises."""
    out = []
    for t in np.linspace(0.5, 1.0, 51):
        called = p > t
        neg = y == 0
        out.append(
            {
                "authentic_above": float(t),
                "coverage_authentic_calls": float(called.mean()),
                "false_pass_rate": float(called[neg].mean()) if neg.any() else float("nan"),
            }
        )
    return out
