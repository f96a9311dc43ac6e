"""Pure parts of the vision runtime: decision math, pHash and the in-memory reuse index."""

from __future__ import annotations

import csv
import io
import itertools
import math
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from authenticator.vision.decision import aggregate_logits, calibrate, decide, logit, sigmoid
from authenticator.vision.decode import decode_image
from authenticator.vision.phash import InMemoryPhotoReuseIndex, hamming, phash, phash_hex

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"


def test_aggregation_rules() -> None:
    zs = [2.0, -1.0, 0.5]
    assert aggregate_logits(zs, "mean_logit") == pytest.approx(0.5)
    assert aggregate_logits(zs, "min_logit") == -1.0
    assert aggregate_logits(zs, "median_logit") == 0.5
    assert aggregate_logits([1.0, 3.0], "median_logit") == 2.0
    mean_p = (sigmoid(2.0) + sigmoid(-1.0) + sigmoid(0.5)) / 3
    assert sigmoid(aggregate_logits(zs, "mean_prob")) == pytest.approx(mean_p)
    with pytest.raises(ValueError):
        aggregate_logits([], "mean_logit")
    with pytest.raises(ValueError):
        aggregate_logits(zs, "max_logit")


def test_temperature_scaling() -> None:
    assert calibrate(0.0, 2.0) == 0.5
    assert calibrate(2.0, 2.0) == pytest.approx(1 / (1 + math.exp(-1.0)))
    assert calibrate(-800.0, 1.0) == pytest.approx(0.0) and calibrate(800.0, 1.0) == pytest.approx(1.0)
    assert logit(sigmoid(1.3)) == pytest.approx(1.3)
    with pytest.raises(ValueError):
        calibrate(1.0, 0.0)


def test_two_thresholds_and_the_abstain_band() -> None:
    assert decide(0.95, 0.9, 0.2) == "authentic"
    assert decide(0.9, 0.9, 0.2) == "inconclusive"  # strictly above to pass
    assert decide(0.5, 0.9, 0.2) == "inconclusive"
    assert decide(0.2, 0.9, 0.2) == "inconclusive"
    assert decide(0.19, 0.9, 0.2) == "counterfeit"
    with pytest.raises(ValueError):
        decide(0.5, 0.2, 0.9)


def _real(n: int, seed: int) -> list[Path]:
    rows = list(csv.DictReader((REAL / "manifest.csv").open()))
    one_per_item = {r["item_group"]: r for r in rows}
    return [REAL / r["path"] for r in random.Random(seed).sample(list(one_per_item.values()), n)]


