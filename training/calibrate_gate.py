"""Choose the quality-gate thresholds on the real development photos and write them down.

    python -m training calibrate-gate [--data DIR] [--sample N] [--out docs/vision-thresholds.md]
    python -m training.calibrate_gate [--data DIR] [--sample N] [--out docs/vision-thresholds.md]

Offline fitting (the service only reads the result): it lives with the training pipeline, not in
the vision runtime. Torch-free, so the vision tests borrow its degradations.

Each threshold is put at a low quantile of the development photos (so that, all checks
together, at least 98 % of them pass), then checked against degraded copies of the same photos
(blurred, darkened, over-exposed, foggy, glare, item far away) that must fail with the right
reason. The numbers go into ``docs/vision-thresholds.md``; the defaults of
:class:`~authenticator.vision.quality_thresholds.QualityThresholds` are copied from there.
"""

from __future__ import annotations

import argparse
import csv
import random
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path

import cv2
import numpy as np

from authenticator.config import REPO_ROOT
from authenticator.errors import ImageError
from authenticator.vision.decode import DecodedImage, decode_image
from authenticator.vision.quality import QualityMetrics, gate, measure_quality
from authenticator.vision.quality_thresholds import QualityThresholds
from training.paths import DEV_DATA, portable

DEFAULT_DATA = DEV_DATA
DEFAULT_OUT = REPO_ROOT / "docs" / "vision-thresholds.md"
Degrade = Callable[[np.ndarray, np.ndarray | None], tuple[np.ndarray, np.ndarray | None]]


