"""Video as input: the sharpest distinct frames of a short phone video, each assessed as a photo.

For sellers who film their items live: an MP4 or MOV (ISO-BMFF ``ftyp`` box, checked before
anything is decoded) of at most ``max_bytes`` and ``max_seconds`` is read with OpenCV's FFmpeg
reader from a private temporary file, sampled ``sample_per_second`` times a second; each sampled
frame is measured for sharpness (variance of the Laplacian at the quality gate's 384 px long side)
and hashed (64-bit pHash). Frames are *distinct* when their pHashes differ by more than
``min_distance`` bits from every frame kept so far, taken from the sharpest down, so a slow pan
gives several views and a still shot one frame; the ``max_frames`` sharpest distinct frames, in
time order, come back as JPEG photos named ``<video>@<seconds>s.jpg``.

No view is predicted from the frames (no data labels views): they are assessed as
``unspecified`` photos, each through the same decode, quality gate and model as a photo.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from authenticator.errors import CorruptImage, ImageTooLarge, InvalidInput, UnsupportedFormat
from authenticator.vision.phash import hamming, phash
from authenticator.vision.quality import NORMALISED_LONG_SIDE

#: ISO-BMFF major brands of the MP4 and QuickTime files phones write.
VIDEO_BRANDS = frozenset(
    {b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"qt  ", b"M4V ", b"MSNV", b"3gp4",
     b"3gp5", b"3g2a", b"dash", b"hvc1", b"heic"}
)  # fmt: skip
#: Still-image brands of the same container (HEIC/AVIF photos are photos, not videos).
_STILL_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"})


@dataclass(frozen=True)
class VideoLimits:
    max_bytes: int = 50 * 1024 * 1024
    max_seconds: float = 60.0
    max_megapixels: float = 36.0
    sample_per_second: float = 2.0
    max_frames: int = 6
    min_distance: int = 12  # pHash bits: frames closer than this show the same view
    jpeg_quality: int = 92


@dataclass(frozen=True)
class Frame:
    filename: str
    data: bytes  # JPEG
    seconds: float
    sharpness: float


def is_video(data: bytes) -> bool:
    """Whether ``data`` starts like an MP4/MOV video (not a HEIC/AVIF still)."""
    return len(data) >= 12 and data[4:8] == b"ftyp" and data[8:12] in VIDEO_BRANDS and data[8:12] not in _STILL_BRANDS


def _sharpness(gray: np.ndarray) -> float:
    h, w = gray.shape
    scale = NORMALISED_LONG_SIDE / max(h, w)
    small = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(small, cv2.CV_32F, ksize=3).var())


def sharpest_frames(data: bytes, name: str = "video", limits: VideoLimits | None = None) -> list[Frame]:
    """The sharpest distinct frames of an MP4/MOV video (see the module docstring); raises
    :class:`UnsupportedFormat`, :class:`ImageTooLarge`, :class:`CorruptImage` or :class:`InvalidInput`."""
    lim = limits or VideoLimits()
    if len(data) > lim.max_bytes:
        raise ImageTooLarge(
            f"{name}: the video is {len(data) / 1e6:.1f} MB; at most {lim.max_bytes / 1e6:.0f} MB", bytes=len(data)
        )
    if not is_video(data):
        raise UnsupportedFormat(f"{name}: not an MP4 or MOV video")
    stem = Path(name).stem or "video"
    fd, path = tempfile.mkstemp(suffix=".mp4")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return _read(path, stem, lim)
    finally:
        os.unlink(path)


def _read(path: str, stem: str, lim: VideoLimits) -> list[Frame]:
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            raise CorruptImage(f"{stem}: the video cannot be read")
        fps = cap.get(cv2.CAP_PROP_FPS)
        if not fps or not np.isfinite(fps) or fps <= 0 or fps > 480:
            fps = 30.0
        width, height = cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)
        if width * height > lim.max_megapixels * 1e6:
            raise ImageTooLarge(f"{stem}: frames of {int(width)}x{int(height)} are larger than allowed")
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        if count and count / fps > lim.max_seconds + 0.5:
            raise InvalidInput(f"{stem}: the video lasts {count / fps:.0f} s; at most {lim.max_seconds:.0f} s")
        step = max(1, round(fps / lim.sample_per_second))
        candidates: list[tuple[float, float, int, np.ndarray]] = []  # (sharpness, seconds, phash, bgr)
        index = 0
        while True:
            if index / fps > lim.max_seconds + 0.5:
                raise InvalidInput(f"{stem}: the video lasts more than {lim.max_seconds:.0f} s")
            if index % step:
                if not cap.grab():
                    break
                index += 1
                continue
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            if frame.shape[0] * frame.shape[1] > lim.max_megapixels * 1e6:
                raise ImageTooLarge(f"{stem}: a frame is larger than allowed")
            gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            candidates.append((_sharpness(gray), index / fps, phash(rgb), frame))
            index += 1
    finally:
        cap.release()
    if not candidates:
        raise CorruptImage(f"{stem}: the video holds no frame that can be read")
    kept: list[tuple[float, float, int, np.ndarray]] = []
    for cand in sorted(candidates, key=lambda c: -c[0]):
        if all(hamming(cand[2], k[2]) > lim.min_distance for k in kept):
            kept.append(cand)
        if len(kept) == lim.max_frames:
            break
    out = []
    for sharp, seconds, _h, frame in sorted(kept, key=lambda c: c[1]):
        ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, lim.jpeg_quality])
        if not ok:
            raise CorruptImage(f"{stem}: a frame could not be encoded")
        out.append(Frame(f"{stem}@{seconds:.1f}s.jpg", jpeg.tobytes(), round(seconds, 2), round(sharp, 1)))
    return out
