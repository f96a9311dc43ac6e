"""The assessment's per-photo work made cheaper without changing a number (issue 13, point 5):
each shortcut gives exactly what the longer way gives, on real development photos."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import cv2
import numpy as np
import pytest

from authenticator.config import Settings
from authenticator.vision.category import ReferenceBank, bank_similarities, categorize
from authenticator.vision.decode import DecodedImage, decode_image
from authenticator.vision.line_check import other_line
from authenticator.vision.phash import phash
from authenticator.vision.quality import _glare_fraction, measure_quality, normalised_gray

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
CARD = Settings().weights_dir / f"{Settings().model_name}.card.json"


@pytest.fixture(scope="module")
def photos() -> list[tuple[str, DecodedImage]]:
    rows = random.Random(13).sample(list(csv.DictReader((REAL / "manifest.csv").open())), 40)
    return [(r["path"], decode_image((REAL / r["path"]).read_bytes())) for r in rows]


def _glare_by_labelling(gray: np.ndarray, mask: np.ndarray | None) -> float:
    """The glare measure with every saturated blob labelled (no shortcut)."""
    sat = (gray >= 250).astype(np.uint8)
    if mask is not None:
        sat &= mask.astype(np.uint8)
    n, _labels, stats, _ = cv2.connectedComponentsWithStats(sat, connectivity=8)
    h, w = gray.shape
    area = 0
    for i in range(1, n):
        x, y, bw, bh, a = (int(v) for v in stats[i])
        if not (x == 0 or y == 0 or x + bw >= w or y + bh >= h) and a >= 0.002 * h * w:
            area += a
    return float(area / max(1, int(mask.sum()) if mask is not None else h * w))


def test_glare_shortcut_gives_what_labelling_gives(photos: list[tuple[str, DecodedImage]]) -> None:
    """Too few saturated pixels for any blob to count: 0.0 without labelling; otherwise labelled."""
    grays = [normalised_gray(d.rgb, d.alpha) for _, d in photos]
    # synthetic: a blob just under and just over the size that counts, and one touching the border
    blank = np.full((288, 384), 120, np.uint8)
    side = int(np.ceil(np.sqrt(0.002 * blank.size)))
    for s, at in ((side - 1, 100), (side, 100), (side + 3, 0)):
        g = blank.copy()
        g[at : at + s, at : at + s] = 255
        grays.append((g, None))
    values = [(_glare_fraction(g, m), _glare_by_labelling(g, m)) for g, m in grays]
    assert all(a == b for a, b in values), values
    assert any(a > 0 for a, _ in values) and any(a == 0 for a, _ in values)


def test_shared_luma_gives_the_same_metrics_and_hash(photos: list[tuple[str, DecodedImage]]) -> None:
    for path, d in photos:
        gray = cv2.cvtColor(d.rgb, cv2.COLOR_RGB2GRAY)
        assert measure_quality(d.rgb, d.alpha, full_gray=gray) == measure_quality(d.rgb, d.alpha), path
        assert phash(gray) == phash(d.rgb), path


@pytest.mark.skipif(not CARD.exists(), reason="no shipped model")
def test_bank_similarities_computed_once_give_the_same_category_and_line_vote() -> None:
    """The assessor computes the photos' similarities to the bank once and hands them to the category
    check and the product-line vote: the same results as each computing its own."""
    from authenticator.vision.card import ModelCard
    from authenticator.vision.line_check import load_bank_lines
    from authenticator.vision.service import Assessor

    assessor = Assessor.from_settings(Settings())
    card = ModelCard.load(CARD)
    bank_file = CARD.parent / str(card.ood["bank"])
    bank, lines = ReferenceBank.load(bank_file), load_bank_lines(bank_file)
    assert lines is not None
    rng = np.random.default_rng(13)
    # bank rows (each its own nearest photo) plus noisy copies: near-ties at the k-th neighbour
    rows = rng.choice(len(bank.embeddings), 24, replace=False)
    emb = np.concatenate([bank.embeddings[rows], bank.embeddings[rows] + rng.normal(0, 0.02, (24, 1))])
    emb = (emb * 7.5).astype(np.float32)  # raw embeddings are not unit length
    imagenet = rng.normal(0, 3, (len(emb), 1000)).astype(np.float32)
    sims = bank_similarities(emb, bank.embeddings)
    assert categorize(imagenet, emb, assessor.category_config, bank, sims=sims) == categorize(
        imagenet, emb, assessor.category_config, bank
    )
    declared = sorted({str(x) for x in lines if x})
    for key in declared:
        for i in range(0, len(emb), 4):
            q = emb[i : i + 4]
            got = other_line(q, bank.embeddings, lines, key, 5, 0.5, sims=sims[i : i + 4])
            assert got == other_line(q, bank.embeddings, lines, key, 5, 0.5), (key, i)


@pytest.mark.skipif(not CARD.exists(), reason="no shipped model")
def test_assessor_runs_opencv_on_its_own_threads_only() -> None:
    """Photos already run in parallel on the assessor's pool: OpenCV's own pool is switched off."""
    from authenticator.vision.service import Assessor

    cv2.setNumThreads(2)
    Assessor(Assessor.from_settings(Settings()).card, CARD.resolve(), Settings())
    assert cv2.getNumThreads() == 1