def test_phash_survives_reencoding_resizing_and_light_edits() -> None:
    for path in _real(12, seed=3):
        img = Image.open(path).convert("RGB")
        h = phash(np.asarray(img))
        variants = [
            img.resize((img.width // 2, img.height // 2)),
            ImageEnhance.Brightness(img).enhance(1.15),
            img.crop((img.width // 50, img.height // 50, img.width - img.width // 50, img.height - img.height // 50)),
        ]
        for v in variants:
            buf = io.BytesIO()
            v.save(buf, "JPEG", quality=70)
            assert hamming(h, phash(decode_image(buf.getvalue()).rgb)) <= 8, path


def test_phash_tells_different_items_apart() -> None:
    hashes = [phash(decode_image(p.read_bytes()).rgb) for p in _real(60, seed=5)]
    close = [d for a, b in itertools.combinations(hashes, 2) if (d := hamming(a, b)) <= 8]
    assert not close  # 1,770 pairs; on 150 items (11,175 pairs) the smallest distance is 14


def test_phash_format() -> None:
    rng = np.random.default_rng(0)
    h = phash(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8))
    assert 0 <= h < 2**64 and len(phash_hex(h)) == 16 and int(phash_hex(h), 16) == h
    assert hamming(0, 2**64 - 1) == 64 and hamming(h, h) == 0


def test_in_memory_index() -> None:
    idx = InMemoryPhotoReuseIndex(max_distance=4)
    idx.add(0b1111, "A", "sha-a")
    idx.add(0b1111, "A", "sha-a")  # idempotent
    idx.add(0b0111, "B", "sha-b")
    assert len(idx) == 2
    assert [m.item_id for m in idx.lookup(0b1111, exclude_item="A")] == ["B"]
    assert [(m.item_id, m.distance) for m in idx.lookup(0b1111, exclude_item=None)] == [("A", 0), ("B", 1)]
    assert idx.lookup(0b1111 | (0xFF << 20), exclude_item=None) == []


def _logits_for(probs: dict[int, float]) -> np.ndarray:
    """ImageNet logits whose softmax puts ``probs`` on the given classes, the rest spread evenly."""
    rest = (1.0 - sum(probs.values())) / (1000 - len(probs))
    p = np.full(1000, rest)
    for i, v in probs.items():
        p[i] = v
    return np.log(p)[None]


def test_imagenet_category_needs_mass_and_to_beat_every_other_class() -> None:
    from authenticator.vision.category import CategoryConfig, categorize

    cfg = CategoryConfig(imagenet_classes={"watch": [409, 531], "sneaker": [770, 774]}, imagenet_min_prob=0.02)
    emb = np.ones((1, 4), np.float32)
    sneaker = categorize(_logits_for({770: 0.06, 774: 0.04, 10: 0.08}), emb, cfg, None)[0]
    assert sneaker.category == "sneaker" and sneaker.imagenet_prob == pytest.approx(0.10)
    brick = categorize(_logits_for({409: 0.03, 531: 0.02, 10: 0.30}), emb, cfg, None)[0]
    assert brick.category is None and brick.imagenet_top_other == pytest.approx(0.30)
    faint = categorize(_logits_for({770: 0.01}), emb, cfg, None)[0]
    assert faint.category is None


def test_table_normalize_is_bit_identical_to_the_arithmetic_definition(shared_dir: Path) -> None:
    """The lookup-table normalize must give the very tensor training's arithmetic gives."""
    from authenticator.vision.preprocess import PreprocessSpec, normalize, normalize_reference, resize_to_input

    every_level = np.arange(256 * 3, dtype=np.uint16).reshape(16, 16, 3).astype(np.uint8)
    specs = [
        PreprocessSpec(input_size=448),
        PreprocessSpec(input_size=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
    ]
    for spec in specs:
        got, want = normalize(every_level, spec), normalize_reference(every_level, spec)
        assert got.dtype == want.dtype == np.float32 and got.shape == want.shape == (3, 16, 16)
        assert np.array_equal(got, want)
        for path in sorted((shared_dir / "data" / "real").glob("*/*/*"))[::150]:
            square = resize_to_input(decode_image(path.read_bytes()).rgb, spec)
            assert np.array_equal(normalize(square, spec), normalize_reference(square, spec)), path
    assert not np.array_equal(normalize(every_level, specs[0]), normalize(every_level, specs[1]))


def test_occlusion_maps_in_chunks_match_one_pass_and_never_build_every_copy() -> None:
    """Regression: every occluded copy of every photo was built at once (4 photos x 49 cells at
    448 px: ~470 MB, peak RSS 1.1 GB measured); now chunk by chunk, optionally on a pool."""
    from concurrent.futures import ThreadPoolExecutor

    from authenticator.vision.heatmap import occlusion_inputs, occlusion_maps

    rng = np.random.default_rng(5)
    inputs = rng.normal(size=(3, 3, 28, 28)).astype(np.float32)
    weights = rng.normal(size=(3, 28, 28)).astype(np.float32)
    seen: list[int] = []

    def run_logits(batch: np.ndarray) -> np.ndarray:
        seen.append(len(batch))
        return np.einsum("nchw,chw->n", batch, weights).astype(np.float32)

    base = run_logits(inputs)
    whole = base.reshape(-1, 1, 1) - np.stack([run_logits(occlusion_inputs(x, 7)) for x in inputs]).reshape(3, 7, 7)
    seen.clear()
    with ThreadPoolExecutor(2) as pool:
        for chunk, mapper in [(1, map), (5, map), (8, pool.map), (49, pool.map)]:
            got = occlusion_maps(inputs, base, run_logits, grid=7, chunk=chunk, map_chunks=mapper)
            assert np.allclose(got, whole, atol=1e-4)
            assert max(seen) <= chunk
            seen.clear()
    # each cell hides exactly its own region, in row-major order
    copies = occlusion_inputs(np.ones((1, 28, 28), np.float32), 7, [0, 8, 48])
    assert copies[0, 0, :4, :4].sum() == 0 and copies[0, 0, 4:, 4:].min() == 1
    assert copies[1, 0, 4:8, 4:8].sum() == 0 and copies[2, 0, 24:, 24:].sum() == 0
    assert [int((c == 0).sum()) for c in copies] == [16, 16, 16]


def test_letterbox_equals_fill_and_paste() -> None:
    """resize_to_input pads with cv2.copyMakeBorder; it must give the canvas the original
    definition gives (a square filled with pad_value, the resized photo pasted in the centre)."""
    import cv2

    from authenticator.vision.preprocess import PreprocessSpec, resize_to_input

    rng = np.random.default_rng(9)
    for size, pad in [(448, (255, 255, 255)), (224, (12, 200, 7))]:
        spec = PreprocessSpec(input_size=size, pad_value=pad)
        for h, w in [(600, 800), (800, 600), (601, 799), (size, size), (300, 200), (1, 900), (900, 3), (97, 97)]:
            img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            scale = size / max(h, w)
            nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            canvas = np.empty((size, size, 3), dtype=np.uint8)
            canvas[:] = np.asarray(pad, dtype=np.uint8)
            top, left = (size - nh) // 2, (size - nw) // 2
            canvas[top : top + nh, left : left + nw] = cv2.resize(img, (nw, nh), interpolation=interp)
            got = resize_to_input(img, spec)
            assert got.dtype == np.uint8 and got.shape == (size, size, 3)
            assert np.array_equal(got, canvas), (size, h, w)
