"""The ledger service: append entries in batches, answer proofs, entries and item histories.

One writer at a time integrates a batch in one transaction: it fills each entry's ``prev``
from the item's latest leaf, writes the entries and every perfect subtree they complete, and
signs one checkpoint. Everything that does not need the log's current state (body schema
validation, RFC 8785 canonicalisation, the entry's bytes around ``prev`` and ``time``, the
item's map key) is done by the group's leader before it opens the transaction, so the lock is
held for joining bytes, hashing, the item map and two round trips (see
:mod:`authenticator.ledger.sql`).

Reads never rebuild the tree: a proof is ``O(log n)`` lookups of stored perfect-subtree hashes,
one statement on a raw connection (:class:`authenticator.db.HotReaders`), the upper ones from
memory (:class:`UpperNodes`).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy
from sqlalchemy import Connection, Engine, text

from authenticator import db
from authenticator.config import Settings
from authenticator.errors import (
    CheckpointError,
    ConfigurationError,
    EntryValidationError,
    IntegrityError,
    NotFound,
    ProofError,
)
from authenticator.ledger import sql
from authenticator.ledger.caches import ItemHeads, UpperNodes
from authenticator.ledger.checkpoint import Checkpoint, CheckpointSigner, verify_checkpoint
from authenticator.ledger.entries import (
    ITEM_MAP_ITEM,
    canonical_json,
    entry_envelope,
    format_time,
    json_prev,
    make_entry,
    parse_entry,
    time_field,
)
from authenticator.ledger.group_commit import GroupCommit, Waiter
from authenticator.ledger.item_map import MAP_EXTENSION_PREFIX, Head, ItemMap, MapProof, item_key, map_extension
from authenticator.ledger.proofplan import (
    ProofPlan,
    batch_inclusion_proofs,
    block_inclusion_nodes,
    block_inclusion_proof,
    consistency_plan,
    inclusion_plan,
    materialise,
    plan_nodes,
    root_plan,
)
from authenticator.ledger.tree import NodeId, extend_perfect_nodes, fold_nodes, root_nodes


def _refuse_new_key_for_signed_log(database_url: str, key_path: str) -> None:
    """A missing key is made only for a log nobody has seen signed: a fresh key for a log with
    checkpoints would sign trees that verify with no published key (and leave a stray file)."""
    engine = db.create_ledger_engine(database_url)
    try:
        with db.db_errors(), engine.connect() as conn:
            if not sqlalchemy.inspect(conn).has_table("log_checkpoints"):
                return
            signed = conn.exec_driver_sql("SELECT 1 FROM log_checkpoints LIMIT 1").first() is not None
    finally:
        engine.dispose()
    if signed:
        raise ConfigurationError(
            f"log key {key_path} is missing, but this log already has signed checkpoints; restore the log's key "
            "file (or point log_key_path at it) instead of letting a new key be made"
        )


@dataclass(frozen=True)
class StoredEntry:
    """One leaf of the log as stored: its index, leaf hash and canonical entry bytes."""

    index: int
    leaf_hash: bytes
    data: bytes
    item: str
    type: str


@dataclass(frozen=True)
class Receipt:
    """Proof that an entry is in the log: the signed checkpoint and the path to its root."""

    index: int
    leaf_hash: bytes
    tree_size: int
    checkpoint: str
    """The signed note (C2SP tlog-checkpoint) of the tree of ``tree_size`` leaves."""
    inclusion_proof: list[bytes]
    data: bytes = b""
    """The entry's canonical bytes, as appended."""


T = TypeVar("T")
Check = Callable[[Connection], None]
"""A command's precondition, run under the writer lock before anything is appended; it raises
(a :class:`~authenticator.errors.Conflict`, say) to append nothing."""
AfterAppend = Callable[[Connection, list["StoredEntry"]], None]
"""Runs in the append's transaction after the entries are written (projections, side tables);
an exception rolls the whole append back."""


@dataclass(frozen=True)
class NewEntry:
    """An entry to append; the ledger fills in ``prev`` (the item's chain) and ``time``."""

    type: str
    item: str
    body: Mapping[str, Any]


