"""SQL-backed photo-reuse index: finds photos within a small Hamming distance of a pHash.

A 64-bit perceptual hash is split into four 16-bit bands, each an indexed column. This is
multi-index hashing (Norouzi et al.): two hashes within distance ``d`` have at least one band
within distance ``d // 4`` of the query's (pigeonhole), so probing each band column with every
16-bit value that close finds every candidate (for the default ``d = 8``: 137 values a band),
and the exact distance is checked in Python. Implements the vision runtime's ``PhotoReuseIndex``.
"""

from __future__ import annotations

from functools import cache
from itertools import combinations

from sqlalchemy import Connection, Engine, bindparam, delete, insert, or_, select

from authenticator.db import read_tx, write_tx
from authenticator.store.tables import photo_hashes
from authenticator.vision.phash import ReuseMatch

DEFAULT_MAX_DISTANCE = 8
_MASK64 = (1 << 64) - 1
_BANDS = 4
_BAND_BITS = 16


@cache
def _flip_masks(radius: int) -> tuple[int, ...]:
    """Every 16-bit mask with at most ``radius`` bits set."""
    return tuple(sum(1 << b for b in bits) for r in range(radius + 1) for bits in combinations(range(_BAND_BITS), r))


def _band_neighbours(value: int, radius: int) -> list[int]:
    return [value ^ m for m in _flip_masks(radius)]


def _bands(phash: int) -> list[int]:
    return [(phash >> (_BAND_BITS * i)) & 0xFFFF for i in range(_BANDS)]


def _to_signed(phash: int) -> int:
    """PostgreSQL's BIGINT is signed: store the unsigned 64-bit hash in two's complement."""
    phash &= _MASK64
    return phash - (1 << 64) if phash >= 1 << 63 else phash


# One statement, compiled once: the 4 x 137 band values travel as expanding parameters (building
# them as literals cost ~1 ms of SQLAlchemy coercion per lookup, 4 lookups per assessment).
_LOOKUP = select(photo_hashes.c.item_id, photo_hashes.c.photo_sha256, photo_hashes.c.phash).where(
    or_(*(photo_hashes.c[f"band{i}"].in_(bindparam(f"band{i}", expanding=True)) for i in range(_BANDS))),
    photo_hashes.c.item_id != bindparam("exclude"),
)


class SqlPhotoReuseIndex:
    """Band-indexed pHash table shared by every server process (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine, max_distance: int = DEFAULT_MAX_DISTANCE) -> None:
        self.engine = engine
        self.max_distance = max_distance

    def lookup(self, phash: int, exclude_item: str | None = None) -> list[ReuseMatch]:
        """Every indexed photo within ``max_distance`` of ``phash``, closest first."""
        phash &= _MASK64
        b = _bands(phash)
        radius = self.max_distance // _BANDS
        params: dict[str, object] = {f"band{i}": _band_neighbours(b[i], radius) for i in range(_BANDS)}
        params["exclude"] = exclude_item if exclude_item is not None else ""
        with read_tx(self.engine) as conn:
            rows = conn.execute(_LOOKUP, params).all()
        out = []
        for row in rows:
            distance = ((int(row.phash) & _MASK64) ^ phash).bit_count()
            if distance <= self.max_distance:
                out.append(ReuseMatch(item_id=row.item_id, photo_sha256=row.photo_sha256, distance=distance))
        out.sort(key=lambda m: (m.distance, m.item_id, m.photo_sha256))
        return out

    def add(self, phash: int, item_id: str, photo_sha256: str) -> None:
        """Index a photo of an item (idempotent)."""
        with write_tx(self.engine) as conn:
            self.add_in(conn, phash, item_id, photo_sha256)

    @staticmethod
    def add_in(conn: Connection, phash: int, item_id: str, photo_sha256: str) -> None:
        """:meth:`add` on ``conn`` (in the transaction that records the assessment)."""
        phash &= _MASK64
        b = _bands(phash)
        exists = conn.execute(
            select(photo_hashes.c.item_id).where(
                photo_hashes.c.item_id == item_id, photo_hashes.c.photo_sha256 == photo_sha256
            )
        ).first()
        if exists is None:
            conn.execute(
                insert(photo_hashes).values(
                    item_id=item_id,
                    photo_sha256=photo_sha256,
                    phash=_to_signed(phash),
                    band0=b[0],
                    band1=b[1],
                    band2=b[2],
                    band3=b[3],
                )
            )

    @staticmethod
    def remove_in(conn: Connection, item_id: str, photo_sha256: str) -> None:
        """Forget a photo of an item (erased), on ``conn``: it is no longer found as reused."""
        conn.execute(
            delete(photo_hashes).where(photo_hashes.c.item_id == item_id, photo_hashes.c.photo_sha256 == photo_sha256)
        )
