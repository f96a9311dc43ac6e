"""The log's SQL: hot-path statements per database, the single-writer transaction, migrations.

The hot paths (appending a batch, reading proof nodes) talk to the DB-API cursor directly,
because the per-row cost of the ORM-free Core layer is still several microseconds, and the
two databases want different shapes:

* SQLite ignores the primary-key index for ``(level, idx) IN (VALUES ...)``, so proof nodes
  are read with one indexed lookup each (a few microseconds in process).
* PostgreSQL pays a network round trip per statement (and the waits for a core on a busy
  machine that come with it), so proof nodes are read in one statement, and a group commit
  costs two round trips: ``BEGIN``, the lock and one read of the size, the entries appended
  since and the missing item heads, pipelined (:meth:`Ops.start_group`); then one statement
  writing the entries, nodes and checkpoint from binary arrays, pipelined with ``COMMIT``
  (:meth:`Ops.finish_group`). The bulk path still writes with binary ``COPY``.

Engines, error mapping, the generic transactions, the raw connections for hot reads
(:class:`authenticator.db.HotReaders`) and the binary array parameters live in
:mod:`authenticator.db`, shared with the API's storage. :func:`writer_tx` and :func:`group_tx`
stay here: they are the log's own transactions, holding the log's single-writer lock
(``Ops.lock_writer``: ``BEGIN IMMEDIATE`` on SQLite, an advisory lock keyed by the schema on
PostgreSQL), and nothing but the log takes that lock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy.exc
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, text

from authenticator.db import (
    WRITE_OPTION,
    ByteaArray,
    Int4Array,
    Int8Array,
    TextArray,
    db_errors,
    dbapi_cursor,
    drop_if_broken,
)
from authenticator.errors import ConfigurationError
from authenticator.ledger.schema import VERSION_TABLE
from authenticator.ledger.tree import NodeId

LEDGER_HEAD = "0001_ledger"
"""The newest ledger migration; a database already there skips Alembic entirely."""
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

EntryRow = tuple[int, bytes, str, str, bytes]
"""``(idx, leaf_hash, item, type, data)`` of ``log_entries``."""
NodeRow = tuple[int, int, bytes]
"""``(level, idx, hash)`` of ``log_nodes``."""


# --- Dialect-specific hot paths -----------------------------------------------------------------


class Ops(Protocol):
    """The statements whose shape differs between SQLite and PostgreSQL."""

    def lock_writer(self, cur: Any) -> None: ...
    def size(self, cur: Any) -> int: ...
    def get_nodes(self, cur: Any, ids: Sequence[NodeId]) -> dict[NodeId, bytes]: ...
    def get_block(
        self, cur: Any, lo: int, hi: int, ids: Sequence[NodeId]
    ) -> tuple[list[bytes], dict[NodeId, bytes]]: ...
    def get_upper_nodes(self, cur: Any, level: int) -> list[NodeRow]: ...
    def last_leaf_hashes(self, cur: Any, items: Sequence[str]) -> dict[str, bytes]: ...
    def insert_entries(self, cur: Any, rows: Sequence[EntryRow]) -> None: ...
    def insert_nodes(self, cur: Any, rows: Sequence[NodeRow]) -> None: ...
    def insert_checkpoint(self, cur: Any, size: int, root: bytes, note: str) -> None: ...
    def placeholder(self) -> str: ...
    def start_group(self, cur: Any, since: int, limit: int, items: Sequence[str]) -> GroupStart: ...
    def finish_group(
        self, cur: Any, entries: Sequence[EntryRow], nodes: Sequence[NodeRow], size: int, root: bytes, note: str
    ) -> None: ...


@dataclass(frozen=True)
class GroupStart:
    """What a group-commit writer reads first, under the lock: the log's size, the entries
    appended since the size it last saw (other processes may append too), and the heads of
    the items it has not cached."""

    size: int
    since: list[tuple[str, bytes]] | None
    """``(item, leaf hash)`` of the entries from ``since`` on, in log order; None when not
    asked (``since`` < 0), when more than ``limit`` came, or when the log is smaller."""
    heads: dict[str, bytes]
    """The latest leaf hash of each asked item that has entries."""


def _group_start(
    size: int, since: int, limit: int, rows: list[tuple[int, str, bytes]], heads: dict[str, bytes]
) -> GroupStart:
    if since < 0 or since > size or len(rows) > limit:
        return GroupStart(size, None, heads)
    rows.sort()
    return GroupStart(size, [(item, leaf) for _, item, leaf in rows], heads)


_SQLITE_TERMS = 200
"""Terms per UNION ALL statement (SQLite allows 500 by default)."""


class SqliteOps:
    """SQLite: in-process, so many tiny indexed statements beat one clever one."""

    def lock_writer(self, cur: Any) -> None:
        # BEGIN IMMEDIATE (emitted by the engine's begin hook) already holds the write lock.
        pass

    def placeholder(self) -> str:
        return "?"

    def size(self, cur: Any) -> int:
        row = cur.execute("SELECT max(idx) FROM log_entries").fetchone()
        return 0 if row is None or row[0] is None else int(row[0]) + 1

    def get_nodes(self, cur: Any, ids: Sequence[NodeId]) -> dict[NodeId, bytes]:
        # One primary-key lookup per node, but glued into one statement with UNION ALL: SQLite
        # plans each term as a PK search (unlike ``(level, idx) IN (VALUES ...)``, which it
        # scans), and one statement costs a third of the Python round trips of one per node.
        # Leaves first, then the rest, so the SQL text (and its cached plan) depends only on
        # the two counts.
        leaves = sorted({i for lvl, i in ids if lvl == 0})
        inner = sorted({(lvl, i) for lvl, i in ids if lvl > 0})
        out: dict[NodeId, bytes] = {}
        for k in range(0, max(len(leaves), len(inner)), _SQLITE_TERMS):
            part_leaves, part_inner = leaves[k : k + _SQLITE_TERMS], inner[k : k + _SQLITE_TERMS]
            terms = ["SELECT 0, idx, leaf_hash FROM log_entries WHERE idx = ?"] * len(part_leaves)
            terms += ["SELECT level, idx, hash FROM log_nodes WHERE level = ? AND idx = ?"] * len(part_inner)
            params: list[int] = [*part_leaves]
            for lvl, i in part_inner:
                params += (lvl, i)
            for lvl, i, h in cur.execute(" UNION ALL ".join(terms), params).fetchall():
                out[(lvl, i)] = h
        return out

    def get_block(self, cur: Any, lo: int, hi: int, ids: Sequence[NodeId]) -> tuple[list[bytes], dict[NodeId, bytes]]:
        q = "SELECT leaf_hash FROM log_entries WHERE idx >= ? AND idx < ? ORDER BY idx"
        leaves = [bytes(h) for (h,) in cur.execute(q, (lo, hi)).fetchall()]
        return leaves, self.get_nodes(cur, ids) if ids else {}

    def get_upper_nodes(self, cur: Any, level: int) -> list[NodeRow]:
        q = "SELECT level, idx, hash FROM log_nodes WHERE level >= ? ORDER BY level, idx"
        return [(int(lvl), int(i), bytes(h)) for lvl, i, h in cur.execute(q, (level,)).fetchall()]

    def last_leaf_hashes(self, cur: Any, items: Sequence[str]) -> dict[str, bytes]:
        q = "SELECT leaf_hash FROM log_entries WHERE item = ? ORDER BY idx DESC LIMIT 1"
        out: dict[str, bytes] = {}
        for item in items:
            row = cur.execute(q, (item,)).fetchone()
            if row is not None:
                out[item] = bytes(row[0])
        return out

    def insert_entries(self, cur: Any, rows: Sequence[EntryRow]) -> None:
        cur.executemany("INSERT INTO log_entries (idx, leaf_hash, item, type, data) VALUES (?, ?, ?, ?, ?)", rows)

    def insert_nodes(self, cur: Any, rows: Sequence[NodeRow]) -> None:
        cur.executemany("INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)", rows)

    def insert_checkpoint(self, cur: Any, size: int, root: bytes, note: str) -> None:
        cur.execute(
            "INSERT INTO log_checkpoints (size, root_hash, note, created_at) "
            "VALUES (?, ?, ?, strftime('%Y-%m-%d %H:%M:%f', 'now'))",
            (size, root, note),
        )

    def start_group(self, cur: Any, since: int, limit: int, items: Sequence[str]) -> GroupStart:
        # BEGIN IMMEDIATE already holds the lock; in process, separate statements cost nothing.
        size = self.size(cur)
        rows: list[tuple[int, str, bytes]] = []
        if 0 <= since <= size:
            q = "SELECT idx, item, leaf_hash FROM log_entries WHERE idx >= ? ORDER BY idx LIMIT ?"
            rows = [(int(i), str(item), bytes(h)) for i, item, h in cur.execute(q, (since, limit + 1)).fetchall()]
        return _group_start(size, since, limit, rows, self.last_leaf_hashes(cur, items))

    def finish_group(
        self, cur: Any, entries: Sequence[EntryRow], nodes: Sequence[NodeRow], size: int, root: bytes, note: str
    ) -> None:
        self.insert_entries(cur, entries)
        self.insert_nodes(cur, nodes)
        self.insert_checkpoint(cur, size, root, note)
        cur.connection.commit()


class PostgresOps:
    """PostgreSQL: few round trips, pipelined; binary arrays for a group, binary COPY in bulk."""

    def __init__(self, lock_key: int) -> None:
        self.lock_key = lock_key

    def placeholder(self) -> str:
        return "%s"

    def lock_writer(self, cur: Any) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (self.lock_key,))

    def size(self, cur: Any) -> int:
        row = cur.execute("SELECT max(idx) FROM log_entries").fetchone()
        return 0 if row is None or row[0] is None else int(row[0]) + 1

    def get_nodes(self, cur: Any, ids: Sequence[NodeId]) -> dict[NodeId, bytes]:
        rows = cur.execute(self._NODES, self._node_params(ids)).fetchall()
        return {(int(lvl), int(i)): bytes(h) for lvl, i, h in rows}

    _NODES = (
        "SELECT n.level, n.idx, n.hash FROM unnest(%b::int[], %b::bigint[]) AS q(level, idx) "
        "JOIN log_nodes n ON n.level = q.level AND n.idx = q.idx "
        "UNION ALL SELECT 0, e.idx, e.leaf_hash FROM log_entries e WHERE e.idx = ANY(%b::bigint[])"
    )

    def get_block(self, cur: Any, lo: int, hi: int, ids: Sequence[NodeId]) -> tuple[list[bytes], dict[NodeId, bytes]]:
        # A range of leaves is one index range scan, about as cheap as a primary-key read; the
        # few nodes from elsewhere join it in the same statement (tagged -1 and the rest).
        if not ids:
            q = "SELECT leaf_hash FROM log_entries WHERE idx >= %b AND idx < %b ORDER BY idx"
            return [bytes(h) for (h,) in cur.execute(q, (lo, hi)).fetchall()], {}
        leaves: list[tuple[int, bytes]] = []
        nodes: dict[NodeId, bytes] = {}
        for level, i, h in cur.execute(
            "SELECT -1, idx, leaf_hash FROM log_entries WHERE idx >= %b AND idx < %b UNION ALL " + self._NODES,
            (lo, hi, *self._node_params(ids)),
        ).fetchall():
            if level < 0:
                leaves.append((int(i), bytes(h)))
            else:
                nodes[(int(level), int(i))] = bytes(h)
        leaves.sort()
        return [h for _, h in leaves], nodes

    def get_upper_nodes(self, cur: Any, level: int) -> list[NodeRow]:
        q = "SELECT level, idx, hash FROM log_nodes WHERE level >= %b ORDER BY level, idx"
        return [(int(lvl), int(i), bytes(h)) for lvl, i, h in cur.execute(q, (level,)).fetchall()]

    @staticmethod
    def _node_params(ids: Sequence[NodeId]) -> tuple[Int4Array, Int8Array, Int8Array]:
        return (
            Int4Array.of([lvl for lvl, _ in ids if lvl > 0]),
            Int8Array.of([i for lvl, i in ids if lvl > 0]),
            Int8Array.of([i for lvl, i in ids if lvl == 0]),
        )

    def last_leaf_hashes(self, cur: Any, items: Sequence[str]) -> dict[str, bytes]:
        if not items:
            return {}
        rows = cur.execute(
            "SELECT q.item, e.leaf_hash FROM unnest(%b::text[]) AS q(item) CROSS JOIN LATERAL "
            "(SELECT leaf_hash FROM log_entries WHERE item = q.item ORDER BY idx DESC LIMIT 1) e",
            (TextArray.of(items),),
        ).fetchall()
        return {item: bytes(h) for item, h in rows}

    def insert_entries(self, cur: Any, rows: Sequence[EntryRow]) -> None:
        with cur.copy("COPY log_entries (idx, leaf_hash, item, type, data) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "bytea", "text", "text", "bytea"])
            for row in rows:
                copy.write_row(row)

    def insert_nodes(self, cur: Any, rows: Sequence[NodeRow]) -> None:
        with cur.copy("COPY log_nodes (level, idx, hash) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "int8", "bytea"])
            for row in rows:
                copy.write_row(row)

    def insert_checkpoint(self, cur: Any, size: int, root: bytes, note: str) -> None:
        cur.execute(
            "INSERT INTO log_checkpoints (size, root_hash, note, created_at) VALUES (%s, %s, %s, now())",
            (size, root, note),
        )

    _GROUP_START = (
        "SELECT 0, max(idx), NULL::text, NULL::bytea FROM log_entries "
        "UNION ALL (SELECT 1, idx, item, leaf_hash FROM log_entries WHERE idx >= %s ORDER BY idx LIMIT %s) "
        "UNION ALL SELECT 2, 0, q.item, e.leaf_hash FROM unnest(%b::text[]) AS q(item) CROSS JOIN LATERAL "
        "(SELECT leaf_hash FROM log_entries WHERE item = q.item ORDER BY idx DESC LIMIT 1) e"
    )

    def start_group(self, cur: Any, since: int, limit: int, items: Sequence[str]) -> GroupStart:
        # One round trip: BEGIN, the lock, then one statement for the rest (so one snapshot,
        # taken once the lock is held: it sees every earlier holder's commit).
        conn = cur.connection
        with conn.pipeline():
            self.lock_writer(cur)
            cur.execute(self._GROUP_START, (max(since, 0), limit + 1 if since >= 0 else 0, TextArray.of(items)))
        size, rows, heads = 0, [], {}
        for tag, idx, item, leaf in cur.fetchall():
            if tag == 0:
                size = 0 if idx is None else int(idx) + 1
            elif tag == 1:
                rows.append((int(idx), str(item), bytes(leaf)))
            else:
                heads[str(item)] = bytes(leaf)
        return _group_start(size, since, limit, rows, heads)

    _FINISH_GROUP = (
        "WITH entries AS (INSERT INTO log_entries (idx, leaf_hash, item, type, data) "
        "SELECT * FROM unnest(%b::int8[], %b::bytea[], %b::text[], %b::text[], %b::bytea[])), "
        "nodes AS (INSERT INTO log_nodes (level, idx, hash) SELECT * FROM unnest(%b::int4[], %b::int8[], %b::bytea[])) "
        "INSERT INTO log_checkpoints (size, root_hash, note, created_at) VALUES (%b, %b, %b, now())"
    )

    def finish_group(
        self, cur: Any, entries: Sequence[EntryRow], nodes: Sequence[NodeRow], size: int, root: bytes, note: str
    ) -> None:
        # The whole write in one statement, pipelined with the commit: one round trip. The rows
        # go as binary arrays (COPY costs two round trips per table and cannot be pipelined).
        idxs, leaves, items, types, datas = zip(*entries, strict=True) if entries else ((), (), (), (), ())
        levels, node_idxs, hashes = zip(*nodes, strict=True) if nodes else ((), (), ())
        conn = cur.connection
        with conn.pipeline():
            cur.execute(
                self._FINISH_GROUP,
                (
                    Int8Array.of(idxs),
                    ByteaArray.of(leaves),
                    TextArray.of(items),
                    TextArray.of(types),
                    ByteaArray.of(datas),
                    Int4Array.of(levels),
                    Int8Array.of(node_idxs),
                    ByteaArray.of(hashes),
                    size,
                    root,
                    note,
                ),
            )
            conn.commit()


def ops_for(engine: Engine) -> Ops:
    """The hot-path statements for this engine's database (and, on PostgreSQL, its schema)."""
    if engine.dialect.name == "sqlite":
        return SqliteOps()
    if engine.dialect.name == "postgresql":
        with db_errors(), engine.connect() as conn:
            schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
        # One writer per log: the lock key is derived from the schema the log lives in.
        digest = hashlib.sha256(f"authenticator-ledger:{schema}".encode()).digest()
        return PostgresOps(int.from_bytes(digest[:8], "big", signed=True))
    raise ConfigurationError(f"unsupported database {engine.dialect.name}")