MAX_BODY_BYTES = 65_535 - 1_024
"""An appended entry must fit a tlog-tiles entry bundle (a uint16 length); the rest of an entry
(item, type, prev, time, keys) takes well under 1 KiB."""
MAX_GROUP = 1000
"""Most commands one transaction integrates (group commit)."""


@dataclass(eq=False)
class _Command(Waiter):
    """One caller's entries and hooks, waiting in the group-commit queue."""

    entries: Sequence[NewEntry]
    check: Check | None
    after: AfterAppend | None
    prepared: list[_Prepared] = field(default_factory=list)
    """The entries made ready by the leader (:func:`_prepare_command`)."""
    receipts: list[Receipt] | None = None


@dataclass(frozen=True, slots=True)
class _Prepared:
    """An entry made ready before the transaction: what is left for the writer is
    joining ``head``, ``prev``, the time and ``tail``, hashing, and the map update."""

    type: str
    item: str
    head: bytes
    """The canonical entry up to ``"prev":`` (body validated and canonicalised, item encoded)."""
    tail: bytes
    """The canonical entry from ``,"type":`` on."""
    key: bytes
    """The item's key in the item map (SHA-256 of its id)."""


def _prepare(entry: NewEntry) -> _Prepared:
    """Validate and canonicalise before the transaction (the expensive, state-free part)."""
    checked = make_entry(entry.type, entry.item, entry.body, None)
    body = canonical_json(checked.body)
    if len(body) > MAX_BODY_BYTES:
        raise EntryValidationError(
            f"a {checked.type} body of {len(body)} bytes is too large: an entry must fit a C2SP "
            f"tlog-tiles entry bundle (65,535 bytes), so a body is at most {MAX_BODY_BYTES} bytes",
            type=checked.type,
        )
    head, tail = entry_envelope(checked.type, checked.item, body)
    return _Prepared(checked.type, checked.item, head, tail, item_key(checked.item))


def _prepare_command(command: _Command) -> None:
    command.prepared = [_prepare(e) for e in command.entries]


def _stored(row: Sequence[Any]) -> StoredEntry:
    idx, leaf_hash, item, type_, data = row
    return StoredEntry(int(idx), bytes(leaf_hash), bytes(data), str(item), str(type_))


