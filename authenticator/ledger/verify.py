"""Recompute everything the log commits to and report the first thing that does not match.

The structural pass (always) streams the entries in aligned chunks, recomputes every leaf
hash from the stored bytes and checks every stored perfect-subtree hash against the hash of
its two stored children, level by level, comparing whole lists at once (so every stored node
is the true hash of the entries below it, and one bad row is reported once, at its own
index); then it checks every stored checkpoint's signature, size and root.

The semantic pass (optional) re-parses every entry strictly (RFC 8785 canonical form, its
type's schema, the ``item``/``type`` columns) and walks every item's hash chain: each
entry's ``prev`` must be the leaf hash of the item's previous entry, and an item's first
entry has none. Parsing is the expensive part, so it is spread over worker processes when
the machine has more than one core (:mod:`authenticator.ledger.verify_semantic`).

Problems are reported by leaf index; a checkpoint's problem is placed at its last leaf.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import multiprocessing
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from authenticator import db
from authenticator.ledger.entries import ITEM_MAP_ITEM
from authenticator.ledger.item_map import MAP_EXTENSION_PREFIX, Head, ItemMap, map_extension
from authenticator.ledger.verify_checkpoints import CheckpointChecks
from authenticator.ledger.verify_semantic import ChainJob, check_entries, check_range, done, walk_chains

if TYPE_CHECKING:
    from authenticator.ledger.log import Ledger

CHUNK_LEVEL = 14
CHUNK = 1 << CHUNK_LEVEL
"""Leaves per streamed chunk; aligned so every perfect node below this level is in one chunk."""
MAX_PROBLEMS = 100


@dataclass(frozen=True, order=True)
class Problem:
    """One mismatch; ``index`` is the first leaf it concerns."""

    index: int
    reason: str


@dataclass
class VerifyReport:
    """What :func:`verify_ledger` checked and the problems it found (sorted by index)."""

    size: int = 0
    semantic: bool = True
    entries_checked: int = 0
    nodes_checked: int = 0
    checkpoints_checked: int = 0
    items_checked: int = 0
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    """Not a broken log, but worth an operator's look: repeated events (the first one counts)."""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> Problem | None:
        return min(self.problems) if self.problems else None

    @property
    def first_bad_index(self) -> int | None:
        first = self.first_problem
        return None if first is None else first.index

    def add(self, index: int, reason: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(index, reason))

    def warn(self, index: int, reason: str) -> None:
        if len(self.warnings) < MAX_PROBLEMS:
            self.warnings.append(Problem(index, reason))

    def to_dict(self) -> dict[str, Any]:
        first = self.first_problem
        return {
            "ok": self.ok,
            "size": self.size,
            "semantic": self.semantic,
            "entries_checked": self.entries_checked,
            "nodes_checked": self.nodes_checked,
            "checkpoints_checked": self.checkpoints_checked,
            "items_checked": self.items_checked,
            "seconds": round(self.seconds, 3),
            "entries_per_second": round(self.entries_checked / self.seconds) if self.seconds > 0 else None,
            "first_bad_index": None if first is None else first.index,
            "first_problem": None if first is None else first.reason,
            "problems": [{"index": p.index, "reason": p.reason} for p in sorted(self.problems)],
            "warnings": [{"index": p.index, "reason": p.reason} for p in sorted(self.warnings)],
        }


# --- The structural pass ----------------------------------------------------------------------


def _pair_up(hashes: Sequence[bytes]) -> list[bytes]:
    sha256 = hashlib.sha256
    it = iter(hashes)
    return [sha256(b"\x01" + a + b).digest() for a, b in zip(it, it, strict=False)]


