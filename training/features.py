"""Frozen-backbone features, computed once per photo and cached under ``training/runs/``.

On 2 CPU cores the backbone is the expensive part, so every approach we compare (global 224 px,
448 px input, 4x4 regions for multiple-instance pooling, patch kNN) is a head trained on these
cached tensors. The cache key covers the file's bytes and the preprocessing, so a changed photo
or spec is recomputed.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from authenticator.vision.decode import decode_image
from authenticator.vision.preprocess import PreprocessSpec, composite_alpha
from training.data import TRAIN_LIMITS, Sample, training_input

GRID = 4
CACHE_VERSION = "v2"  # v2: reduced JPEG decode as serving does


@dataclass
class FeatureSet:
    """Per-photo cached tensors, rows aligned with the sample list."""

    emb224: np.ndarray  # (N, 1280) pooled embedding at 224 px letterbox
    logits224: np.ndarray  # (N, 1000) ImageNet logits at 224 px
    emb448: np.ndarray  # (N, 1280) pooled embedding at 448 px letterbox
    grid448: np.ndarray  # (N, 16, 1280) 4x4 region embeddings at 448 px (MIL instances, patches)
    meta: np.ndarray  # (N, len(META_NAMES)) trivial photo properties for the shortcut check


META_NAMES = [
    "width",
    "height",
    "aspect",
    "file_kb",
    "jpeg_quality",
    "alpha_area",
    "border_r",
    "border_g",
    "border_b",
    "border_std",
    "is_gray",
]


def jpeg_quality(data: bytes) -> float:
    """Estimate JPEG quality from the luminance quantisation table (IJG scaling); -1 if not JPEG."""
    try:
        img = Image.open(io.BytesIO(data))
        q = getattr(img, "quantization", None)
        if img.format != "JPEG" or not q:
            return -1.0
        table = np.asarray(q[0], dtype=np.float64)
    except Exception:
        return -1.0
    std = np.array(
        [
            16,
            11,
            10,
            16,
            24,
            40,
            51,
            61,
            12,
            12,
            14,
            19,
            26,
            58,
            60,
            55,
            14,
            13,
            16,
            24,
            40,
            57,
            69,
            56,
            14,
            17,
            22,
            29,
            51,
            87,
            80,
            62,
            18,
            22,
            37,
            56,
            68,
            109,
            103,
            77,
            24,
            35,
            55,
            64,
            81,
            104,
            113,
            92,
            49,
            64,
            78,
            87,
            103,
            121,
            120,
            101,
            72,
            92,
            95,
            98,
            112,
            100,
            103,
            99,
        ],
        dtype=np.float64,
    )
    scale = float(np.mean(np.sort(table)) / np.mean(np.sort(std))) * 100.0
    quality = (200.0 - scale) / 2.0 if scale <= 100 else 5000.0 / scale
    return float(np.clip(quality, 1, 100))


def photo_meta(data: bytes, rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Trivial properties a model could cheat with (border colour after alpha compositing)."""
    rgb = composite_alpha(rgb, alpha, PreprocessSpec().alpha_background)
    h, w = rgb.shape[:2]
    border = np.concatenate(
        [rgb[:4].reshape(-1, 3), rgb[-4:].reshape(-1, 3), rgb[:, :4].reshape(-1, 3), rgb[:, -4:].reshape(-1, 3)]
    ).astype(np.float64)
    small = rgb[::8, ::8].astype(np.int16)
    gray = float(np.abs(small[..., 0] - small[..., 1]).mean() + np.abs(small[..., 1] - small[..., 2]).mean() < 2.0)
    return np.array(
        [
            w,
            h,
            w / h,
            len(data) / 1024.0,
            jpeg_quality(data),
            1.0 if alpha is None else float((alpha > 127).mean()),
            *border.mean(0),
            float(border.std()),
            gray,
        ],
        dtype=np.float32,
    )


def extract_one(model: Any, sample_bytes: bytes) -> dict[str, np.ndarray]:
    d = decode_image(sample_bytes, TRAIN_LIMITS)
    out: dict[str, np.ndarray] = {"meta": photo_meta(sample_bytes, d.rgb, d.alpha)}
    with torch.inference_mode():
        x224 = torch.from_numpy(training_input(sample_bytes, PreprocessSpec(input_size=224)))[None]
        f = model.forward_features(x224)
        emb = f.mean((2, 3))
        out["emb224"] = emb[0].numpy()
        out["logits224"] = model.get_classifier()(emb)[0].numpy()
        x448 = torch.from_numpy(training_input(sample_bytes, PreprocessSpec(input_size=448)))[None]
        f = model.forward_features(x448)
        out["emb448"] = f.mean((2, 3))[0].numpy()
        out["grid448"] = F.adaptive_avg_pool2d(f, GRID)[0].flatten(1).T.contiguous().numpy()
    return out


def _key(samples: list[Sample]) -> str:
    h = hashlib.sha256(CACHE_VERSION.encode())
    for s in samples:
        st = s.path.stat()
        h.update(f"{s.path}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def compute_features(samples: list[Sample], model: Any, cache_dir: Path | None) -> FeatureSet:
    """Features for ``samples`` (cached as one .npz per sample list under ``cache_dir``)."""
    cache = cache_dir / f"features-{_key(samples)}.npz" if cache_dir else None
    if cache is not None and cache.is_file():
        z = np.load(cache)
        return FeatureSet(**{k: z[k] for k in ("emb224", "logits224", "emb448", "grid448", "meta")})
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("emb224", "logits224", "emb448", "grid448", "meta")}
    for s in tqdm(samples, desc="features", unit="photo", mininterval=5):
        one = extract_one(model, s.path.read_bytes())
        for k, v in one.items():
            rows[k].append(v)
    fs = FeatureSet(
        emb224=np.stack(rows["emb224"]).astype(np.float32),
        logits224=np.stack(rows["logits224"]).astype(np.float32),
        emb448=np.stack(rows["emb448"]).astype(np.float32),
        grid448=np.stack(rows["grid448"]).astype(np.float16),
        meta=np.stack(rows["meta"]).astype(np.float32),
    )
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, **fs.__dict__)
        tmp.replace(cache)
    return fs