def blur(rgb: np.ndarray, alpha: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Out of focus: Gaussian blur with sigma = 1/128 of the long side (3 px at 384)."""
    sigma = max(rgb.shape[:2]) / 128
    return cv2.GaussianBlur(rgb, (0, 0), sigma), alpha


def darken(rgb: np.ndarray, alpha: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """About -2.7 EV: every pixel times 0.15."""
    return (rgb.astype(np.float32) * 0.15).astype(np.uint8), alpha


def overexpose(rgb: np.ndarray, alpha: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """About +1.6 EV with clipping: every pixel times 3, clipped at 255."""
    return np.clip(rgb.astype(np.float32) * 3.0, 0, 255).astype(np.uint8), alpha


def fog(rgb: np.ndarray, alpha: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Flat, hazy light: 20 % of the photo over a mid-grey."""
    return (rgb.astype(np.float32) * 0.2 + 110).astype(np.uint8), alpha


def glare(rgb: np.ndarray, alpha: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """A saturated reflection covering about 12 % of the photo, away from the border."""
    out = rgb.copy()
    h, w = rgb.shape[:2]
    ax, ay = int(w * 0.25), int(h * 0.15)
    cv2.ellipse(out, (w // 2, h // 2), (ax, ay), 20, 0, 360, (255, 255, 255), -1)
    return out, alpha


def far_away(rgb: np.ndarray, alpha: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The item photographed from far: the photo shrunk to 25 % on a plain light-grey table."""
    h, w = rgb.shape[:2]
    canvas = np.full_like(rgb, 200)
    sw, sh = max(1, w // 4), max(1, h // 4)
    small = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
    top, left = (h - sh) // 2, (w - sw) // 2
    canvas[top : top + sh, left : left + sw] = small
    new_alpha = None
    if alpha is not None:
        new_alpha = np.zeros_like(alpha)
        new_alpha[top : top + sh, left : left + sw] = cv2.resize(alpha, (sw, sh), interpolation=cv2.INTER_NEAREST)
    return canvas, new_alpha


#: degradation -> the reason code it must produce
DEGRADATIONS: dict[str, tuple[Degrade, str]] = {
    "blurred": (blur, "blurred"),
    "darkened": (darken, "underexposed"),
    "over-exposed": (overexpose, "overexposed"),
    "foggy": (fog, "low_contrast"),
    "glare": (glare, "glare"),
    "far away": (far_away, "object_too_small"),
}

#: metric -> (threshold field, direction): "min" fails below the threshold, "max" above it.
CHECKS: dict[str, tuple[str, str]] = {
    "short_side": ("min_short_side", "min"),
    "sharpness": ("min_sharpness", "min"),
    "dark_fraction": ("max_dark_fraction", "max"),
    "luma_p90": ("min_luma_p90", "min"),
    "centre_bright_fraction": ("max_centre_bright_fraction", "max"),
    "luma_p10": ("max_luma_p10", "max"),
    "contrast": ("min_contrast", "min"),
    "glare_fraction": ("max_glare_fraction", "max"),
    "object_fraction": ("min_object_fraction", "min"),
}


def load_dev_photos(data: Path, sample: int | None, seed: int = 0) -> list[tuple[str, DecodedImage]]:
    rows = list(csv.DictReader((data / "manifest.csv").open()))
    if sample is not None and sample < len(rows):
        rows = random.Random(seed).sample(rows, sample)
    out = []
    for row in rows:
        try:
            out.append((row["path"], decode_image((data / row["path"]).read_bytes())))
        except ImageError as exc:  # reported, not hidden
            print(f"skip {row['path']}: {exc.code}")
    return out


def choose_thresholds(metrics: list[QualityMetrics], quantile: float, floor: QualityThresholds) -> QualityThresholds:
    """Each threshold at ``quantile`` of the development photos, never looser than ``floor``."""
    values: dict[str, float] = {}
    for metric, (name, direction) in CHECKS.items():
        xs = np.array([getattr(m, metric) for m in metrics], dtype=np.float64)
        floor_value = float(getattr(floor, name))
        if direction == "min":
            values[name] = (
                min(float(np.quantile(xs, quantile)), floor_value) if name != "min_short_side" else floor_value
            )
        else:
            values[name] = max(float(np.quantile(xs, 1 - quantile)), floor_value)
    rounded: dict[str, float] = {k: _round(v) for k, v in values.items()}
    return QualityThresholds(**{**rounded, "min_short_side": int(values["min_short_side"])})  # type: ignore[arg-type]


def _round(v: float) -> float:
    return float(f"{v:.3g}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--sample", type=int, default=None, help="use N random photos (default: all)")
    ap.add_argument("--quantile", type=float, default=0.002, help="fraction of dev photos each check may fail")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    calibrate(args.data, args.sample, args.quantile, args.out)


def calibrate(data: Path, sample: int | None, quantile: float, out: Path) -> QualityThresholds:
    """Measure the development photos in ``data``, choose the thresholds, write ``out`` and return them."""
    photos = load_dev_photos(data, sample)
    base = [measure_quality(p.rgb, p.alpha) for _, p in photos]
    # Loosest thresholds we accept whatever the data say: a check that passes everything is useless.
    strictest = QualityThresholds(
        min_short_side=160,
        min_sharpness=1e9,
        max_dark_fraction=0.0,
        min_luma_p90=1e9,
        max_centre_bright_fraction=0.0,
        max_luma_p10=0.0,
        min_contrast=1e9,
        max_glare_fraction=0.0,
        min_object_fraction=1e9,
    )
    t = choose_thresholds(base, quantile, strictest)
    passed = [not gate(m, t) for m in base]
    fail_codes: dict[str, int] = {}
    for m in base:
        for r in gate(m, t):
            fail_codes[r.code] = fail_codes.get(r.code, 0) + 1

    by_source: dict[str, list[bool]] = {}
    for (path, _), ok in zip(photos, passed, strict=True):
        by_source.setdefault(path.split("/")[0], []).append(ok)

    degraded_rows = []
    for label, (fn, code) in DEGRADATIONS.items():
        right = anyfail = 0
        for (_, p), ok in zip(photos, passed, strict=True):
            if not ok:
                continue  # only photos that pass as they are tell whether the check sees the damage
            rgb, alpha = fn(p.rgb, p.alpha)
            reasons = {r.code for r in gate(measure_quality(rgb, alpha), t)}
            right += code in reasons
            anyfail += bool(reasons)
        n = sum(passed)
        degraded_rows.append((label, code, right / n, anyfail / n))

    lines = [
        "# Quality-gate thresholds",
        "",
        "Produced by `python -m training.calibrate_gate"
        + (f" --sample {sample}" if sample else "")
        + f" --quantile {quantile}` on the real development photos "
        f"(`{portable(data)}`, {len(photos)} photos). Do not edit by hand: rerun the script.",
        "",
        "Measurements are taken on the luma of the photo resized to a long side of 384 px; "
        "transparent pixels are ignored. Each threshold sits at the "
        f"{quantile:.1%} quantile of the development photos in its failing direction "
        "(the short-side minimum is fixed by hand), so all checks together fail only a few percent.",
        "",
        "| check | threshold | dev photos: 0.5% / 5% / 50% / 95% / 99.5% quantiles |",
        "|---|---|---|",
    ]
    for metric, (name, direction) in CHECKS.items():
        xs = np.array([getattr(m, metric) for m in base], dtype=np.float64)
        qs = " / ".join(f"{q:.3g}" for q in np.quantile(xs, [0.005, 0.05, 0.5, 0.95, 0.995]))
        op = ">=" if direction == "min" else "<="
        lines.append(f"| `{metric}` {op} | `{name} = {getattr(t, name)}` | {qs} |")
    lines += [
        "",
        f"**Development photos passing the gate: {sum(passed)}/{len(passed)} = {np.mean(passed):.2%}** "
        "(target ≥ 98 %).",
        "",
        "| source | photos | pass rate |",
        "|---|---|---|",
    ]
    lines += [f"| {s} | {len(v)} | {np.mean(v):.2%} |" for s, v in sorted(by_source.items())]
    lines += [
        "",
        "Failures among development photos, by reason: "
        + (", ".join(f"`{c}` {n}" for c, n in sorted(fail_codes.items())) or "none"),
        "",
        "## Degraded copies of the passing development photos",
        "",
        "| degradation | expected reason | failed with that reason | failed at all |",
        "|---|---|---|---|",
    ]
    for label, code, right_rate, any_rate in degraded_rows:
        doc = DEGRADATIONS[label][0].__doc__ or ""
        lines.append(f"| {label} ({doc.strip()}) | `{code}` | {right_rate:.2%} | {any_rate:.2%} |")
    lines += ["", "## Values (copy into `QualityThresholds`)", "", "```python", repr(t), "```", ""]
    lines += [f"- `{f.name}`: {getattr(t, f.name)}" for f in fields(t)]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(asdict(t))
    return t


if __name__ == "__main__":
    main()
