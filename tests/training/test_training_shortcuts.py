"""The shortcut check runs and finds a planted shortcut (and none where there is none)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
from training.cv import Arrays
from training.features import META_NAMES
from training.shortcuts import shortcut_check

pytestmark = pytest.mark.torch


def test_shortcut_check_flags_a_planted_width_shortcut() -> None:
    rng = np.random.default_rng(0)
    n = 120
    y = np.tile([0, 1], n // 2)
    meta = rng.normal(100, 10, (n, len(META_NAMES))).astype(np.float32)
    src = np.array(["planted"] * (n // 2) + ["clean"] * (n // 2))
    w = META_NAMES.index("width")
    meta[:, w] = np.where((src == "planted") & (y == 0), 1500, 800) + rng.normal(0, 5, n)
    a = Arrays(
        y=y,
        fold=np.arange(n) % 3,
        groups=np.arange(n).astype(str),
        strata=np.char.add(src, y.astype(str)),
        source=src,
        category=np.array(["bag"] * n),
    )
    res = shortcut_check(meta, a)
    assert res["per_feature"]["width"]["planted"] == pytest.approx(1.0)
    assert res["per_feature"]["width"]["clean"] < 0.7
    assert "planted:width" in res["flagged"]
    assert not any(f.startswith("clean:") for f in res["flagged"])
    assert res["per_feature"]["all_trivial_features_lr_cv"]["planted"] > 0.9
