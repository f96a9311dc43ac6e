"""Procedural synthetic photos (bags and watches drawn with OpenCV) for smoke tests and demos.

Counterfeits carry the defects an authenticator looks for: uneven stitching, misaligned or
wrongly spaced logo marks, wrong hardware colour. Everything written here is labelled
synthetic (source ``synthetic-<category>``) and never counts toward a reported metric.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from training.data import Sample

GOLD = (40, 170, 212)  # BGR
SILVER = (192, 192, 192)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    base = rng.integers(150, 250, 3)
    img = np.empty((size, size, 3), np.uint8)
    img[:] = base
    noise = rng.normal(0, 6, (size, size, 1))
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def draw_bag(rng: np.random.Generator, counterfeit: bool, size: int = 256) -> np.ndarray:
    img = _background(rng, size)
    s = size / 256
    body = np.array([[50, 110], [206, 110], [226, 230], [30, 230]], np.float64) * s
    body += rng.normal(0, 3 * s, body.shape)
    colour = tuple(int(c) for c in rng.integers(20, 120, 3))
    cv2.fillPoly(img, [body.astype(np.int32)], colour)
    cv2.ellipse(img, (int(128 * s), int(110 * s)), (int(55 * s), int(45 * s)), 0, 180, 360, colour, max(2, int(8 * s)))
    # stitching along the top edge: even spacing when authentic, jittered when counterfeit
    n = 14
    xs = np.linspace(60 * s, 196 * s, n)
    if counterfeit:
        xs = xs + rng.normal(0, 4 * s, n)
    for x in xs:
        y = 122 * s + (rng.normal(0, 3 * s) if counterfeit else 0)
        cv2.line(img, (int(x), int(y)), (int(x + 5 * s), int(y)), (230, 230, 230), max(1, int(2 * s)))
    # hardware: a gold turn-lock (silver on counterfeits)
    hw = SILVER if counterfeit else GOLD
    cv2.circle(img, (int(128 * s), int(150 * s)), int(10 * s), hw, -1)
    # logo marks: centred, evenly spaced; counterfeits shifted and unevenly spaced
    dx = rng.normal(10 * s, 3 * s) if counterfeit else 0.0
    gaps = [0, 14, 28] if not counterfeit else [0, 11, 30]
    for g in gaps:
        cv2.rectangle(
            img,
            (int(108 * s + g * s + dx), int(195 * s)),
            (int(116 * s + g * s + dx), int(205 * s)),
            (210, 210, 210),
            -1,
        )
    return img


def draw_watch(rng: np.random.Generator, counterfeit: bool, size: int = 256) -> np.ndarray:
    img = _background(rng, size)
    s = size / 256
    c = (int(128 * s + rng.normal(0, 3)), int(128 * s + rng.normal(0, 3)))
    case = SILVER if counterfeit else GOLD
    cv2.rectangle(img, (c[0] - int(25 * s), 0), (c[0] + int(25 * s), size), (40, 40, 40), -1)  # strap
    cv2.circle(img, c, int(80 * s), case, -1)
    cv2.circle(img, c, int(70 * s), (245, 245, 245), -1)
    for h in range(12):
        ang = h / 12 * 2 * np.pi + (rng.normal(0, 0.06) if counterfeit else 0)
        r1, r2 = 58 * s, 66 * s
        p1 = (int(c[0] + r1 * np.sin(ang)), int(c[1] - r1 * np.cos(ang)))
        p2 = (int(c[0] + r2 * np.sin(ang)), int(c[1] - r2 * np.cos(ang)))
        cv2.line(img, p1, p2, (20, 20, 20), max(1, int(3 * s)))
    for length, ang in ((40, rng.uniform(0, 6.28)), (55, rng.uniform(0, 6.28))):
        p = (int(c[0] + length * s * np.sin(ang)), int(c[1] - length * s * np.cos(ang)))
        cv2.line(img, c, p, (10, 10, 10), max(1, int(3 * s)))
    off = int(rng.normal(8, 2) * s) if counterfeit else 0
    cv2.putText(
        img,
        "LUXE",
        (c[0] - int(22 * s) + off, c[1] - int(25 * s)),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.5 * s,
        (20, 20, 20),
        1,
        cv2.LINE_AA,
    )
    return img


def generate(
    root: Path, n_per_class: int = 8, categories: tuple[str, ...] = ("bag", "watch"), seed: int = 0, size: int = 256
) -> list[Sample]:
    """Write ``<root>/<label>/<category>_<i>.png`` photos; two views of each item share a group."""
    rng = np.random.default_rng(seed)
    out: list[Sample] = []
    for cat in categories:
        draw = draw_bag if cat == "bag" else draw_watch
        for label in ("authentic", "counterfeit"):
            d = root / label
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n_per_class):
                img = draw(rng, label == "counterfeit", size)
                path = d / f"{cat}_{i:03d}.png"
                cv2.imwrite(str(path), img)
                out.append(
                    Sample(
                        path=path,
                        label=label,
                        category=cat,
                        item_group=f"{cat}-{label}-{i // 2}",
                        source=f"synthetic-{cat}",
                        width=size,
                        height=size,
                        synthetic=True,
                        extra={"license": "synthetic (generated)"},
                    )
                )
    return out
