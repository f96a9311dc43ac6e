"""Summaries of held-out scores: per source, per category and headline, with group-bootstrap CIs."""

from __future__ import annotations

from typing import Any

import numpy as np

from training.cv import Arrays, crossfit_decisions
from training.metrics import auroc, bootstrap_ci, ece, operating_point_from_decisions, risk_coverage

BIRKIN = "alauzon13-birkin"
HEADLINE_EXCLUDES: tuple[str, ...] = (BIRKIN,)


def _r(x: float, n: int = 4) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), n)


def block(y: np.ndarray, z: np.ndarray, p: np.ndarray, d: np.ndarray, groups: np.ndarray, reps: int) -> dict[str, Any]:
    """Metrics of one subset: AUROC (+95% CI by resampling item groups), ECE, operating point."""
    a = auroc(y, z)
    lo, hi = bootstrap_ci(lambda i: auroc(y[i], z[i]), len(y), groups, reps=reps) if reps else (np.nan, np.nan)
    neg = y == 0
    fp_lo, fp_hi = (
        bootstrap_ci(
            lambda i: float((d[i][y[i] == 0] == 1).mean()) if (y[i] == 0).any() else np.nan, len(y), groups, reps=reps
        )
        if reps and neg.any()
        else (np.nan, np.nan)
    )
    cov_lo, cov_hi = (
        bootstrap_ci(lambda i: float((d[i] >= 0).mean()), len(y), groups, reps=reps) if reps else (np.nan, np.nan)
    )
    op = operating_point_from_decisions(y, d)
    return {
        "n_groups": len(np.unique(groups)),
        "auroc": _r(a),
        "auroc_ci95": [_r(lo), _r(hi)],
        "ece": _r(ece(y, p)),
        **{k: (_r(v) if isinstance(v, float) else v) for k, v in op.items()},
        "false_pass_ci95": [_r(fp_lo), _r(fp_hi)],
        "coverage_ci95": [_r(cov_lo), _r(cov_hi)],
    }


def item_auroc(y: np.ndarray, z: np.ndarray, groups: np.ndarray) -> float:
    """AUROC of items scored by the mean logit of their photos (the runtime's aggregation)."""
    _, inv = np.unique(groups, return_inverse=True)
    zi = np.bincount(inv, weights=z) / np.bincount(inv)
    yi = np.bincount(inv, weights=y) / np.bincount(inv)
    return auroc((yi > 0.5).astype(int), zi)


def false_pass_at_coverage(y: np.ndarray, z: np.ndarray, coverage: float) -> float:
    """Counterfeits passed when the top ``coverage`` share of photos is called authentic."""
    t = np.quantile(z, 1 - coverage)
    neg = y == 0
    return float((z[neg] > t).mean()) if neg.any() else float("nan")


def summarize(
    z: np.ndarray,
    a: Arrays,
    meta_z: np.ndarray | None,
    max_false_pass: float,
    max_false_reject: float,
    reps: int = 500,
) -> dict[str, Any]:
    """Everything the report shows for one approach's out-of-fold scores."""
    p, d = crossfit_decisions(z, a, max_false_pass, max_false_reject)
    out: dict[str, Any] = {"per_source": {}, "per_category": {}}
    for s in sorted(np.unique(a.source)):
        m = a.source == s
        b = block(a.y[m], z[m], p[m], d[m], a.groups[m], reps)
        if meta_z is not None:
            b["metadata_wh_auroc"] = _r(auroc(a.y[m], meta_z[m]))
        b["in_headline"] = s not in HEADLINE_EXCLUDES
        b["item_level_auroc"] = _r(item_auroc(a.y[m], z[m], a.groups[m]))
        out["per_source"][s] = b
    for c in sorted(np.unique(a.category)):
        m = a.category == c
        out["per_category"][c] = block(a.y[m], z[m], p[m], d[m], a.groups[m], reps)
    h = ~np.isin(a.source, HEADLINE_EXCLUDES)
    out["headline"] = block(a.y[h], z[h], p[h], d[h], a.groups[h], reps)
    out["headline"]["sources"] = sorted(np.unique(a.source[h]).tolist())
    out["headline"]["false_pass_at_coverage30"] = _r(false_pass_at_coverage(a.y[h], z[h], 0.30))
    out["headline"]["worst_source_false_pass_at_coverage30"] = _r(
        max(false_pass_at_coverage(a.y[a.source == s], z[a.source == s], 0.30) for s in np.unique(a.source[h]))
    )
    out["all_sources"] = block(a.y, z, p, d, a.groups, 0)
    out["risk_coverage_headline"] = risk_coverage(a.y[h], p[h])
    return out