class _Checker:
    """Checks each stored node against the hash of its *stored* children, so a mismatch is
    local: one bad row is reported once, at the first leaf it covers, and never blamed on
    an ancestor (a problem inside a node's range explains that node's mismatch)."""

    def __init__(self, ledger: Ledger, cur: Any, report: VerifyReport) -> None:
        self.cur = cur
        self.report = report
        ph = ledger._ops.placeholder()
        self.ph = ph
        self.q_entries = (
            f"SELECT idx, leaf_hash, data, item, type FROM log_entries WHERE idx >= {ph} AND idx < {ph} ORDER BY idx"
        )
        self.q_nodes = f"SELECT idx, hash FROM log_nodes WHERE level = {ph} AND idx >= {ph} AND idx < {ph} ORDER BY idx"
        self.q_leaves = f"SELECT idx, leaf_hash FROM log_entries WHERE idx >= {ph} AND idx < {ph} ORDER BY idx"
        # What the hot path reads: a range's hashes packed into one value by the database (``level``
        # reads the rows with their indexes only when the packed hashes differ from the computed
        # ones), so a million stored hashes cost a few hundred values, not a million rows.
        dialect = ledger.engine.dialect.name
        in_range = f"idx >= {ph} AND idx < {ph}"
        self.q_packed_nodes = packed_hashes(dialect, "hash", "log_nodes", f"level = {ph} AND {in_range}")
        self.q_packed_leaves = packed_hashes(dialect, "leaf_hash", "log_entries", in_range)
        self.q_max = f"SELECT max(idx) FROM log_nodes WHERE level = {ph}"
        self.q_indexes = f"SELECT idx FROM log_entries WHERE idx >= {ph} AND idx < {ph}"

    def add_range(self, lo: int, hi: int, reason: str) -> None:
        if not any(lo <= p.index < hi for p in self.report.problems):
            self.report.add(lo, reason)

    def leaves(self, start: int, computed: list[bytes], packed: bytes | None) -> list[bytes]:
        """Check the stored leaf hashes of entries ``start, start+1, ...`` against ``computed``
        (their data's hashes); return the stored ones (computed ones standing in for missing rows).
        ``packed``: the stored leaf hashes as ``q_packed_leaves`` reads them."""
        if packed is not None and bytes(packed) == b"".join(computed):
            return computed
        got = {int(i): bytes(h) for i, h in self.cur.execute(self.q_leaves, (start, start + len(computed))).fetchall()}
        out = []
        for k, want in enumerate(computed):
            have = got.get(start + k)
            if have != want:
                self.report.add(start + k, f"entry {start + k}: its data does not hash to its stored leaf hash")
            out.append(want if have is None else have)
        return out

    def level(self, level: int, first: int, children: Sequence[bytes], packed: bytes | None = None) -> list[bytes]:
        """Check stored nodes ``first, first+1, ...`` of ``level``; return them (computed ones
        standing in for missing rows) so the next level is checked against what is stored.
        ``packed``: those nodes' hashes as ``q_packed_nodes`` reads them."""
        computed = _pair_up(children)
        if not computed:
            return computed
        self.report.nodes_checked += len(computed)
        if packed is not None and bytes(packed) == b"".join(computed):
            return computed  # every node present, in order, and right: equal bytes, so the stored ones
        rows = self.cur.execute(self.q_nodes, (level, first, first + len(computed))).fetchall()
        stored = [r[1] for r in rows]
        if stored == computed:
            return stored
        got = {int(i): bytes(h) for i, h in rows}
        out = []
        for k, want in enumerate(computed):
            node = first + k
            have = got.get(node)
            if have != want:
                state = "missing" if have is None else "not the hash of its children"
                self.add_range(
                    node << level, (node + 1) << level, f"stored subtree hash (level {level}, index {node}) is {state}"
                )
            out.append(want if have is None else have)
        return out


def verify_ledger(
    ledger: Ledger, *, semantic: bool = True, workers: int | None = None, verifier_key: str | None = None
) -> VerifyReport:
    """Check the whole log; ``report.ok`` when sound, else see ``report.first_problem``.

    ``workers``: processes for the semantic pass (default: the CPU count; none for small logs).
    ``verifier_key``: check checkpoints with this published key instead of the ledger's own.
    """
    # The pass allocates millions of short-lived bytes and tuples and no reference cycles;
    # the cyclic collector would rescan them over and over (about 40% of the run time).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _verify(ledger, semantic, workers, verifier_key)
    finally:
        if gc_was_enabled:
            gc.enable()


