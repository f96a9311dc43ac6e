"""Leave one source out: how the shipped recipe behaves on a kind of photo it never saw.

For each source, the chosen approach is trained on the other sources only (fold heads on their
item-grouped folds), temperature, thresholds and the unfamiliar-photo distance threshold are
fitted on those sources' held-out scores, and the left-out source is then decided with and
without the unfamiliar-photo gate. This is the closest the development set gets to a new
marketplace or seller.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from authenticator.vision.decision import decide_codes
from training.cv import APPROACHES, Arrays
from training.features import FeatureSet
from training.heads import knn_distance
from training.metrics import auroc, fit_temperature, fit_thresholds, sigmoid
from training.ood import heldout_distances


def leave_one_source_out(
    fs: FeatureSet,
    a: Arrays,
    approach: str,
    emb: np.ndarray,
    max_false_pass: float,
    max_false_reject: float,
    k: int = 5,
    percentiles: tuple[float, ...] = (80.0, 90.0, 95.0, 97.5, 99.0),
    seed: int = 0,
) -> dict[str, Any]:
    _, fitter, _ = APPROACHES[approach]
    out: dict[str, Any] = {}
    for s in sorted(np.unique(a.source)):
        test = np.flatnonzero(a.source == s)
        rest = np.flatnonzero(a.source != s)
        if len(np.unique(a.source[rest])) == 0 or len(np.unique(a.y[rest])) < 2:
            continue
        z_rest = np.zeros(len(a.y))
        z_test = np.zeros(len(test))
        folds = np.unique(a.fold[rest])
        for f in folds:
            tr, te = rest[a.fold[rest] != f], rest[a.fold[rest] == f]
            score, _ = fitter(fs, tr, a, seed)
            z_rest[te] = score(te)
            z_test += score(test) / len(folds)  # the fold-averaged model, as shipped
        t = fit_temperature(a.y[rest], z_rest[rest])
        hi, lo = fit_thresholds(a.y[rest], sigmoid(z_rest[rest] / t), a.source[rest], max_false_pass, max_false_reject)
        d = decide_codes(sigmoid(z_test / t), hi, lo)
        held = heldout_distances(emb[rest], a.fold[rest], k)
        dist = knn_distance(emb[test], emb[rest], k)
        y = a.y[test]
        neg = y == 0
        by_pct: dict[str, Any] = {}
        for pct in percentiles:
            unfamiliar = dist > float(np.percentile(held, pct))
            gated = np.where(unfamiliar, -1, d)
            by_pct[str(pct)] = {
                "flagged_unfamiliar": round(float(unfamiliar.mean()), 4),
                "false_pass_rate_with_gate": round(float((gated[neg] == 1).mean()), 4) if neg.any() else None,
                "coverage_with_gate": round(float((gated >= 0).mean()), 4),
            }
        out[str(s)] = {
            "n": len(test),
            "auroc": round(auroc(y, z_test), 4),
            "false_pass_rate": round(float((d[neg] == 1).mean()), 4) if neg.any() else None,
            "coverage": round(float((d >= 0).mean()), 4),
            "by_percentile": by_pct,
        }
    return out


def choose_percentile(loso: dict[str, Any], max_false_pass: float) -> float:
    """The largest distance percentile at which, for every left-out source, the gate keeps the
    false-pass rate within bound; the strictest candidate when none does."""
    if not loso:
        return 99.0
    pcts = sorted(float(p) for p in next(iter(loso.values()))["by_percentile"])
    for pct in reversed(pcts):
        rates = [v["by_percentile"][str(pct)]["false_pass_rate_with_gate"] for v in loso.values()]
        if all(r is None or r <= max_false_pass for r in rates):
            return pct
    return pcts[0]


def with_percentile(loso: dict[str, Any], pct: float) -> dict[str, Any]:
    """Flatten the chosen percentile's gated figures next to the ungated ones."""
    return {
        s: {
            **{k: v for k, v in e.items() if k != "by_percentile"},
            **e["by_percentile"][str(pct)],
            "by_percentile": e["by_percentile"],
        }
        for s, e in loso.items()
    }