@contextmanager
def writer_tx(engine: Engine, ops: Ops) -> Iterator[tuple[Connection, Any]]:
    """One transaction holding the log's single-writer lock; yields its SQLAlchemy connection
    and a DB-API cursor on the same transaction (hot-path SQL on the cursor, the rest on Core).

    SQLite: ``BEGIN IMMEDIATE`` (waits up to the busy timeout). PostgreSQL: a transaction-scoped
    advisory lock, released by the commit or rollback. Commits when the block ends cleanly.
    """
    with db_errors(), engine.connect().execution_options(**{WRITE_OPTION: True}) as conn:
        try:
            with conn.begin():
                cur = dbapi_cursor(conn)
                try:
                    ops.lock_writer(cur)
                    yield conn, cur
                finally:
                    cur.close()
        except BaseException:
            drop_if_broken(conn)
            raise


@contextmanager
def group_tx(
    conn: Connection, ops: Ops, since: int, limit: int, items: Sequence[str]
) -> Iterator[tuple[Any, GroupStart]]:
    """:func:`writer_tx` for a group commit, on a connection of :func:`writer_connection` that
    the leader keeps for its run of groups: the lock is taken together with the group's first
    reads (:meth:`Ops.start_group`, one round trip on PostgreSQL), and the block ends with
    :meth:`Ops.finish_group`, which commits (the commit then issued on leaving is a no-op)."""
    with db_errors():
        try:
            with conn.begin():
                cur = dbapi_cursor(conn)
                try:
                    yield cur, ops.start_group(cur, since, limit, items)
                finally:
                    cur.close()
        except BaseException:
            drop_if_broken(conn)
            raise


def writer_connection(engine: Engine) -> Connection:
    """A connection for :func:`group_tx` (``BEGIN IMMEDIATE`` on SQLite)."""
    with db_errors():
        return engine.connect().execution_options(**{WRITE_OPTION: True})


@contextmanager
def writer(engine: Engine, ops: Ops) -> Iterator[Any]:
    """:func:`writer_tx` for code that needs the cursor only."""
    with writer_tx(engine, ops) as (_conn, cur):
        yield cur


# --- Migrations --------------------------------------------------------------------------------


def _current_revision(conn: Connection) -> str | None:
    try:
        with conn.begin():
            return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    except sqlalchemy.exc.DBAPIError:
        return None


def migrate(engine: Engine, ops: Ops) -> None:
    """Bring the ledger tables to :data:`LEDGER_HEAD`, holding the writer lock while doing it."""
    with db_errors():
        with engine.connect() as conn:
            if _current_revision(conn) == LEDGER_HEAD:
                return
        with engine.connect().execution_options(**{WRITE_OPTION: True}) as conn, conn.begin():
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%(key)s)", {"key": ops_lock_key(ops)})
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")


def ops_lock_key(ops: Ops) -> int:
    return ops.lock_key if isinstance(ops, PostgresOps) else 0
