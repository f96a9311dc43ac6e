"""Metric, calibration and threshold math against scikit-learn and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
from sklearn.metrics import roc_auc_score

from authenticator.vision.decision import decide_codes as decide
from training.metrics import (
    auroc,
    bootstrap_ci,
    ece,
    fit_temperature,
    fit_thresholds,
    operating_point,
    sigmoid,
)

pytestmark = pytest.mark.torch


def test_auroc_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = rng.integers(0, 2, 200)
        s = np.round(rng.normal(y * 0.7, 1.0), 1)  # rounding creates ties
        assert auroc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert np.isnan(auroc(np.ones(5), np.arange(5.0)))


def test_ece_known_values() -> None:
    assert ece(np.array([1, 1, 0, 0]), np.array([1.0, 1.0, 0.0, 0.0])) == pytest.approx(0.0)
    # all predictions 0.9, half authentic: one bin, |0.9 - 0.5| = 0.4
    assert ece(np.array([1, 0, 1, 0]), np.full(4, 0.9)) == pytest.approx(0.4)


def test_temperature_recovers_the_generating_scale() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(0, 4, 20000)
    y = (rng.random(len(z)) < sigmoid(z / 2.5)).astype(int)
    assert fit_temperature(y, z) == pytest.approx(2.5, rel=0.06)


def test_thresholds_hold_false_pass_in_every_source() -> None:
    # source A: counterfeits up to 0.80; source B: counterfeits up to 0.95 -> bar at 0.95
    y = np.array([0, 0, 0, 1, 1, 0, 0, 1, 1])
    p = np.array([0.1, 0.5, 0.8, 0.9, 0.99, 0.2, 0.95, 0.97, 0.6])
    src = np.array(["A", "A", "A", "A", "A", "B", "B", "B", "B"])
    hi, lo = fit_thresholds(y, p, src, max_false_pass=0.01, max_false_reject=0.0)
    assert hi == pytest.approx(0.95)
    d = decide(p, hi, lo)
    assert not ((d == 1) & (y == 0)).any()
    # no authentic may be rejected: the lowest authentic is 0.6 but lo is capped at 0.5
    assert lo == pytest.approx(0.5)
    op = operating_point(y, p, hi, lo)
    assert op["false_pass_rate"] == 0.0
    assert op["coverage"] == pytest.approx(((p > hi) | (p < lo)).mean())


def test_thresholds_allow_the_floor_of_the_budget() -> None:
    # 200 counterfeits at a 1% budget: the 2 highest may pass, the 3rd highest sets the bar
    rng = np.random.default_rng(2)
    neg = np.sort(rng.random(200))
    y = np.r_[np.zeros(200), np.ones(5)].astype(int)
    p = np.r_[neg, np.full(5, 0.999)]
    hi, _ = fit_thresholds(y, p, np.zeros(len(y)), 0.01, 0.05)
    assert hi == pytest.approx(max(neg[-3], 0.5))
    assert ((p > hi) & (y == 0)).sum() <= 2


def test_bootstrap_interval_brackets_the_estimate() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    s = rng.normal(y, 1.0)
    groups = np.arange(300) // 3
    lo, hi = bootstrap_ci(lambda i: auroc(y[i], s[i]), len(y), groups, reps=200)
    assert lo < auroc(y, s) < hi
    assert hi - lo < 0.2
