"""The quality gate on real development photos and on degraded copies of them."""

from __future__ import annotations

import csv
import random
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from authenticator.config import Settings
from authenticator.vision.decode import DecodedImage, decode_image
from authenticator.vision.quality import (
    QualityThresholds,
    gate,
    measure_quality,
    normalised_gray,
    percentiles_of_counts,
)
from training.calibrate_gate import DEGRADATIONS, blur, darken, overexpose

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"


def _sample(n: int, seed: int) -> list[tuple[str, DecodedImage]]:
    rows = list(csv.DictReader((REAL / "manifest.csv").open()))
    rows = random.Random(seed).sample(rows, n)
    return [(r["path"], decode_image((REAL / r["path"]).read_bytes())) for r in rows]


@pytest.fixture(scope="module")
def photos() -> list[tuple[str, DecodedImage]]:
    return _sample(60, seed=4)


def test_settings_defaults_are_the_calibrated_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    for f in fields(QualityThresholds):
        monkeypatch.delenv(f"AUTHENTICATOR_GATE_{f.name.upper()}", raising=False)
    s = Settings()
    t = QualityThresholds()
    assert s.quality_thresholds == t  # every field: each gate_<field> setting defaults to the dataclass
    monkeypatch.setenv("AUTHENTICATOR_GATE_MIN_CONTRAST", "20.5")
    assert Settings().quality_thresholds.min_contrast == 20.5
    doc = (Path(__file__).resolve().parents[2] / "docs" / "vision-thresholds.md").read_text()
    for f in fields(t):
        line = f"- `{f.name}`: {getattr(t, f.name)}"
        assert line in doc, f"docs/vision-thresholds.md lacks {line!r}: rerun calibrate_gate or fix the defaults"


def test_most_real_photos_pass(photos: list[tuple[str, DecodedImage]]) -> None:
    t = QualityThresholds()
    failed = [(p, [r.code for r in gate(measure_quality(d.rgb, d.alpha), t)]) for p, d in photos]
    failed = [f for f in failed if f[1]]
    assert len(failed) <= 2, failed  # calibrated at >= 98 % on all 2,145 photos


@pytest.mark.parametrize(("label", "fn", "code"), [("blurred", blur, "blurred"), ("darkened", darken, "underexposed")])
def test_degraded_real_photos_fail_with_the_right_reason(
    photos: list[tuple[str, DecodedImage]], label: str, fn: object, code: str
) -> None:
    t = QualityThresholds()
    passing = [d for _, d in photos if not gate(measure_quality(d.rgb, d.alpha), t)]
    wrong = []
    for d in passing:
        rgb, alpha = fn(d.rgb, d.alpha)  # type: ignore[operator]
        codes = [r.code for r in gate(measure_quality(rgb, alpha), t)]
        if code not in codes:
            wrong.append(codes)
    assert not wrong, f"{len(wrong)}/{len(passing)} {label} photos not flagged {code}: {wrong[:5]}"


def test_overexposed_real_photos_fail(photos: list[tuple[str, DecodedImage]]) -> None:
    """x3 gain does not over-expose a dark photo (it fixes it): require the flag where the
    item's centre really clips, and a high detection rate overall (74 % on all dev photos)."""
    t = QualityThresholds()
    flagged = clipped = caught = 0
    for _, d in photos:
        if gate(measure_quality(d.rgb, d.alpha), t):
            continue
        rgb, alpha = overexpose(d.rgb, d.alpha)
        m = measure_quality(rgb, alpha)
        codes = {r.code for r in gate(m, t)}
        flagged += "overexposed" in codes
        if m.centre_bright_fraction > 0.6:
            clipped += 1
            caught += "overexposed" in codes
    assert clipped > 10 and caught == clipped
    assert flagged >= 0.6 * len(photos)