def _verify(ledger: Ledger, semantic: bool, workers: int | None, verifier_key: str | None) -> VerifyReport:
    started = time.perf_counter()
    report = VerifyReport(semantic=semantic)
    sha256 = hashlib.sha256
    n_workers = workers if workers is not None else (os.cpu_count() or 1)
    url = ledger.engine.url.render_as_string(hide_password=False)
    with db.reader(db.read_engine(ledger.engine)) as cur:
        size = ledger._ops.size(cur)
        report.size = size
        check = _Checker(ledger, cur, report)
        pool: ProcessPoolExecutor | None = None
        if semantic and n_workers > 1 and size > 2 * CHUNK and ledger.engine.url.database != ":memory:":
            # fork works from any script (no __main__ guard needed); workers exit with os._exit
            # and never touch the connections they inherit: each opens its own.
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
            pool = ProcessPoolExecutor(max_workers=n_workers, mp_context=multiprocessing.get_context(method))
            # Fork every worker now, before the prefetch thread exists: a child forked while
            # another thread holds a driver's internal lock could hang on it.
            pool.submit(int).result()
        # after the fork: the signatures are checked on a thread of its own while the pass runs
        checkpoints = CheckpointChecks(ledger, cur, verifier_key)
        # Fetch only what this run checks: items for the chains, types for in-process parsing.
        # No idx: the rows of a range of the primary key are all there when their count is right.
        columns = "data" + (", item" if semantic else "") + (", type" if semantic and not pool else "")
        q_entries = check.q_entries.replace("idx, leaf_hash, data, item, type", columns)
        pending: list[ChainJob] = []
        heads: dict[str, str] = {}
        seen: dict[str, int] = {}
        counts: dict[str, tuple[int, bytes, int]] = {}
        tops: list[bytes] = []
        complete = True
        try:
            for start, end, rows, packed in _prefetched(
                ledger, q_entries, check.q_packed_leaves, check.q_packed_nodes, size
            ):
                if not rows:
                    report.add(start, f"entry {start} is missing (a gap in the log)")
                    complete = False
                    break
                # idx is the primary key, so the rows of [start, end) are all there iff they are
                # end - start; only a short chunk has its indexes read, to name the gap.
                if len(rows) != end - start:
                    present = {int(i) for (i,) in check.cur.execute(check.q_indexes, (start, end)).fetchall()}
                    missing = next(i for i in range(start, end) if i not in present)
                    report.add(missing, f"entry {missing} is missing (a gap in the log)")
                    complete = False
                    break
                cols = [list(col) for col in zip(*rows, strict=True)] if semantic else [[d for (d,) in rows]]
                datas = cols[0]
                leaves = [sha256(b"\x00" + d).digest() for d in datas]
                report.entries_checked += len(rows)
                level_hashes = check.leaves(start, leaves, packed[0])
                for level in range(1, CHUNK_LEVEL + 1):
                    level_hashes = check.level(level, start >> level, level_hashes, packed[level])
                if end - start == CHUNK:
                    tops.extend(level_hashes)
                if semantic:
                    result = (
                        pool.submit(check_range, url, start, end)
                        if pool is not None
                        else done(check_entries(list(zip(cols[1], cols[2], datas, strict=True))))
                    )
                    pending.append(ChainJob(start, cols[1], leaves, result))
                    while len(pending) > 2 * n_workers or (pending and pending[0].result.done()):
                        walk_chains(report, heads, pending.pop(0), seen, counts)
            for job in pending:
                walk_chains(report, heads, job, seen, counts)
            report.items_checked = len(heads)
            if complete:
                level = CHUNK_LEVEL
                while len(tops) > 1:
                    level += 1
                    tops = check.level(level, 0, tops)
                _check_no_extra_nodes(check, size)
                checkpoints.finish(cur, report, size)
                if semantic:
                    _check_item_map(cur, report, size, counts)
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
            checkpoints.close()  # after a gap or an error: stops checking signatures nobody will read
    report.seconds = time.perf_counter() - started
    return report


#: Read-ahead threads per database (0: read in the caller's thread). Measured on a 400,000-entry
#: log, hash-only verify: on PostgreSQL one reader could not keep the hashing fed (358k -> 395k
#: entries/s with two). On SQLite reading is CPU work in this process under the GIL (only the
#: page walk releases it): a second reader only competed with the hashing (419k -> 332k), and
#: on a 300,000-entry log none beat one (450-485k against 398-450k entries/s, alternating runs).
PREFETCH_READERS = {"postgresql": 2, "sqlite": 0}


