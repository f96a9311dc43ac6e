"""The photo-reuse lookup (one raw statement for a whole photo set) finds exactly what the
SQLAlchemy query it replaced found, on a populated index, on SQLite and PostgreSQL; and the band
indexes are what the database probes."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, bindparam, insert, or_, select

from authenticator.db import create_ledger_engine
from authenticator.store.migrate import migrate
from authenticator.store.photo_index import (
    _MASK64,
    _PG_LOOKUP,
    _PG_LOOKUP_OTHER_PLATFORMS,
    SqlPhotoReuseIndex,
    _band_neighbours,
    _bands,
    _sqlite_lookup,
    _to_signed,
)
from authenticator.store.tables import items, photo_hashes
from authenticator.vision.phash import ReuseMatch
from tests.pg_scratch import create_scratch_schema, drop_scratch_schema

# The query before (SQLAlchemy Core, 4 x 137 expanding parameters, one photo a statement): the reference.
_OLD_LOOKUP = select(photo_hashes.c.item_id, photo_hashes.c.photo_sha256, photo_hashes.c.phash).where(
    or_(*(photo_hashes.c[f"band{i}"].in_(bindparam(f"band{i}", expanding=True)) for i in range(4))),
    photo_hashes.c.item_id != bindparam("exclude"),
)


def _old_lookup(engine: Engine, phash: int, exclude_item: str | None, max_distance: int = 8) -> list[ReuseMatch]:
    phash &= _MASK64
    b = _bands(phash)
    params: dict[str, object] = {f"band{i}": _band_neighbours(b[i], max_distance // 4) for i in range(4)}
    params["exclude"] = exclude_item if exclude_item is not None else ""
    with engine.connect() as conn:
        rows = conn.execute(_OLD_LOOKUP, params).all()
    out = []
    for row in rows:
        distance = ((int(row.phash) & _MASK64) ^ phash).bit_count()
        if distance <= max_distance:
            out.append(ReuseMatch(item_id=row.item_id, photo_sha256=row.photo_sha256, distance=distance))
    out.sort(key=lambda m: (m.distance, m.item_id, m.photo_sha256))
    return out


def _platform(item_id: str) -> str | None:
    """The platform of an indexed item of the fixture (None: no item row, e.g. erased since)."""
    n = int(item_id[4:])
    return None if n % 7 == 0 else f"plat_{n % 3}"


def _item_row(n: int) -> dict[str, object]:
    item_id = f"itm_{n:04d}"
    return {
        "id": item_id,
        "platform": _platform(item_id),
        "category": "sneaker",
        "brand": "Nike",
        "model": "Air Jordan 1",
        "registered_index": n,
        "registered_at": "2026-11-27T00:00:00Z",
    }


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def populated(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, list[int]]]:
    """An index of 3,000 photos: random hashes and near copies of some (a few bits flipped, the
    top bit set on some: PostgreSQL stores them as signed BIGINTs), several photos an item."""
    rng = random.Random(5)
    hashes = [rng.getrandbits(64) for _ in range(2000)]
    hashes += [h ^ sum(1 << b for b in rng.sample(range(64), rng.randint(1, 10))) for h in rng.sample(hashes, 1000)]
    rows = [
        {"item_id": f"itm_{n % 700:04d}", "photo_sha256": f"{n:064x}", "phash": _to_signed(h)}
        | {f"band{i}": b for i, b in enumerate(_bands(h))}
        for n, h in enumerate(hashes)
    ]
    if request.param == "sqlite":
        engine = create_ledger_engine(f"sqlite:///{tmp_path_factory.mktemp('idx') / 'idx.db'}")
        schema = None
    else:
        schema, url = create_scratch_schema("t_phash")
        engine = create_ledger_engine(url)
    try:
        migrate(engine)
        with engine.begin() as conn:
            conn.execute(insert(photo_hashes), rows)
            conn.execute(insert(items), [_item_row(n) for n in range(700) if n % 7])  # every 7th: no row
        yield engine, hashes
    finally:
        engine.dispose()
        if schema is not None:
            drop_scratch_schema(schema)


def test_new_lookup_finds_exactly_what_the_old_query_found(populated: tuple[Engine, list[int]]) -> None:
    engine, hashes = populated
    rng = random.Random(9)
    index = SqlPhotoReuseIndex(engine)
    probes = [h ^ sum(1 << b for b in rng.sample(range(64), rng.randint(0, 12))) for h in rng.sample(hashes, 120)]
    probes += [rng.getrandbits(64) for _ in range(20)] + [(1 << 63) | 7, (1 << 64) - 1, 0]
    total = 0
    for start in range(0, len(probes), 4):  # as an assessment asks: 4 photos a call
        four = probes[start : start + 4]
        exclude = rng.choice([None, "itm_0003", f"itm_{rng.randrange(700):04d}"])
        expected = [_old_lookup(engine, h, exclude) for h in four]
        assert index.lookup_many(four, exclude) == expected
        assert [index.lookup(h, exclude) for h in four] == expected
        total += sum(len(m) for m in expected)
    assert total > 80  # the probes do find photos (near copies of indexed ones)
    assert index.lookup_many([], None) == []


def test_a_platform_lookup_leaves_out_that_platforms_items(populated: tuple[Engine, list[int]]) -> None:
    """What the service asks (``exclude_platform``): the same matches less those on the asking
    platform's own items, decided in the statement; items without a row still count."""
    engine, hashes = populated
    rng = random.Random(11)
    index = SqlPhotoReuseIndex(engine)
    probes = [h ^ sum(1 << b for b in rng.sample(range(64), rng.randint(0, 6))) for h in rng.sample(hashes, 160)]
    dropped = kept = 0
    for start in range(0, len(probes), 4):
        four = probes[start : start + 4]
        exclude, platform = rng.choice([None, "itm_0003"]), f"plat_{rng.randrange(3)}"
        everything = index.lookup_many(four, exclude)
        expected = [[m for m in found if _platform(m.item_id) != platform] for found in everything]
        assert index.lookup_many(four, exclude, exclude_platform=platform) == expected
        dropped += sum(len(a) - len(b) for a, b in zip(everything, expected, strict=True))
        kept += sum(1 for found in expected for m in found if _platform(m.item_id) is None)
    assert dropped > 20 and kept > 0  # both kinds happened