class Ledger:
    """The append-only Merkle log in SQLite or PostgreSQL, with signed checkpoints."""

    def __init__(self, engine: Engine, signer: CheckpointSigner, ops: sql.Ops) -> None:
        self.engine = engine
        self._read_engine = db.read_engine(engine)
        self._readers = db.HotReaders(self._read_engine)
        self.signer = signer
        self.verifier_key: str = signer.verifier_key
        self.origin: str = signer.origin
        self._ops = ops
        self._p = ops.placeholder()
        # Writers of this process queue here before the database lock; the caches below are
        # only read or changed while holding it.
        self._write_mutex = threading.Lock()
        self._frontier: tuple[int, list[bytes]] = (-1, [])
        self._heads = ItemHeads()
        self._upper = UpperNodes()
        # The item map of the first ``_map_size`` entries (-1: to be loaded); changed only under
        # ``_write_mutex``, by a writer (inside its transaction) or a reader catching up.
        self._map = ItemMap()
        self._map_size = -1
        self._pending_caches: tuple[int, list[bytes], list[tuple[NodeId, bytes]]] = (-1, [], [])
        # Commands waiting for the writer (see append_batch).
        self._group_commit: GroupCommit[_Command] = GroupCommit(
            _prepare_command, self._run_group_locked, Connection.close, MAX_GROUP
        )

    # --- Lifecycle ------------------------------------------------------------------------

    @classmethod
    def open(
        cls, database_url: str, signer: CheckpointSigner, *, engine: Engine | None = None, check_key: bool = True
    ) -> Ledger:
        """Open (creating and migrating) the log at ``database_url``.

        The first open signs the empty tree's checkpoint. With ``check_key`` the latest stored
        checkpoint must verify with ``signer``'s key, so a lost or swapped key file is noticed
        at start-up rather than by buyers; ``authenticator ledger verify`` turns it off to be
        able to report such a log.
        """
        engine = db.configure_engine(engine) if engine is not None else db.create_ledger_engine(database_url)
        ops = sql.ops_for(engine)
        sql.migrate(engine, ops)
        ledger = cls(engine, signer, ops)
        ledger._ensure_first_checkpoint()
        if check_key:  # not for `ledger verify`, which reports a log as it is and appends nothing
            ledger._ensure_item_map()
        if check_key:
            note = ledger.latest_checkpoint()
            try:
                verify_checkpoint(note, ledger.verifier_key, ledger.origin)
            except CheckpointError as exc:
                raise ConfigurationError(
                    "the log key does not match the key that signed this log's latest checkpoint "
                    f"({exc.message}); point log_key_path at the log's key",
                ) from exc
        return ledger

    @classmethod
    def from_settings(cls, settings: Settings, *, check_key: bool = True) -> Ledger:
        """The ledger at ``settings.resolved_database_url`` with the key at the settings' path."""
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # photos, keys, database: owner only
        key_path = settings.resolved_log_key_path
        if check_key and not key_path.exists() and not key_path.is_symlink():
            _refuse_new_key_for_signed_log(settings.resolved_database_url, str(key_path))
        signer = CheckpointSigner.load_or_create(key_path, settings.log_origin)
        return cls.open(settings.resolved_database_url, signer, check_key=check_key)

    def close(self) -> None:
        self._readers.close()
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _ensure_first_checkpoint(self) -> None:
        with self._readers.cursor() as cur:
            if cur.execute("SELECT 1 FROM log_checkpoints LIMIT 1").fetchone() is not None:
                return
        with sql.writer(self.engine, self._ops) as cur:
            if cur.execute("SELECT 1 FROM log_checkpoints LIMIT 1").fetchone() is not None:
                return
            if self._ops.size(cur) != 0:
                raise IntegrityError("the log has entries but no checkpoint")
            root = fold_nodes([])
            note = self.signer.sign(Checkpoint(self.origin, 0, root, (map_extension(ItemMap().root()),)))
            self._ops.insert_checkpoint(cur, 0, root, note)

    def _ensure_item_map(self) -> None:
        """A log whose latest checkpoint does not commit to the item map (an older version
        wrote it) gets one entry saying the map starts, so its next checkpoint does."""
        body = self.latest_checkpoint().split("\n\n", 1)[0]
        if any(line.startswith(MAP_EXTENSION_PREFIX) for line in body.split("\n")[3:]):
            return
        self.append(NewEntry("log.item_map_started", ITEM_MAP_ITEM, {"map": "item-heads/v1"}))

    # --- The item map ---------------------------------------------------------------------

    _MAP_MAX_CATCH_UP = 50_000

    def _map_at(self, cur: Any, size: int) -> ItemMap:
        """The item map of the first ``size`` entries (caller holds ``_write_mutex``)."""
        if self._map_size < 0 or size < self._map_size or size - self._map_size > self._MAP_MAX_CATCH_UP:
            p = self._p
            rows = cur.execute(
                "SELECT e.item, e.idx, e.leaf_hash, c.n FROM log_entries e JOIN "
                f"(SELECT item, max(idx) AS m, count(*) AS n FROM log_entries WHERE idx < {p} GROUP BY item) c "
                "ON e.idx = c.m",
                (size,),
            ).fetchall()
            self._map = ItemMap.from_heads({str(i): Head(int(x), bytes(h), int(n)) for i, x, h, n in rows})
        elif size > self._map_size:
            p = self._p
            for idx, item, leaf in cur.execute(
                f"SELECT idx, item, leaf_hash FROM log_entries WHERE idx >= {p} AND idx < {p} ORDER BY idx",
                (self._map_size, size),
            ).fetchall():
                self._map.advance(str(item), int(idx), bytes(leaf))
        self._map_size = size
        return self._map

    def item_head(self, item: str) -> tuple[str, int, MapProof]:
        """The latest signed checkpoint, its size and the proof of ``item``'s head (or of its
        absence) against the item map that checkpoint commits to."""
        with self._write_mutex, self._readers.cursor() as cur:
            row = cur.execute("SELECT size, note FROM log_checkpoints ORDER BY size DESC LIMIT 1").fetchone()
            if row is None:
                raise IntegrityError("the log has no checkpoint")
            size, note = int(row[0]), str(row[1])
            return note, size, self._map_at(cur, size).prove(item)

    # --- Appending ------------------------------------------------------------------------

    def append(self, entry: NewEntry) -> Receipt:
        """Append one entry (a batch of one); see :meth:`append_batch`."""
        return self.append_batch([entry])[0]

    def append_batch(
        self, entries: Sequence[NewEntry], *, check: Check | None = None, after: AfterAppend | None = None
    ) -> list[Receipt]:
        """Integrate ``entries`` in one transaction under one new signed checkpoint.

        Each entry's ``prev`` is the leaf hash of its item's latest entry, earlier entries of
        the same batch included. Returns one receipt per entry, in order. Raises
        :class:`~authenticator.errors.EntryValidationError` (nothing appended) when any body is
        invalid, :class:`~authenticator.errors.StorageUnavailable` when the database is down.

        ``check`` and ``after`` make a command exactly-once: both run in the writer's
        transaction, so a precondition checked by ``check`` still holds when the entries land,
        and whatever ``after`` writes (the projections) commits or rolls back with them.

        Concurrent callers share transactions and checkpoints (:mod:`~authenticator.ledger.group_commit`).
        """
        if not entries:
            return []
        command = _Command(entries, check, after)
        self._group_commit.submit(command)
        assert command.receipts is not None
        return command.receipts

    def _run_group_locked(self, conn: Connection | None, group: list[_Command]) -> Connection | None:
        with self._write_mutex:
            return self._run_group(conn, group)

    def _run_group(self, conn: Connection | None, group: list[_Command]) -> Connection | None:
        """Integrate ``group`` on ``conn`` (opened when None); returns the connection for the next
        group, None when the transaction failed (each command of the group then has the error)."""
        try:
            if conn is None:
                conn = sql.writer_connection(self.engine)
            self._integrate_group(conn, group)
        except BaseException as exc:  # the transaction failed: nobody of the group appended
            for command in group:
                if not command.done:
                    command.error, command.done = exc, True
            if conn is not None:
                conn.close()  # a fresh connection for the next group
            if not isinstance(exc, Exception):
                raise
            return None
        return conn

    def _integrate_group(self, conn: Connection, group: list[_Command]) -> None:
        """One transaction for the group: per command, in order and inside a savepoint, its
        ``check``, its rows (each ``prev`` from the item's head so far) and its ``after``; a
        command whose check or after raises is rolled back alone and gets the error. Then the
        rows, their subtree hashes and one signed checkpoint."""
        ops = self._ops
        sha256 = hashlib.sha256
        items = list(dict.fromkeys(p.item for c in group for p in c.prepared))
        asked = self._heads.missing(items)
        with sql.group_tx(conn, ops, self._heads.size, self._heads.MAX_CATCH_UP, asked) as (cur, begun):
            size = begun.size
            heads = self._heads.lookup(ops, cur, begun, items, asked)
            time_json = time_field(format_time(datetime.now(UTC)))
            rows: list[sql.EntryRow] = []
            keys: list[bytes] = []
            accepted: list[tuple[_Command, int, int]] = []
            for command in group:
                before = {p.item: heads.get(p.item) for p in command.prepared}
                start = size + len(rows)
                own: list[sql.EntryRow] = []
                # Hooks can fail: their command then rolls back alone. A savepoint on the raw
                # cursor costs two tiny statements (SQLAlchemy's nested transactions cost ten
                # times that); a command without hooks needs none.
                hooked = command.check is not None or command.after is not None
                if hooked:
                    cur.execute("SAVEPOINT grouped_command")
                try:
                    if command.check is not None:
                        command.check(conn)
                    for offset, p in enumerate(command.prepared):
                        data = b"".join((p.head, json_prev(heads.get(p.item)), time_json, p.tail))
                        leaf = sha256(b"\x00" + data).digest()
                        heads[p.item] = leaf
                        own.append((start + offset, leaf, p.item, p.type, data))
                    if command.after is not None:
                        command.after(conn, [StoredEntry(r[0], r[1], r[4], r[2], r[3]) for r in own])
                    if hooked:
                        cur.execute("RELEASE SAVEPOINT grouped_command")
                except Exception as exc:
                    if not hooked:
                        raise
                    cur.execute("ROLLBACK TO SAVEPOINT grouped_command")
                    cur.execute("RELEASE SAVEPOINT grouped_command")
                    for item, was in before.items():
                        if was is None:
                            heads.pop(item, None)
                        else:
                            heads[item] = was
                    command.error, command.done = exc, True
                    continue
                rows.extend(own)
                keys.extend(p.key for p in command.prepared)
                accepted.append((command, start, len(own)))
            if not rows:
                return
            # The splice must give exactly what parse_entry accepts: cross-check one per group.
            parse_entry(rows[0][4])
            new_size, note, known = self._write_rows(cur, size, rows, keys, commit=True)
        self._caches_committed()
        self._heads.committed(heads, new_size)
        try:
            proofs = batch_inclusion_proofs(size, new_size, new_size, known)
        except KeyError:  # not reachable for leaves of the batch, but never guess
            proofs = [self._proof_from(known, inclusion_plan(i, new_size)) for i in range(size, new_size)]
        for command, start, n in accepted:
            k0 = start - size
            command.receipts = [
                Receipt(start + k, rows[k0 + k][1], new_size, note, proofs[k0 + k], rows[k0 + k][4]) for k in range(n)
            ]
            command.done = True

    def _append_prebuilt(self, entries: Sequence[tuple[str, str, bytes]]) -> int:
        """Integrate ``(item, type, canonical bytes)`` as given: no validation, no chain filling.

        For building large logs quickly in the benchmark and for tests that forge a log a
        buggy or malicious writer could have produced; the service never calls it. Returns
        the new size.
        """
        sha256 = hashlib.sha256
        with self._write_mutex, sql.writer_tx(self.engine, self._ops) as (_conn, cur):
            size = self._ops.size(cur)
            rows = [
                (size + k, sha256(b"\x00" + data).digest(), item, type_, data)
                for k, (item, type_, data) in enumerate(entries)
            ]
            new_size = self._write_rows(cur, size, rows)[0]
        self._caches_committed()
        self._heads.size = -1  # entries appended around the cache
        return new_size

    def _caches_committed(self) -> None:
        """The transaction of :meth:`_write_rows` committed: its tree is now the log's."""
        new_size, new_frontier, new_nodes = self._pending_caches
        self._frontier = (new_size, new_frontier)
        self._map_size = new_size
        self._upper.keep(dict(new_nodes), new_size, border=False)

    def _write_rows(
        self,
        cur: Any,
        size: int,
        rows: list[sql.EntryRow],
        keys: Sequence[bytes] | None = None,
        *,
        commit: bool = False,
    ) -> tuple[int, str, dict[NodeId, bytes]]:
        """In the writer's transaction: the rows, the perfect subtrees they complete, the item
        map and one signed checkpoint; with ``commit``, the commit too (:meth:`sql.Ops.finish_group`).
        ``keys`` are the rows' item-map keys, when the caller has them. The caches describe the
        new tree only once the transaction has committed (they are marked stale until then)."""
        ops = self._ops
        frontier = self._load_frontier(cur, size)
        new_nodes, new_frontier = extend_perfect_nodes(size, frontier, [r[1] for r in rows])
        new_size = size + len(rows)
        root = fold_nodes(new_frontier)
        item_map = self._map_at(cur, size)
        self._map_size = -1  # until the transaction commits, the map is not any tree's
        self._frontier = (-1, [])
        advance = item_map.advance_key
        for (idx, leaf, _item, _type, _data), key in zip(
            rows, keys if keys is not None else [item_key(r[2]) for r in rows], strict=True
        ):
            advance(key, idx, leaf)
        note = self.signer.sign(Checkpoint(self.origin, new_size, root, (map_extension(item_map.root()),)))
        node_rows = [(lvl, i, h) for (lvl, i), h in new_nodes if lvl]
        if commit:
            ops.finish_group(cur, rows, node_rows, new_size, root, note)
        else:
            ops.insert_entries(cur, rows)
            ops.insert_nodes(cur, node_rows)
            ops.insert_checkpoint(cur, new_size, root, note)
        # Receipts need only the old frontier and the nodes just computed (no reads).
        known: dict[NodeId, bytes] = dict(zip(root_nodes(size), frontier, strict=True))
        known.update(new_nodes)
        self._pending_caches = (new_size, new_frontier, new_nodes)
        return new_size, note, known

    def _proof_from(self, known: dict[NodeId, bytes], plan: ProofPlan) -> list[bytes]:
        missing = [n for n in plan_nodes(plan) if n not in known]
        if missing:
            with self._readers.cursor() as cur:
                known = {**known, **self._nodes(cur, missing)}
        return materialise(plan, known)

    def _load_frontier(self, cur: Any, size: int) -> list[bytes]:
        cached_size, cached = self._frontier
        if cached_size == size:
            return cached
        ids = root_nodes(size)
        nodes = self._nodes(cur, ids)
        return [nodes[n] for n in ids]

    def _nodes(self, cur: Any, ids: Sequence[NodeId]) -> dict[NodeId, bytes]:
        nodes = self._ops.get_nodes(cur, ids)
        missing = [n for n in ids if n not in nodes]
        if missing:
            level, idx = missing[0]
            raise IntegrityError(f"stored subtree hash ({level}, {idx}) is missing", level=level, index=idx)
        return nodes

    def locked(self, fn: Callable[[Connection, int], T]) -> T:
        """``fn(conn, size)`` holding the writer lock, appending nothing: what must not race
        an append (bringing the projections up to the log, rebuilding them) runs here."""
        with self._write_mutex, sql.writer_tx(self.engine, self._ops) as (conn, cur):
            return fn(conn, self._ops.size(cur))

    @staticmethod
    def entries_in(conn: Connection, start: int, end: int) -> list[StoredEntry]:
        """Entries ``start <= index < end`` read on ``conn`` (inside a writer's transaction)."""
        rows = conn.execute(
            text(f"SELECT {Ledger._COLUMNS} FROM log_entries WHERE idx >= :a AND idx < :b ORDER BY idx"),
            {"a": start, "b": end},
        ).all()
        return [_stored(tuple(r)) for r in rows]

    # --- Tree state -----------------------------------------------------------------------

    def size(self) -> int:
        """Number of entries in the log (the size of the latest checkpoint)."""
        with self._readers.cursor() as cur:
            return self._ops.size(cur)

    def latest_checkpoint(self) -> str:
        """The latest signed checkpoint note."""
        with self._readers.cursor() as cur:
            row = cur.execute("SELECT note FROM log_checkpoints ORDER BY size DESC LIMIT 1").fetchone()
        if row is None:
            raise IntegrityError("the log has no checkpoint")
        return str(row[0])

    def checkpoint_at(self, size: int) -> str | None:
        """The signed checkpoint of the tree of ``size`` leaves, if one was signed."""
        with self._readers.cursor() as cur:
            row = cur.execute(f"SELECT note FROM log_checkpoints WHERE size = {self._p}", (size,)).fetchone()
        return None if row is None else str(row[0])

    def _read_plan(self, cur: Any, plan: ProofPlan, size: int) -> list[bytes]:
        """A plan's hashes in the tree of ``size``, its nodes read in one go (:meth:`_fetch`)."""
        return materialise(plan, self._fetch(cur, plan_nodes(plan), size))

    BLOCK_LEVEL = 4
    """A proof's siblings below this level are hashed from the 2**BLOCK_LEVEL leaves around its
    leaf, read as one range."""

    def _read_inclusion(self, cur: Any, index: int, size: int) -> list[bytes]:
        """The inclusion proof of ``index`` in the tree of ``size`` in one statement (the hot path).

        Its elements below ``BLOCK_LEVEL`` are hashes of leaves in the aligned block of
        ``2**BLOCK_LEVEL`` leaves that holds the leaf: one index range scan of ``log_entries``
        (as cheap as a primary-key read) and 11 hashes here, instead of a lookup per node in two
        tables. The nodes above come from :class:`UpperNodes`, or from the same statement when
        it lacks them."""
        upper = self._upper
        least = upper.least(size)
        if upper.loaded_level < 0 or least > upper.loaded_level + 1:  # first use, or the log outgrew it
            upper.load(self._ops.get_upper_nodes(cur, least), least)
        lo, hi, outside = block_inclusion_nodes(index, size, self.BLOCK_LEVEL)
        known, ids = upper.split(outside)
        if size > upper.seen_size and hi < size:
            ids.append((0, size - 1))  # the tree of ``size`` exists if its last leaf does
        leaves, nodes = self._ops.get_block(cur, lo, hi, ids)
        if len(leaves) < hi - lo or len(nodes) < len(set(ids)):
            current = self._ops.size(cur)
            if size > current:
                raise NotFound(f"the log has {current} entries; there is no tree of size {size} yet", size=size)
            self._nodes(cur, [*((0, i) for i in range(lo, hi)), *ids])  # raises IntegrityError naming the gap
            return self._read_inclusion(cur, index, size)  # all there now: a writer committed meanwhile
        if nodes or size > upper.seen_size:
            upper.keep(nodes, size)
            known.update(nodes)
        return block_inclusion_proof(index, size, self.BLOCK_LEVEL, leaves, known)

    def _fetch(self, cur: Any, ids: list[NodeId], size: int) -> dict[NodeId, bytes]:
        """The hashes of ``ids`` in one statement, plus the tree's last leaf unless the tree is
        known to exist: if that exists, the tree of ``size`` exists, so no separate size query is
        needed. Upper nodes come from :class:`UpperNodes` when it has them."""
        if size < 0:
            raise ProofError(f"tree size {size} is negative")
        known, ids = self._upper.split(ids)
        if size > self._upper.seen_size:
            ids.append((0, size - 1))
        nodes = self._ops.get_nodes(cur, ids) if ids else {}
        if len(nodes) < len(set(ids)):
            current = self._ops.size(cur)
            if size > current:
                raise NotFound(f"the log has {current} entries; there is no tree of size {size} yet", size=size)
            nodes = self._nodes(cur, ids)  # raises IntegrityError naming the missing node
        self._upper.keep(nodes, size)
        known.update(nodes)
        return known

    def root_at(self, size: int) -> bytes:
        """Root hash of the tree of the first ``size`` entries (any size up to the current one)."""
        with self._readers.cursor() as cur:
            hashes = self._read_plan(cur, root_plan(size), size)
        return hashes[0] if hashes else fold_nodes([])

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 inclusion proof of entry ``index`` in the tree of ``size`` (default: current)."""
        with self._readers.cursor() as cur:
            if size is None:
                size = self._ops.size(cur)
                if not 0 <= index < size:
                    raise NotFound(f"no entry at index {index}", index=index)
            elif not 0 <= index < size:
                raise ProofError(f"entry {index} is not in the tree of size {size}")
            return self._read_inclusion(cur, index, size)

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """RFC 9162 consistency proof that the tree of ``size2`` extends the one of ``size1``."""
        if not 0 <= size1 <= size2:
            raise ProofError(f"no consistency proof from size {size1} to size {size2}")
        with self._readers.cursor() as cur:
            return self._read_plan(cur, consistency_plan(size1, size2), size2)

    def node_range(self, level: int, start: int, end: int) -> list[bytes]:
        """Hashes of the perfect subtrees ``(level, start) … (level, end - 1)`` in order (level 0:
        the leaf hashes), fewer where the tree ends: one range read (the tlog-tiles hash tiles)."""
        if level < 0 or start < 0 or end < start:
            raise ProofError(f"bad node range {level}:[{start}, {end})")
        p = self._p
        with self._readers.cursor() as cur:
            if level == 0:
                q = f"SELECT idx, leaf_hash FROM log_entries WHERE idx >= {p} AND idx < {p} ORDER BY idx"
                rows = cur.execute(q, (start, end)).fetchall()
            else:
                q = f"SELECT idx, hash FROM log_nodes WHERE level = {p} AND idx >= {p} AND idx < {p} ORDER BY idx"
                rows = cur.execute(q, (level, start, end)).fetchall()
        for k, (idx, _) in enumerate(rows):
            if int(idx) != start + k:
                missing = start + k
                raise IntegrityError(f"stored subtree hash ({level}, {missing}) is missing", level=level, index=missing)
        return [bytes(h) for _, h in rows]

    # --- Entries --------------------------------------------------------------------------

    _COLUMNS = "idx, leaf_hash, item, type, data"

    def entries(self, start: int, end: int) -> list[StoredEntry]:
        """Entries with ``start <= index < end`` (fewer at the end of the log), in log order."""
        if start < 0 or end < start:
            raise ProofError(f"bad entry range [{start}, {end})")
        p = self._p
        with self._readers.cursor() as cur:
            rows = cur.execute(
                f"SELECT {self._COLUMNS} FROM log_entries WHERE idx >= {p} AND idx < {p} ORDER BY idx", (start, end)
            ).fetchall()
        return [_stored(r) for r in rows]

    def receipt(self, index: int) -> Receipt:
        """A receipt for an entry already in the log: its proof against the latest checkpoint
        (read together, so the proof and the note always describe one tree)."""
        with self._readers.cursor() as cur:
            row = cur.execute("SELECT size, note FROM log_checkpoints ORDER BY size DESC LIMIT 1").fetchone()
        if row is None:
            raise IntegrityError("the log has no checkpoint")
        size, note = int(row[0]), str(row[1])
        if not 0 <= index < size:
            raise NotFound(f"no entry at index {index}", index=index)
        stored = self.entry(index)
        return Receipt(index, stored.leaf_hash, size, note, self.inclusion_proof(index, size), stored.data)

    def latest(self) -> tuple[str, int]:
        """The latest signed checkpoint note and its size, read together (no note parsing)."""
        with self._readers.cursor() as cur:
            row = cur.execute("SELECT size, note FROM log_checkpoints ORDER BY size DESC LIMIT 1").fetchone()
        if row is None:
            raise IntegrityError("the log has no checkpoint")
        return str(row[1]), int(row[0])

    def proved(self, entries: Sequence[StoredEntry], size: int) -> list[tuple[StoredEntry, list[bytes]]]:
        """Each entry with its inclusion proof in the tree of ``size`` (a trace's events), read on
        one connection."""
        with self._readers.cursor() as cur:
            for e in entries:
                if not 0 <= e.index < size:
                    raise ProofError(f"entry {e.index} is not in the tree of size {size}")
            return [(e, self._read_inclusion(cur, e.index, size)) for e in entries]

    def entry(self, index: int) -> StoredEntry:
        """The entry at ``index``; :class:`~authenticator.errors.NotFound` beyond the log."""
        with self._readers.cursor() as cur:
            row = cur.execute(f"SELECT {self._COLUMNS} FROM log_entries WHERE idx = {self._p}", (index,)).fetchone()
        if row is None:
            raise NotFound(f"no entry at index {index}", index=index)
        return _stored(row)

    def index_of(self, leaf_hash: bytes) -> int:
        """Index of the entry with this leaf hash; :class:`~authenticator.errors.NotFound` if none."""
        with self._readers.cursor() as cur:
            row = cur.execute(
                f"SELECT idx FROM log_entries WHERE leaf_hash = {self._p}", (bytes(leaf_hash),)
            ).fetchone()
        if row is None:
            raise NotFound("no entry with this leaf hash")
        return int(row[0])

    def history(self, item: str) -> list[StoredEntry]:
        """Every entry of ``item`` in log order: a hash chain through each entry's ``prev``."""
        with self._readers.cursor() as cur:
            rows = cur.execute(
                f"SELECT {self._COLUMNS} FROM log_entries WHERE item = {self._p} ORDER BY idx", (item,)
            ).fetchall()
        return [_stored(r) for r in rows]

    def last_leaf_hash(self, item: str) -> bytes | None:
        """Leaf hash of ``item``'s latest entry (what its next entry's ``prev`` will be)."""
        with self._readers.cursor() as cur:
            return self._ops.last_leaf_hashes(cur, [item]).get(item)
