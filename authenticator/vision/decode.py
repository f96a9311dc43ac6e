"""Safe decoding of untrusted photo bytes into RGB uint8 (plus an optional alpha mask).

Limits are checked from the header before any pixel is decoded, so a decompression bomb
costs nothing. Training reads its photos through this same function, so serving sees
exactly the pixels the model was trained on.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from authenticator.errors import (
    CorruptImage,
    DecompressionBomb,
    ImageTooLarge,
    ImageTooSmall,
    UnsupportedFormat,
)

try:  # HEIC/HEIF support is an optional plugin of Pillow.
    from pillow_heif import register_heif_opener

    register_heif_opener()
    _HEIF = True
except ImportError:  # pragma: no cover - pillow-heif is a core dependency
    _HEIF = False

SUPPORTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "HEIF", "HEIC", "MPO"})


@dataclass(frozen=True)
class DecodeLimits:
    max_bytes: int = 20 * 1024 * 1024
    max_megapixels: float = 50.0
    min_short_side: int = 64


@dataclass(frozen=True)
class DecodedImage:
    rgb: np.ndarray  # HxWx3 uint8, EXIF orientation applied
    alpha: np.ndarray | None  # HxW uint8, or None when the photo is opaque
    format: str
    width: int
    height: int
    #: Size of the photo as uploaded (after EXIF rotation); larger than width/height when the
    #: JPEG was decoded at reduced scale (see ``reduce_to``).
    source_width: int = 0
    source_height: int = 0


def decode_image(data: bytes, limits: DecodeLimits | None = None, *, reduce_to: int | None = None) -> DecodedImage:
    """Decode ``data``; raise a typed :class:`~authenticator.errors.ImageError` on bad input.

    ``reduce_to``: for JPEGs, let libjpeg decode at 1/2, 1/4 or 1/8 scale (its DCT scaling, 2-3x
    cheaper than a full decode) as long as the long side stays >= ``reduce_to``; JPEGs under
    twice that size are decoded in full. Use :func:`model_decode_size`; training decoding the
    same way sees exactly the pixels serving sees.
    """
    limits = limits or DecodeLimits()
    if not data:
        raise CorruptImage("The file is empty.")
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(f"The file is {len(data)} bytes; the limit is {limits.max_bytes}.")
    # No warnings.catch_warnings() here: it swaps the process-wide filter list and is not
    # thread-safe (photos are decoded on several threads at once). Pillow raises
    # DecompressionBombError itself past 2x its own limit; below that the explicit megapixel
    # check after the header refuses what the settings do not allow.
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise UnsupportedFormat("The file is not a JPEG, PNG, WebP or HEIC photo.") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DecompressionBomb("The image header announces too many pixels.") from exc
    except Exception as exc:
        raise CorruptImage(f"The file cannot be read as an image: {exc}") from exc
    fmt = (img.format or "").upper()
    if fmt not in SUPPORTED_FORMATS:
        raise UnsupportedFormat(f"Format {fmt or 'unknown'} is not accepted; send JPEG, PNG, WebP or HEIC.")
    # MPO (camera stereo/depth pairs) and HEIF (bursts, depth) hold extra images: use the primary one.
    if getattr(img, "n_frames", 1) > 1 and fmt not in ("MPO", "HEIF", "HEIC"):
        raise UnsupportedFormat("Animated images are not accepted; send a still photo.")
    w, h = img.size
    if w * h > limits.max_megapixels * 1_000_000:
        raise DecompressionBomb(f"The image is {w}x{h} pixels; the limit is {limits.max_megapixels} megapixels.")
    if min(w, h) < limits.min_short_side:
        raise ImageTooSmall(f"The image is {w}x{h} pixels; the short side must be at least {limits.min_short_side}.")
    if reduce_to is not None and fmt in ("JPEG", "MPO") and max(w, h) >= 2 * reduce_to:
        r = reduce_to / max(w, h)
        img.draft(img.mode, (max(1, math.ceil(w * r)), max(1, math.ceil(h * r))))
    try:
        img.load()
        decoded_size = img.size
        ImageOps.exif_transpose(img, in_place=True)  # no copy of an upright photo
        rgb, alpha = _to_rgb(img)
    except (OSError, SyntaxError, ValueError) as exc:
        raise CorruptImage(f"The image is corrupt or truncated: {exc}") from exc
    # Orientation 5-8 swaps the axes.
    sw, sh = (h, w) if (img.size[0] > img.size[1]) != (decoded_size[0] > decoded_size[1]) else (w, h)
    return DecodedImage(
        rgb=rgb, alpha=alpha, format=fmt, width=rgb.shape[1], height=rgb.shape[0], source_width=sw, source_height=sh
    )


def model_decode_size(input_size: int) -> int:
    """The ``reduce_to`` serving uses (and training should use): 1.5x the network input, so the
    final area resize still averages real pixels, and never under 512 px, so the quality gate
    (measured at 384 px) sees real detail rather than an upscaled thumbnail."""
    return max(3 * input_size // 2, 512)


def _to_rgb(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Any mode -> (RGB uint8, alpha uint8 or None). 16-bit is scaled, CMYK converted."""
    alpha: np.ndarray | None = None
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        # 16-bit modes span 0..65535 whatever the content; mode I (32-bit) is only seen from
        # 16-bit PNGs, so it is scaled the same way unless its values fit 8 bits.
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        g = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.stack([g, g, g], axis=-1)), None
    if img.mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        arr = np.asarray(rgba)
        a = arr[..., 3]
        if int(a.min()) < 255:
            alpha = np.ascontiguousarray(a)
        return np.ascontiguousarray(arr[..., :3]), alpha
    return np.ascontiguousarray(np.asarray(img.convert("RGB"))), None
