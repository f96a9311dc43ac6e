"""Photo-reuse lookup micro-benchmark (not a test): the time to check one 4-photo assessment.

Run from the repository root::

    .venv/bin/python bench/photo_index.py                  # SQLite (temp file) and PostgreSQL (temp schema)
    .venv/bin/python bench/photo_index.py --only sqlite --photos 20000

The index is filled with ``--photos`` random 64-bit hashes (bulk insert, same rows and bands as
``SqlPhotoReuseIndex.add``); a quarter of the probes are near copies of an indexed photo (a few bits
flipped), the rest unseen. Each round checks 4 probes the way an assessment does, through
``SqlPhotoReuseIndex.lookup_many`` when the index has it and ``lookup`` per photo otherwise, and
reports the median and the best time per round (the machine is shared: the best is the steadier
figure) and the matches found, so runs before and after a change can be compared.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine, insert

from authenticator.db import create_ledger_engine
from authenticator.store.migrate import migrate
from authenticator.store.photo_index import SqlPhotoReuseIndex, _bands, _to_signed
from authenticator.store.tables import photo_hashes
from tests.pg_scratch import create_scratch_schema, drop_scratch_schema


def fill(engine: Engine, hashes: list[int]) -> None:
    rows = []
    for n, h in enumerate(hashes):
        b = _bands(h)
        rows.append(
            {
                "item_id": f"itm_{n // 4:06d}",
                "photo_sha256": f"{n:064x}",
                "phash": _to_signed(h),
                "band0": b[0],
                "band1": b[1],
                "band2": b[2],
                "band3": b[3],
            }
        )
    with engine.begin() as conn:
        for i in range(0, len(rows), 5000):
            conn.execute(insert(photo_hashes), rows[i : i + 5000])
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE app_photo_hashes")
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")


def probes(rng: random.Random, hashes: list[int], rounds: int) -> list[list[int]]:
    out = []
    for _ in range(rounds):
        four = []
        for k in range(4):
            if k == 0:  # one near copy of an indexed photo per assessment
                h = rng.choice(hashes)
                for bit in rng.sample(range(64), rng.randint(0, 6)):
                    h ^= 1 << bit
            else:
                h = rng.getrandbits(64)
            four.append(h)
        out.append(four)
    return out


def run(engine: Engine, n_photos: int, rounds: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    hashes = [rng.getrandbits(64) for _ in range(n_photos)]
    migrate(engine)
    fill(engine, hashes)
    index = SqlPhotoReuseIndex(engine)
    batches = probes(rng, hashes, rounds)
    many = getattr(index, "lookup_many", None)

    def check(four: list[int]) -> int:
        if many is not None:
            return sum(len(m) for m in many(four, "itm_none"))
        return sum(len(index.lookup(h, exclude_item="itm_none")) for h in four)

    for four in batches[:20]:  # warm: connections, statement caches, pages
        check(four)
    times, found = [], 0
    for four in batches:
        t0 = time.perf_counter()
        found += check(four)
        times.append(time.perf_counter() - t0)
    return {
        "median_ms": statistics.median(times) * 1e3,
        "best_ms": min(times) * 1e3,
        "p90_ms": statistics.quantiles(times, n=10)[-1] * 1e3,
        "matches": found,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["sqlite", "postgres"])
    ap.add_argument("--photos", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args()
    impl = "lookup_many" if hasattr(SqlPhotoReuseIndex, "lookup_many") else "lookup x4"
    print(f"photo-reuse check of 4 photos ({impl}), index of {args.photos} photos, {args.rounds} rounds")
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory() as tmp:
            engine = create_ledger_engine(f"sqlite:///{tmp}/idx.db")
            r = run(engine, args.photos, args.rounds, args.seed)
            engine.dispose()
        print(
            f"  sqlite:   median {r['median_ms']:.3f} ms  best {r['best_ms']:.3f} ms  p90 {r['p90_ms']:.3f} ms  "
            f"matches {r['matches']}"
        )
    if args.only in (None, "postgres"):
        schema, url = create_scratch_schema("b_phash")
        try:
            engine = create_ledger_engine(url)
            r = run(engine, args.photos, args.rounds, args.seed)
            engine.dispose()
        finally:
            drop_scratch_schema(schema)
        print(
            f"  postgres: median {r['median_ms']:.3f} ms  best {r['best_ms']:.3f} ms  p90 {r['p90_ms']:.3f} ms  "
            f"matches {r['matches']}"
        )


if __name__ == "__main__":
    main()
