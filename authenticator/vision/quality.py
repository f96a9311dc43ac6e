"""The quality gate: cheap OpenCV measurements that tell a seller to retake a photo.

Measurements (:func:`measure_quality`) are separate from the decision (:func:`gate`) so the
thresholds can be calibrated on real photos (``python -m training.calibrate_gate``)
and tested without the model. Everything is measured at a normalised size so a 12 MP phone
photo and a 640 px marketplace photo are judged on the same scale; transparent pixels (photos
whose background was removed) are left out of every measurement.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from authenticator.vision.quality_thresholds import QualityThresholds as QualityThresholds  # re-exported
from authenticator.vision.reasons import Reason, reason

#: Long side (pixels) at which blur, exposure, glare and framing are measured.
NORMALISED_LONG_SIDE = 384


@dataclass(frozen=True)
class QualityMetrics:
    """What the gate measured on one photo (all in the normalised image)."""

    short_side: int  # of the photo as uploaded, before any reduction
    sharpness: float  # variance of the Laplacian
    dark_fraction: float  # luma <= 16
    centre_bright_fraction: float  # luma >= 250 in the central half (a white studio background is not)
    luma_p10: float
    luma_p90: float
    contrast: float  # standard deviation of luma
    glare_fraction: float  # saturated blobs that do not touch the border
    object_fraction: float  # area of the bounding box of the detail (edges or opaque pixels)

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in asdict(self).items()}


def normalised_gray(
    rgb: np.ndarray, alpha: np.ndarray | None, *, full_gray: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Luma at ``NORMALISED_LONG_SIDE`` plus a mask of the opaque pixels (None when opaque).

    ``full_gray``: ``cv2.cvtColor(rgb, COLOR_RGB2GRAY)`` when the caller has it already (the
    assessor computes it once for the gate and the perceptual hash)."""
    h, w = rgb.shape[:2]
    scale = NORMALISED_LONG_SIDE / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    gray = full_gray if full_gray is not None else cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    gray = cv2.resize(gray, size, interpolation=interp)
    mask = None
    if alpha is not None:
        m = cv2.resize(alpha, size, interpolation=cv2.INTER_NEAREST) >= 128
        # Erode so the cut-out edge (a hard step to the background) does not count as detail.
        m = cv2.erode(m.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        if int(m.sum()) >= 0.02 * m.size:
            mask = m
    return gray, mask


def measure_quality(
    rgb: np.ndarray,
    alpha: np.ndarray | None = None,
    *,
    source_short_side: int | None = None,
    full_gray: np.ndarray | None = None,
) -> QualityMetrics:
    """Measure one decoded photo. ``source_short_side`` is the uploaded size when decoding was
    reduced; ``full_gray`` the photo's luma at full size if already computed (:func:`normalised_gray`)."""
    gray, mask = normalised_gray(rgb, alpha, full_gray=full_gray)
    values = gray[mask] if mask is not None else gray.reshape(-1)
    lap = cv2.Laplacian(gray, cv2.CV_32F, ksize=3)
    lap_values = lap[mask] if mask is not None else lap.reshape(-1)
    luma_hist = cv2.calcHist([gray], [0], None if mask is None else mask.view(np.uint8), [256], [0, 256])
    p10, p90 = percentiles_of_counts(luma_hist.reshape(-1).astype(np.int64), (10, 90))
    return QualityMetrics(
        short_side=int(source_short_side if source_short_side is not None else min(rgb.shape[:2])),
        sharpness=float(lap_values.var()),
        dark_fraction=float(np.mean(values <= 16)),
        centre_bright_fraction=_centre_bright_fraction(gray, mask),
        luma_p10=float(p10),
        luma_p90=float(p90),
        contrast=float(values.std()),
        glare_fraction=_glare_fraction(gray, mask),
        object_fraction=_object_fraction(gray, mask),
    )


def percentiles_of_counts(counts: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """``np.percentile(values, qs)`` (its default linear method, bit for bit) of non-negative
    integers given as ``counts[v]`` = how often ``v`` occurs: a cumulative histogram instead of a
    partial sort of every pixel. Same virtual index ``(n - 1) * q / 100`` and the same two-sided
    interpolation formula as numpy's ``_lerp``."""
    cum = np.cumsum(counts)
    n = int(cum[-1])
    if n == 0:
        raise ValueError("percentiles of no values")
    out: list[float] = []
    for q in qs:
        virtual = (n - 1) * (q / 100)
        if virtual >= n - 1:  # numpy takes the largest value
            out.append(float(np.searchsorted(cum, n - 1, side="right")))
            continue
        lo = math.floor(virtual)
        # the value at sorted position k is the smallest v with more than k values <= v
        a = int(np.searchsorted(cum, lo, side="right"))
        b = int(np.searchsorted(cum, lo + 1, side="right"))
        t = virtual - lo
        d = b - a
        out.append(a + d * t if t < 0.5 else b - d * (1 - t))
    return out


def _centre_bright_fraction(gray: np.ndarray, mask: np.ndarray | None) -> float:
    """Clipped highlights where the item is (the centre), so a white studio background does not count."""
    h, w = gray.shape
    box = (slice(h // 4, h - h // 4), slice(w // 4, w - w // 4))
    centre = gray[box]
    if mask is not None and int(mask[box].sum()) >= 100:
        centre = centre[mask[box]]
    return float(np.mean(centre >= 250))


def _glare_fraction(gray: np.ndarray, mask: np.ndarray | None) -> float:
    """Area of saturated blobs inside the frame: a white background touches the border, glare does not."""
    sat = (gray >= 250).astype(np.uint8)
    if mask is not None:
        sat &= mask.astype(np.uint8)
    h, w = gray.shape
    if cv2.countNonZero(sat) < 0.002 * h * w:  # no blob can reach the size below: no labelling needed
        return 0.0
    n, _labels, stats, _ = cv2.connectedComponentsWithStats(sat, connectivity=8)
    area = 0
    for i in range(1, n):
        x, y, bw, bh, a = (int(v) for v in stats[i])
        if x == 0 or y == 0 or x + bw >= w or y + bh >= h:
            continue
        if a >= 0.002 * h * w:  # ignore specks: small highlights are normal on metal
            area += a
    denom = int(mask.sum()) if mask is not None else h * w
    return float(area / max(1, denom))


def _object_fraction(gray: np.ndarray, mask: np.ndarray | None) -> float:
    """Bounding-box area of where the detail is, as a fraction of the frame."""
    h, w = gray.shape
    detail = mask if mask is not None else cv2.Canny(cv2.GaussianBlur(gray, (3, 3), 0), 50, 150)
    # pixels of detail per column and per row: the histograms of their x and y coordinates
    per_x = np.count_nonzero(detail, axis=0)
    per_y = np.count_nonzero(detail, axis=1)
    n = int(per_x.sum())
    if n == 0 or (mask is None and n < 50):
        return 0.0
    x0, x1 = percentiles_of_counts(per_x, (2, 98))
    y0, y1 = percentiles_of_counts(per_y, (2, 98))
    return float((x1 - x0 + 1) * (y1 - y0 + 1) / (h * w))


def gate(m: QualityMetrics, t: QualityThresholds) -> list[Reason]:
    """Reasons (possibly none) why a photo with metrics ``m`` cannot be judged."""
    out: list[Reason] = []
    if m.short_side < t.min_short_side:
        out.append(reason("low_resolution", f"short side {m.short_side} px, at least {t.min_short_side} needed"))
    under = m.dark_fraction > t.max_dark_fraction or m.luma_p90 < t.min_luma_p90
    over = m.centre_bright_fraction > t.max_centre_bright_fraction or m.luma_p10 > t.max_luma_p10
    if under:
        out.append(reason("underexposed"))
    if over:
        out.append(reason("overexposed"))
    exposure_failed = under or over
    low_contrast = not exposure_failed and m.contrast < t.min_contrast
    if low_contrast:
        out.append(reason("low_contrast"))
    # A dark or washed-out photo also loses its edges; report the cause, not the symptom.
    blurred = not exposure_failed and m.sharpness < t.min_sharpness
    if blurred:
        out.append(reason("blurred"))
    if m.glare_fraction > t.max_glare_fraction:
        out.append(reason("glare"))
    # The item's extent is measured from its edges: in a blurred, flat or badly exposed photo they
    # fade, the item seems small, and "move closer" would contradict "hold steady" for a close-up.
    if not (exposure_failed or low_contrast or blurred) and m.object_fraction < t.min_object_fraction:
        out.append(reason("object_too_small"))
    return out
