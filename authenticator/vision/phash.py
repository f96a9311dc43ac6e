"""Perceptual hashing (DCT pHash) and the photo-reuse index.

A scam listing usually borrows photos of a genuine item. The 64-bit DCT hash survives
re-encoding, resizing and mild edits, so a small Hamming distance to a photo already submitted
for *another* item flags the photo. Storage is behind :class:`PhotoReuseIndex`; this module
ships an in-memory implementation, the API stores hashes in its database.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np


def phash(rgb: np.ndarray) -> int:
    """64-bit DCT perceptual hash (Zauner 2010 / pHash.org): 32x32 luma, DCT, 8x8 low band vs median."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    small = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].reshape(-1)
    # The DC term carries brightness only; leave it out of the median so it cannot skew the bits.
    med = np.median(low[1:])
    bits = low > med
    value = 0
    for b in bits:
        value = (value << 1) | int(b)
    return value


def phash_hex(value: int) -> str:
    """The hash as 16 lowercase hex digits (the form stored and shown)."""
    return f"{value:016x}"


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two hashes."""
    return (a ^ b).bit_count()


MAX_REUSE_MATCHES = 20
"""The most matches an assessment lists for one photo (the closest). A stock photo that thousands
of listings share would otherwise make every response that names it thousands of entries long;
one match is enough to flag the photo, a few show how widely it is used."""


@dataclass(frozen=True)
class ReuseMatch:
    """A photo of another item whose hash is within the threshold."""

    item_id: str
    photo_sha256: str
    distance: int


class PhotoReuseIndex(Protocol):
    """Where photo hashes are remembered. Implementations must be safe to call from threads."""

    def lookup(self, phash: int, exclude_item: str | None) -> list[ReuseMatch]:
        """Photos of items other than ``exclude_item`` within the index's Hamming threshold."""
        ...

    def lookup_many(self, phashes: Sequence[int], exclude_item: str | None) -> list[list[ReuseMatch]]:
        """:meth:`lookup` of each hash, in order (a SQL index answers a photo set in one query)."""
        ...

    def add(self, phash: int, item_id: str, photo_sha256: str) -> None:
        """Remember a photo of ``item_id``."""
        ...


class InMemoryPhotoReuseIndex:
    """Linear scan over a list: fine for tests, the CLI and a few hundred thousand photos."""

    def __init__(self, max_distance: int = 8) -> None:
        self.max_distance = max_distance
        self._entries: list[tuple[int, str, str]] = []
        self._lock = threading.Lock()

    def lookup(self, phash: int, exclude_item: str | None) -> list[ReuseMatch]:
        with self._lock:
            entries = list(self._entries)
        matches = [
            ReuseMatch(item_id=item, photo_sha256=sha, distance=d)
            for h, item, sha in entries
            if item != exclude_item and (d := hamming(h, phash)) <= self.max_distance
        ]
        return sorted(matches, key=lambda m: (m.distance, m.item_id))

    def lookup_many(self, phashes: Sequence[int], exclude_item: str | None) -> list[list[ReuseMatch]]:
        return [self.lookup(h, exclude_item) for h in phashes]

    def add(self, phash: int, item_id: str, photo_sha256: str) -> None:
        with self._lock:
            if any(h == phash and item == item_id and sha == photo_sha256 for h, item, sha in self._entries):
                return
            self._entries.append((phash, item_id, photo_sha256))

    def __len__(self) -> int:
        return len(self._entries)
