"""The one preprocessing definition shared by training, export and serving.

Training (torch) and serving (onnxruntime) both call :func:`preprocess` with the
:class:`PreprocessSpec` written in the model card, so the same file gives the same tensor.
Only numpy and OpenCV here: serving must not need torch.
"""

from __future__ import annotations

import functools
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, Field


class PreprocessSpec(BaseModel):
    """How an RGB uint8 photo becomes the model's float32 CHW input."""

    input_size: int = Field(default=224, description="Side of the square network input, pixels.")
    resize: Literal["letterbox", "center_crop"] = Field(
        default="letterbox",
        description="letterbox: fit the whole photo, pad with `pad_value`; "
        "center_crop: resize the short side to input_size, crop the centre.",
    )
    pad_value: tuple[int, int, int] = (255, 255, 255)
    alpha_background: tuple[int, int, int] = Field(
        default=(255, 255, 255), description="Colour transparent pixels are composited onto."
    )
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)


def composite_alpha(rgb: np.ndarray, alpha: np.ndarray | None, background: tuple[int, int, int]) -> np.ndarray:
    """Blend an RGB image with its alpha mask onto a solid background (uint8 in, uint8 out)."""
    if alpha is None:
        return rgb
    a = (alpha.astype(np.float32) / 255.0)[..., None]
    bg = np.asarray(background, dtype=np.float32)
    out = rgb.astype(np.float32) * a + bg * (1.0 - a)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def resize_to_input(rgb: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Geometric part of preprocessing: uint8 HxWx3 -> uint8 SxSx3."""
    size = spec.input_size
    h, w = rgb.shape[:2]
    if spec.resize == "center_crop":
        scale = size / min(h, w)
        nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        resized = cv2.resize(rgb, (nw, nh), interpolation=interp)
        top, left = (nh - size) // 2, (nw - size) // 2
        return np.ascontiguousarray(resized[top : top + size, left : left + size])
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(rgb, (nw, nh), interpolation=interp)
    top, left = (size - nh) // 2, (size - nw) // 2
    # the same canvas as filling an array with pad_value and pasting, at a fiftieth of the cost
    padded = cv2.copyMakeBorder(
        resized, top, size - nh - top, left, size - nw - left, cv2.BORDER_CONSTANT, value=tuple(spec.pad_value)
    )
    return np.asarray(padded, dtype=np.uint8)


@functools.lru_cache(maxsize=8)
def _normalize_table(mean: tuple[float, float, float], std: tuple[float, float, float]) -> np.ndarray:
    """(3, 256) float32: the normalized value of every uint8 level in each channel, computed with
    exactly the float32 operations :func:`normalize_reference` applies to each pixel."""
    levels = np.arange(256, dtype=np.float32)[:, None] / np.float32(255.0)
    table = (levels - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(table.T, dtype=np.float32)


def normalize(square: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """uint8 SxSx3 -> float32 3xSxS with the card's mean and std.

    A table lookup per channel: bit-identical to :func:`normalize_reference` (tested) and ~7x
    cheaper (0.5 instead of 3.6 ms at 448 px), which matters with four photos per request.
    OpenCV's ``split`` + ``LUT`` into each output plane is the same lookup at about half the cost
    of numpy's ``take`` on the interleaved channels."""
    table = _normalize_table(tuple(spec.mean), tuple(spec.std))
    out = np.empty((3, *square.shape[:2]), dtype=np.float32)
    for c, plane in enumerate(cv2.split(np.ascontiguousarray(square, dtype=np.uint8))):
        cv2.LUT(plane, table[c], dst=out[c])
    return out


def normalize_reference(square: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """The arithmetic definition of :func:`normalize` (x / 255 - mean) / std, in float32."""
    x = square.astype(np.float32) / np.float32(255.0)
    y = (x - np.asarray(spec.mean, dtype=np.float32)) / np.asarray(spec.std, dtype=np.float32)
    return np.ascontiguousarray(y.transpose(2, 0, 1), dtype=np.float32)


def preprocess(rgb: np.ndarray, alpha: np.ndarray | None, spec: PreprocessSpec) -> np.ndarray:
    """Full preprocessing of one decoded photo into the network input (3xSxS float32)."""
    return normalize(resize_to_input(composite_alpha(rgb, alpha, spec.alpha_background), spec), spec)
