"""Fitting per-line operating points (training/product_lines.py) on synthetic held-out scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.cv import Arrays
from training.data import Sample
from training.metrics import sigmoid
from training.product_lines import (
    SECTION_TITLE,
    fit_product_lines,
    line_keys,
    markdown_section,
    replace_section,
    sample_line,
)


def _samples(n_items: dict[str, tuple[int, int]]) -> list[Sample]:
    """Two photos per item; brand names as the development manifest writes them."""
    out = []
    for brand, (auth, fake) in n_items.items():
        for label, n in (("authentic", auth), ("counterfeit", fake)):
            for i in range(n):
                for j in range(2):
                    out.append(
                        Sample(
                            path=Path(f"/x/{brand}/{label}/{i}_{j}.jpg"),
                            label=label,
                            category="sneaker",
                            item_group=f"{brand}:{label}:{i}",
                            source="src-" + brand.split()[-1],
                            brand=brand,
                        )
                    )
    return out


def _arrays(samples: list[Sample], k: int = 5) -> Arrays:
    groups = np.array([f"{s.source}|{s.item_group}" for s in samples])
    _, inv = np.unique(groups, return_inverse=True)
    return Arrays(
        y=np.array([s.y for s in samples]),
        fold=inv % k,
        groups=groups,
        strata=np.array([f"{s.source}|{s.label}" for s in samples]),
        source=np.array([s.source for s in samples]),
        category=np.array([s.category for s in samples]),
    )


def test_lines_of_development_rows() -> None:
    s = Sample(Path("a.jpg"), "authentic", "sneaker", "g", "zhengwu123-aj1", brand="Nike")
    line = sample_line(s)
    assert line is not None and line.key == "sneaker/nike/air-jordan-1"  # the source's model line
    s = Sample(Path("a.jpg"), "authentic", "sneaker", "g", "waizwafiq-sneakers", brand="")
    assert sample_line(s) is None
    s = Sample(Path("a.jpg"), "authentic", "sneaker", "g", "lab-certified", brand="Nike", extra={"model": "AF1 Low"})
    assert sample_line(s) is not None


def test_minimum_items_per_class_and_operating_points() -> None:
    samples = _samples({"Nike Air Force 1": (120, 110), "Nike Air Jordan 1": (120, 40)})
    a = _arrays(samples)
    rng = np.random.default_rng(0)
    z = np.where(a.y == 1, 1.5, -1.5) + rng.normal(0, 1.0, len(a.y))
    emb = rng.normal(size=(len(z), 8))
    section, keys = fit_product_lines(
        z,
        a,
        samples,
        np.zeros(len(z)),
        1.0,
        emb,
        synthetic=False,
        max_false_pass=0.01,
        max_false_reject=0.05,
        reps=50,
        min_items=100,
    )
    assert list(keys[:2]) == ["sneaker/nike/air-force-1"] * 2 and set(line_keys(samples)) == set(keys)
    by_key = {op.key: op for op in section.lines}
    af1, aj1 = by_key["sneaker/nike/air-force-1"], by_key["sneaker/nike/air-jordan-1"]
    assert af1.validated and af1.items == {"authentic": 120, "counterfeit": 110}
    assert not aj1.validated and "40 counterfeit items" in (aj1.why_not_validated or "")
    assert aj1.thresholds is None and aj1.figures  # figures are still reported for an unvalidated line
    assert af1.thresholds is not None and af1.temperature is not None
    # the line's own fit: at most 1% of its held-out counterfeit photos above the threshold
    m = keys == af1.key
    p = sigmoid(z[m] / af1.temperature)
    fakes = p[a.y[m] == 0]
    assert (fakes > af1.thresholds.authentic_above).sum() <= int(0.01 * len(fakes))
    f = af1.figures
    for name in ("false_pass_rate", "false_reject_rate", "coverage"):
        assert f[name] is not None
    assert len(f["false_pass_ci95"]) == 2 and len(f["false_reject_ci95"]) == 2 and len(f["coverage_ci95"]) == 2
    assert f["false_pass_rate"] <= 0.03  # nested: each fold decided by the other folds' fit


def test_unfamiliar_photos_are_left_out_of_the_fit_and_undecided() -> None:
    samples = _samples({"Nike Air Force 1": (110, 110)})
    a = _arrays(samples)
    z = np.where(a.y == 1, 2.0, -2.0)
    dist = np.zeros(len(z))
    dist[::4] = 1.0  # a quarter of the photos unfamiliar
    section, _ = fit_product_lines(
        z, a, samples, dist, 0.5, np.eye(len(z), 4), synthetic=False, max_false_pass=0.01, max_false_reject=0.05, reps=0
    )
    f = section.lines[0].figures
    assert f["flagged_unfamiliar"] == 0.25 and f["coverage"] <= 0.75


def test_synthetic_data_validates_no_line() -> None:
    samples = _samples({"Nike Air Force 1": (110, 110)})
    a = _arrays(samples)
    z = np.where(a.y == 1, 2.0, -2.0)
    section, _ = fit_product_lines(
        z,
        a,
        samples,
        np.zeros(len(z)),
        1.0,
        np.eye(len(z), 4),
        synthetic=True,
        max_false_pass=0.01,
        max_false_reject=0.05,
        reps=0,
    )
    assert not section.lines[0].validated and section.validated() == []


def test_report_section_is_replaced_not_repeated() -> None:
    samples = _samples({"Nike Air Force 1": (110, 110)})
    a = _arrays(samples)
    z = np.where(a.y == 1, 2.0, -2.0)
    section, _ = fit_product_lines(
        z,
        a,
        samples,
        np.zeros(len(z)),
        1.0,
        np.eye(len(z), 4),
        synthetic=False,
        max_false_pass=0.01,
        max_false_reject=0.05,
        reps=0,
    )
    md = "# Report\n\n## Other\n\ntext\n\nPlots: roc.png.\n\nReproduce: x\n"
    once = replace_section(md, markdown_section(section))
    twice = replace_section(once, markdown_section(section))
    assert once == twice and once.count(SECTION_TITLE) == 1
    assert once.index(SECTION_TITLE) < once.index("Plots:") and "## Other" in once and "Reproduce: x" in once
