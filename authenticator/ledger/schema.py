"""Tables of the append-only log (SQLAlchemy Core), shared by the migrations and the log's SQL.

Only three tables, all append-only:

* ``log_entries``: one row per leaf; ``idx`` is the leaf index, ``data`` the canonical entry
  bytes, ``leaf_hash`` = SHA-256(0x00 || data); ``item``/``type`` are copies of the entry's
  fields so an item's history is one indexed range scan.
* ``log_nodes``: the hash of every completed perfect subtree of level >= 1 (``2**level``
  leaves starting at leaf ``idx * 2**level``). Level 0 is ``log_entries.leaf_hash``; storing it
  twice would only add a row per append. Any proof node is one primary-key lookup.
* ``log_checkpoints``: every signed checkpoint, one per integrated batch.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    func,
)

metadata = MetaData()

# On SQLite ``INTEGER PRIMARY KEY`` makes the leaf index the rowid: no second B-tree.
_LeafIndex = BigInteger().with_variant(Integer(), "sqlite")

log_entries = Table(
    "log_entries",
    metadata,
    Column("idx", _LeafIndex, primary_key=True, autoincrement=False),
    Column("leaf_hash", LargeBinary(32), nullable=False, unique=True),
    Column("item", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("data", LargeBinary, nullable=False),
)
Index("ix_log_entries_item_idx", log_entries.c.item, log_entries.c.idx)

log_nodes = Table(
    "log_nodes",
    metadata,
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
    sqlite_with_rowid=False,
)

log_checkpoints = Table(
    "log_checkpoints",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.current_timestamp()),
)

LOG_TABLES = ("log_entries", "log_nodes", "log_checkpoints")
VERSION_TABLE = "alembic_version_ledger"
"""Alembic version table of the ledger; the API keeps its own for its projections."""
