"""Item-grouped folds: no item group crosses a split; labels and sources stay represented."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
from training.data import read_folder, read_manifest
from training.splits import grouped_folds, groups_crossing
from training.synthetic import generate

pytestmark = pytest.mark.torch


def test_real_manifest_groups_never_cross(shared_dir: Path) -> None:
    samples = read_manifest(shared_dir / "data" / "real" / "manifest.csv")
    assert len(samples) == 2145
    fold = grouped_folds(samples, k=5, seed=0)
    assert groups_crossing(samples, fold) == []
    y = np.array([s.y for s in samples])
    src = np.array([s.source for s in samples])
    for f in range(5):
        m = fold == f
        assert 0.3 < y[m].mean() < 0.7  # stratified by label
        for s in ("mrdeepakk-nike", "waizwafiq-sneakers", "alauzon13-birkin"):
            assert (m & (src == s)).sum() > 0
    # the augmented copies of one mrdeepakk photo share a group and so a fold
    groups = {}
    for smp, f in zip(samples, fold, strict=True):
        groups.setdefault(smp.item_group, set()).add(int(f))
    assert max(len(v) for v in groups.values()) == 1
    assert any(len([s for s in samples if s.item_group == g]) >= 3 for g in list(groups)[:400])


def test_crossing_is_detected(tmp_path: Path) -> None:
    samples = generate(tmp_path, n_per_class=4, categories=("bag",))
    fold = grouped_folds(samples, k=2, seed=0)
    assert groups_crossing(samples, fold) == []
    bad = fold.copy()
    first = samples[0].item_group
    idx = [i for i, s in enumerate(samples) if s.item_group == first]
    bad[idx[0]] = 1 - bad[idx[1]]
    assert groups_crossing(samples, bad) != []


def test_folder_reader(tmp_path: Path) -> None:
    generate(tmp_path, n_per_class=2, categories=("watch",))
    samples = read_folder(tmp_path, category="watch")
    assert len(samples) == 4
    assert {s.label for s in samples} == {"authentic", "counterfeit"}
    assert len({s.item_group for s in samples}) == 4  # no grouping known: one group per file