def _prefetched(
    ledger: Ledger, query: str, q_leaves: str, q_nodes: str, size: int, readers: int | None = None
) -> Iterator[tuple[int, int, list[Any], list[bytes | None]]]:
    """Every chunk's entry rows, its stored leaf hashes and its stored subtree hashes (levels
    1..CHUNK_LEVEL; packed, see :func:`packed_hashes`), in order.
    The next ``readers`` chunks are read ahead by as many threads, each on its own connection,
    while the caller checks this one (the driver waits for the database without the GIL); with
    ``readers`` 0 the caller's thread reads each chunk when it needs it."""
    ranges = [(start, min(start + CHUNK, size)) for start in range(0, size, CHUNK)]
    if not ranges:
        return
    if readers is None:
        readers = PREFETCH_READERS.get(ledger.engine.dialect.name, 1)
    if readers == 0:  # in the caller's thread
        with db.reader(db.read_engine(ledger.engine)) as cur:
            for start, end in ranges:
                yield start, end, *_read_chunk(cur, query, q_leaves, q_nodes, start, end)
        return
    readers = max(1, min(readers, len(ranges)))
    # The pool is left first (it waits for reads still running), then the connections close.
    with contextlib.ExitStack() as stack, ThreadPoolExecutor(max_workers=readers) as pool:
        cursors = [stack.enter_context(db.reader(db.read_engine(ledger.engine))) for _ in range(readers)]

        def fetch(k: int) -> tuple[list[Any], list[bytes | None]]:
            # chunk k always uses cursor k % readers, and chunk k + readers is only submitted
            # once chunk k was consumed: no cursor is ever used by two threads at once
            return _read_chunk(cursors[k % readers], query, q_leaves, q_nodes, *ranges[k])

        futures = {k: pool.submit(fetch, k) for k in range(readers)}
        for k, (start, end) in enumerate(ranges):
            rows, nodes = futures.pop(k).result()
            if k + readers < len(ranges):
                futures[k + readers] = pool.submit(fetch, k + readers)
            yield start, end, rows, nodes


def _read_chunk(
    cur: Any, query: str, q_leaves: str, q_nodes: str, start: int, end: int
) -> tuple[list[Any], list[bytes | None]]:
    """A chunk's entry rows and its packed stored hashes: the leaves', then per level
    1..CHUNK_LEVEL the nodes the checker computes from them."""
    rows: list[Any] = cur.execute(query, (start, end)).fetchall()
    packed: list[bytes | None] = [cur.execute(q_leaves, (start, end)).fetchone()[0]]
    count = end - start
    for level in range(1, CHUNK_LEVEL + 1):
        count //= 2
        first = start >> level
        packed.append(cur.execute(q_nodes, (level, first, first + count)).fetchone()[0] if count else b"")
    return rows, packed


def packed_hashes(dialect: str, column: str, table: str, where: str) -> str:
    """A statement that returns the ``column`` values of ``table``'s rows matching ``where``,
    concatenated in index order into one value (NULL for none).

    SQLite (3.40 here) has no ORDER BY inside an aggregate, so the rows come from an ordered
    subquery, which SQLite feeds to the aggregate in that order. Nothing depends on it but speed:
    a value that differs from the computed hashes in any way (order, a missing or altered row) only
    sends the checker to read those rows one by one, with their indexes."""
    if dialect == "postgresql":
        return f"SELECT string_agg({column}, ''::bytea ORDER BY idx) FROM {table} WHERE {where}"
    ordered = f"SELECT {column} FROM {table} WHERE {where} ORDER BY idx"
    return f"SELECT CAST(group_concat({column}, x'') AS BLOB) FROM ({ordered})"


def _check_no_extra_nodes(check: _Checker, size: int) -> None:
    top = check.cur.execute("SELECT max(level) FROM log_nodes").fetchone()[0]
    for level in range(1, max(int(top or 0), size.bit_length()) + 1):
        last = check.cur.execute(check.q_max, (level,)).fetchone()[0]
        if last is not None and int(last) >= size >> level:
            check.report.add(
                max(size - 1, 0),
                f"stored subtree hash (level {level}, index {last}) lies beyond the log of {size} entries",
            )


def _check_item_map(cur: Any, report: VerifyReport, size: int, counts: dict[str, tuple[int, bytes, int]]) -> None:
    """Rebuild the item map from the entries and compare it with the latest checkpoint's."""
    row = cur.execute("SELECT note FROM log_checkpoints ORDER BY size DESC LIMIT 1").fetchone()
    if row is None:
        return
    body = str(row[0]).split("\n\n", 1)[0]
    lines = [line for line in body.split("\n")[3:] if line.startswith(MAP_EXTENSION_PREFIX)]
    if not lines:
        if ITEM_MAP_ITEM in counts:  # a log.item_map_started entry: every later checkpoint commits to the map
            report.add(max(size - 1, 0), "the latest checkpoint does not commit to the item map the log started")
        return
    heads = {item: Head(i, leaf, n) for item, (i, leaf, n) in counts.items()}
    if map_extension(ItemMap.from_heads(heads).root()) != lines[0]:
        report.add(
            max(size - 1, 0),
            f"the checkpoint of size {size} commits to an item map that the log's entries do not give",
        )
    report.items_checked = len(heads)