@pytest.mark.parametrize("label", ["foggy", "glare", "far away"])
def test_other_degradations_are_mostly_caught(photos: list[tuple[str, DecodedImage]], label: str) -> None:
    fn, code = DEGRADATIONS[label]
    t = QualityThresholds()
    hits = sum(code in {r.code for r in gate(measure_quality(*fn(d.rgb, d.alpha)), t)} for _, d in photos)
    assert hits >= 0.8 * len(photos), (label, hits)


def test_low_resolution_is_reported_with_the_size() -> None:
    m = measure_quality(np.full((100, 150, 3), 128, np.uint8))
    reasons = gate(m, QualityThresholds())
    assert reasons[0].code == "low_resolution" and "100 px" in reasons[0].message


def test_transparent_background_is_ignored() -> None:
    """A cut-out on a transparent background: the background must not count as over-exposed."""
    d = next(d for p, d in _sample(400, seed=1) if p.startswith("alauzon13-birkin") and d.alpha is not None)
    m = measure_quality(d.rgb, d.alpha)
    assert m.centre_bright_fraction < 0.2


def test_percentiles_of_counts_equal_numpy_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    qs = (0, 2, 10, 50, 90, 98, 100, 33.3)
    for n in [1, 2, 3, 7, 50, 999, 110_592, *rng.integers(1, 5000, 40).tolist()]:
        top = int(rng.choice([1, 2, 16, 256, 4000]))
        values = rng.integers(0, top, n)
        counts = np.bincount(values, minlength=top)
        want = np.percentile(values, list(qs))
        assert percentiles_of_counts(counts, qs) == want.tolist(), (n, top)
    with pytest.raises(ValueError):
        percentiles_of_counts(np.zeros(5, np.int64), (10,))


def _reference_percentile_metrics(rgb: np.ndarray, alpha: np.ndarray | None) -> tuple[float, float, float]:
    """luma p10, p90 and object fraction as first written, with np.percentile over every pixel."""
    import cv2

    gray, mask = normalised_gray(rgb, alpha)
    values = gray[mask] if mask is not None else gray.reshape(-1)
    p10, p90 = np.percentile(values, [10, 90])
    h, w = gray.shape
    if mask is not None:
        ys, xs = np.nonzero(mask)
    else:
        ys, xs = np.nonzero(cv2.Canny(cv2.GaussianBlur(gray, (3, 3), 0), 50, 150))
        if len(xs) < 50:
            return float(p10), float(p90), 0.0
    if len(xs) == 0:
        return float(p10), float(p90), 0.0
    x0, x1 = np.percentile(xs, [2, 98])
    y0, y1 = np.percentile(ys, [2, 98])
    return float(p10), float(p90), float((x1 - x0 + 1) * (y1 - y0 + 1) / (h * w))


def test_histogram_percentiles_measure_exactly_what_np_percentile_did(photos: list[tuple[str, DecodedImage]]) -> None:
    """Real photos (opaque and cut-outs), degraded copies and synthetic edge cases: identical values."""
    cases = [(d.rgb, d.alpha) for _, d in photos]
    degrade = [fn for fn, _code in DEGRADATIONS.values()]
    cases += [degrade[i % len(degrade)](d.rgb, d.alpha) for i, (_, d) in enumerate(photos)]
    cases += [darken(d.rgb, d.alpha) for _, d in photos[:10]] + [overexpose(d.rgb, d.alpha) for _, d in photos[:10]]
    rng = np.random.default_rng(3)
    for k in range(40):
        h, w = (int(v) for v in rng.integers(20, 400, 2))
        rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8) if k % 3 else np.full((h, w, 3), k * 6, np.uint8)
        alpha = None if k % 2 else ((rng.random((h, w)) < rng.random()) * 255).astype(np.uint8)
        cases.append((rgb, alpha))
    assert any(a is not None for _, a in cases)
    for rgb, alpha in cases:
        m = measure_quality(rgb, alpha)
        assert (m.luma_p10, m.luma_p90, m.object_fraction) == _reference_percentile_metrics(rgb, alpha)
