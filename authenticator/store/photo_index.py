"""SQL-backed photo-reuse index: finds photos within a small Hamming distance of a pHash.

A 64-bit perceptual hash is split into four 16-bit bands, each an indexed column. This is
multi-index hashing (Norouzi et al.): two hashes within distance ``d`` have at least one band
within distance ``d // 4`` of the query's (pigeonhole), so probing each band column with every
16-bit value that close finds every candidate (for the default ``d = 8``: 137 values a band),
and the exact distance is checked in Python. Implements the vision runtime's ``PhotoReuseIndex``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import cache
from itertools import combinations

from sqlalchemy import Connection, Engine, delete, insert, select

from authenticator.db import Int4Array, read_engine, reader, write_tx
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


# The lookup skips SQLAlchemy Core: building and compiling a statement with 4 x 137 expanding
# parameters cost ~1.6 ms of Python per photo. The SQL text is fixed (built once), the band values
# travel as bound parameters, and one statement checks every photo of an assessment.
# PostgreSQL: four binary int4 arrays (``= ANY``), each a bitmap index scan when the planner
# finds the band indexes cheaper than a scan (EXPLAIN in tests/api/test_photo_index_query.py).
_PG_LOOKUP = (
    "SELECT item_id, photo_sha256, phash FROM app_photo_hashes WHERE ("
    + " OR ".join(f"band{i} = ANY(%s)" for i in range(_BANDS))
    + ") AND item_id <> %s"
)
# A platform's own items are not reuse (see ``services.assessments``): left out in the statement,
# so a photo a platform sent for many of its items costs a primary-key probe a row, not a row to
# Python and an ownership query (measured: the same 4 photos for 300 items of one platform took
# 6.5% of the server's CPU in bench/serving.py).
_OTHER_PLATFORMS = (
    " AND NOT EXISTS (SELECT 1 FROM proj_items i WHERE i.id = app_photo_hashes.item_id AND i.platform = {})"
)
# PostgreSQL: the band probes first, materialised, then the anti-join on those few rows (left to
# itself on a small table the planner may walk the primary key and test every row's bands).
_PG_LOOKUP_OTHER_PLATFORMS = (
    f"WITH c AS MATERIALIZED ({_PG_LOOKUP}) SELECT item_id, photo_sha256, phash FROM c AS app_photo_hashes WHERE TRUE"
    + _OTHER_PLATFORMS.format("%s")
)
# SQLite: one ``IN`` list a band, of a fixed length for a given number of photos (duplicates
# kept), so the driver's statement cache compiles each shape once; SQLite probes each band index
# ("MULTI-INDEX OR"). Versions before 3.32 allow only 999 parameters a statement.
_SQLITE_MAX_PARAMS = 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999


@cache
def _sqlite_lookup(per_band: int, other_platforms: bool = False) -> str:
    marks = ",".join("?" * per_band)
    return (
        "SELECT item_id, photo_sha256, phash FROM app_photo_hashes WHERE ("
        + " OR ".join(f"band{i} IN ({marks})" for i in range(_BANDS))
        + ") AND item_id <> ?"
        + (_OTHER_PLATFORMS.format("?") if other_platforms else "")
    )


class SqlPhotoReuseIndex:
    """Band-indexed pHash table shared by every server process (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine, max_distance: int = DEFAULT_MAX_DISTANCE) -> None:
        self.engine = engine
        self.max_distance = max_distance
        self._reads = read_engine(engine)
        self._postgres = engine.dialect.name == "postgresql"

    def lookup(self, phash: int, exclude_item: str | None = None) -> list[ReuseMatch]:
        """Every indexed photo within ``max_distance`` of ``phash``, closest first."""
        return self.lookup_many([phash], exclude_item)[0]

    def lookup_many(
        self, phashes: Sequence[int], exclude_item: str | None = None, exclude_platform: str | None = None
    ) -> list[list[ReuseMatch]]:
        """:meth:`lookup` of each hash (in order), in one statement: what a photo set costs.
        ``exclude_platform``: leave out the photos of that platform's items too."""
        queries = [h & _MASK64 for h in phashes]
        if not queries:
            return []
        radius = self.max_distance // _BANDS
        exclude = exclude_item if exclude_item is not None else ""
        rows: list[tuple[str, str, int]] = []
        with reader(self._reads) as cur:
            if self._postgres:
                probes = [{v for q in queries for v in _band_neighbours(_bands(q)[i], radius)} for i in range(_BANDS)]
                arrays = [Int4Array.of(sorted(p)) for p in probes]
                if exclude_platform is None:
                    cur.execute(_PG_LOOKUP, [*arrays, exclude])
                else:
                    cur.execute(_PG_LOOKUP_OTHER_PLATFORMS, [*arrays, exclude, exclude_platform])
                rows = cur.fetchall()
            else:
                per_photo = len(_flip_masks(radius))
                step = max(1, (_SQLITE_MAX_PARAMS - 2) // (_BANDS * per_photo))
                seen: set[tuple[str, str]] = set()
                for start in range(0, len(queries), step):
                    group = [_bands(q) for q in queries[start : start + step]]
                    params: list[object] = [
                        v for i in range(_BANDS) for b in group for v in _band_neighbours(b[i], radius)
                    ]
                    params.append(exclude)
                    if exclude_platform is not None:
                        params.append(exclude_platform)
                    statement = _sqlite_lookup(per_photo * len(group), exclude_platform is not None)
                    for row in cur.execute(statement, params).fetchall():
                        if (row[0], row[1]) not in seen:
                            seen.add((row[0], row[1]))
                            rows.append(row)
        out: list[list[ReuseMatch]] = [[] for _ in queries]
        for item_id, photo_sha256, stored in rows:
            h = int(stored) & _MASK64
            for j, q in enumerate(queries):
                distance = (h ^ q).bit_count()
                if distance <= self.max_distance:
                    out[j].append(ReuseMatch(item_id=item_id, photo_sha256=photo_sha256, distance=distance))
        for matches in out:
            matches.sort(key=lambda m: (m.distance, m.item_id, m.photo_sha256))
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