def test_lookup_probes_the_band_indexes(populated: tuple[Engine, list[int]]) -> None:
    engine, hashes = populated
    four = hashes[:4]
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        cur = raw.cursor()
        if engine.dialect.name == "sqlite":
            params: list[object] = [v for i in range(4) for h in four for v in _band_neighbours(_bands(h)[i], 2)]
            for extra in ([], ["plat_1"]):  # without and with the platform's own items left out
                cur.execute("EXPLAIN QUERY PLAN " + _sqlite_lookup(4 * 137, bool(extra)), [*params, "", *extra])
                plan = " | ".join(str(r[-1]) for r in cur.fetchall())
                assert "MULTI-INDEX OR" in plan, plan
                for i in range(4):
                    assert f"ix_app_photo_hashes_band{i}" in plan, plan
            return
        from authenticator.db import Int4Array

        arrays = [Int4Array.of(sorted({v for h in four for v in _band_neighbours(_bands(h)[i], 2)})) for i in range(4)]
        # A 3,000-row table is cheaper to scan: ask the plan the indexes give (a large index uses them).
        cur.execute("SET enable_seqscan = off")
        for statement, extra in ((_PG_LOOKUP, []), (_PG_LOOKUP_OTHER_PLATFORMS, ["plat_1"])):
            cur.execute("EXPLAIN " + statement, [*arrays, "", *extra])
            plan = " | ".join(r[0] for r in cur.fetchall())
            assert "BitmapOr" in plan, plan
            for i in range(4):
                assert f"ix_app_photo_hashes_band{i}" in plan, plan
        cur.execute("RESET enable_seqscan")
