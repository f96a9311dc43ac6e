"""The semantic pass of ``ledger verify``: every entry parsed strictly (in worker processes when
the machine has more than one core) and every item's hash chain walked in log order.

Split from :mod:`authenticator.ledger.verify`, which streams the chunks and calls these."""

from __future__ import annotations

import base64
import gc
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from authenticator import db
from authenticator.errors import AuthenticatorError
from authenticator.ledger.duplicates import natural_key
from authenticator.ledger.entries import parse_entry

if TYPE_CHECKING:
    from authenticator.ledger.verify import VerifyReport

SemanticResult = list[tuple[str | None, str | None, str | None]]
"""Per entry: ``(prev, error, natural key)``; ``prev`` is the entry's base64 prev when it parsed."""


def check_entries(rows: Sequence[tuple[str, str, bytes]]) -> SemanticResult:
    """Parse each ``(item, type, data)`` strictly and compare with its stored columns."""
    out: SemanticResult = []
    for item, type_, data in rows:
        try:
            entry = parse_entry(data)
        except AuthenticatorError as exc:
            out.append((None, f"entry is not a valid canonical entry: {exc.message}", None))
            continue
        if entry.item != item or entry.type != type_:
            out.append((entry.prev, f"stored columns (item={item!r}, type={type_!r}) do not match the entry", None))
        else:
            out.append((entry.prev, None, natural_key(entry.type, entry.item, entry.body)))
    return out


_worker_engines: dict[str, Any] = {}


def check_range(database_url: str, start: int, end: int) -> SemanticResult:
    """Worker side: read entries ``[start, end)`` over the worker's own connection and check
    them (reading here is cheaper than shipping every entry's bytes through a pipe)."""
    gc.disable()  # a worker process only runs these checks; see verify_ledger
    engine = _worker_engines.get(database_url)
    if engine is None:
        engine = _worker_engines[database_url] = db.create_ledger_engine(database_url)
    ph = "?" if engine.dialect.name == "sqlite" else "%s"
    with db.reader(db.read_engine(engine)) as cur:
        rows = cur.execute(
            f"SELECT item, type, data FROM log_entries WHERE idx >= {ph} AND idx < {ph} ORDER BY idx", (start, end)
        ).fetchall()
    return check_entries(rows)


def done(result: SemanticResult) -> Future[SemanticResult]:
    fut: Future[SemanticResult] = Future()
    fut.set_result(result)
    return fut


@dataclass
class ChainJob:
    start: int
    items: list[str]
    leaves: list[bytes]
    result: Future[SemanticResult]


def walk_chains(
    report: VerifyReport,
    heads: dict[str, str],
    job: ChainJob,
    seen: dict[str, int],
    counts: dict[str, tuple[int, bytes, int]],
) -> None:
    """Walk the item chains through one chunk, in log order (note repeated events, and count
    each item's entries for the item map)."""
    b64 = base64.b64encode
    results = job.result.result()
    for k, (item, (prev, error, key), leaf) in enumerate(zip(job.items, results, job.leaves, strict=True)):
        if key is not None:
            if key in seen:
                kind, _, what = key.partition(":")
                report.warn(
                    job.start + k,
                    f"entry {job.start + k} repeats {kind} of {what} (first at index {seen[key]}); "
                    "the first one counts, this one is ignored",
                )
            else:
                seen[key] = job.start + k
        if error is not None:
            report.add(job.start + k, f"entry {job.start + k}: {error}")
        elif prev != heads.get(item):
            want = heads.get(item)
            report.add(
                job.start + k,
                f"entry {job.start + k}: item {item!r} chain is broken: prev is {prev}, "
                + (f"the item's previous entry has leaf hash {want}" if want else "but it is the item's first entry"),
            )
        heads[item] = b64(leaf).decode("ascii")
        old = counts.get(item)
        counts[item] = (job.start + k, leaf, 1 if old is None else old[2] + 1)
