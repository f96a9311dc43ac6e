"""Database plumbing of the ledger: engines, migrations, the writer lock and hot-path SQL.

The hot paths (appending a batch, reading proof nodes) talk to the DB-API cursor directly,
because the per-row cost of the ORM-free Core layer is still several microseconds, and the
two databases want different shapes:

* SQLite ignores the primary-key index for ``(level, idx) IN (VALUES ...)``, so proof nodes
  are read with one indexed lookup each (a few microseconds in process).
* PostgreSQL pays a network round trip per statement, so proof nodes and item heads are read
  in one statement each, and batches are written with binary ``COPY``.

Everything else goes through SQLAlchemy Core. Database errors are mapped to the project's
error tree by :func:`db_errors`.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Protocol

import psycopg
import sqlalchemy.exc
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from authenticator.errors import (
    AppendOnlyViolation,
    AuthenticatorError,
    ConfigurationError,
    IntegrityError,
    StorageUnavailable,
)
from authenticator.ledger.merkle import NodeId
from authenticator.ledger.schema import APPEND_ONLY_MESSAGE, VERSION_TABLE

LEDGER_HEAD = "0001_ledger"
"""The newest ledger migration; a database already there skips Alembic entirely."""
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
WRITE_OPTION = "ledger_write"
"""Connection execution option: on SQLite the transaction starts with ``BEGIN IMMEDIATE``."""
SQLITE_BUSY_TIMEOUT_S = 120.0
PING_AFTER_IDLE_S = 10.0

EntryRow = tuple[int, bytes, str, str, bytes]
"""``(idx, leaf_hash, item, type, data)`` of ``log_entries``."""
NodeRow = tuple[int, int, bytes]
"""``(level, idx, hash)`` of ``log_nodes``."""


# --- Errors ------------------------------------------------------------------------------------


def translate_db_error(exc: BaseException) -> AuthenticatorError | None:
    """The project error for a database exception, or None when it is a programming error."""
    orig = exc.orig if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.orig is not None else exc
    message = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    if APPEND_ONLY_MESSAGE in str(orig):
        return AppendOnlyViolation(message)
    if isinstance(orig, sqlite3.IntegrityError | psycopg.IntegrityError):
        return IntegrityError(f"the database refused the write: {message}")
    unavailable = (
        sqlite3.OperationalError,
        sqlite3.InterfaceError,
        psycopg.OperationalError,
        psycopg.InterfaceError,
        psycopg.errors.UndefinedTable,
        psycopg.errors.InvalidSchemaName,
        psycopg.errors.UndefinedFunction,
        sqlalchemy.exc.OperationalError,
        sqlalchemy.exc.InterfaceError,
    )
    if isinstance(orig, unavailable) or isinstance(exc, unavailable):
        return StorageUnavailable(f"the ledger database is unavailable: {message}")
    return None


@contextmanager
def db_errors() -> Iterator[None]:
    """Re-raise database exceptions as the project's errors (append-only, unavailable, ...)."""
    try:
        yield
    except AuthenticatorError:
        raise
    except (sqlalchemy.exc.SQLAlchemyError, sqlite3.Error, psycopg.Error) as exc:
        mapped = translate_db_error(exc)
        if mapped is None:
            raise
        raise mapped from exc


# --- Engines -----------------------------------------------------------------------------------


def normalise_url(database_url: str) -> str:
    """``postgresql://`` means psycopg 3 here; other drivers are refused early."""
    try:
        url = make_url(database_url)
    except sqlalchemy.exc.ArgumentError as exc:
        raise ConfigurationError(f"not a database URL: {database_url!r}") from exc
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.drivername not in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg"):
        raise ConfigurationError(f"the ledger runs on SQLite or PostgreSQL (psycopg 3), not {url.drivername}")
    return url.render_as_string(hide_password=False)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Transactions are begun explicitly (see _sqlite_on_begin): pysqlite's implicit BEGIN
    # would otherwise start a deferred transaction that cannot be made a writer's.
    dbapi_connection.isolation_level = None
    cur = dbapi_connection.cursor()
    cur.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    cur.execute("PRAGMA journal_mode = WAL")
    cur.execute("PRAGMA synchronous = FULL")
    cur.execute("PRAGMA foreign_keys = ON")
    # A batch touches ~1,000 random pages of the leaf-hash and item indexes: keep them cached,
    # and checkpoint the WAL every ~40 MB rather than every 4 MB (pages touched by several
    # batches are then copied back once). Durability is unchanged: every commit syncs the WAL.
    cur.execute("PRAGMA cache_size = -65536")
    cur.execute("PRAGMA wal_autocheckpoint = 10000")
    # Owner-only database files, also those an older version (or another tool) left 0644.
    for _seq, name, filename in cur.execute("PRAGMA database_list").fetchall():
        if name == "main" and filename:
            _private_sqlite_files(filename)
    cur.close()


def _sqlite_on_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "BEGIN")


def _pg_on_checkin(_dbapi_connection: Any, record: Any) -> None:
    record.info["ledger_idle_since"] = time.monotonic()


def _pg_on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Ping a pooled connection only when it sat idle (a server restart shows up there);
    a hot connection is used without the extra round trip ``pool_pre_ping`` would cost."""
    idle_since = record.info.get("ledger_idle_since")
    if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_S:
        return
    try:
        dbapi_connection.execute("SELECT 1")
        dbapi_connection.rollback()
    except psycopg.Error as exc:
        raise sqlalchemy.exc.DisconnectionError(str(exc)) from exc  # the pool retries afresh


def configure_engine(engine: Engine) -> Engine:
    """Install the SQLite pragmas and explicit-BEGIN hooks, or PostgreSQL's idle ping (idempotent).

    An engine handed to :meth:`Ledger.open` should be configured before its first connection:
    :func:`create_ledger_engine` does that.
    """
    if engine.dialect.name == "sqlite" and not event.contains(engine, "connect", _sqlite_on_connect):
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    if engine.dialect.name == "postgresql" and not event.contains(engine, "checkout", _pg_on_checkout):
        event.listen(engine, "checkin", _pg_on_checkin)
        event.listen(engine, "checkout", _pg_on_checkout)
    return engine


def read_engine(engine: Engine) -> Engine:
    """The engine for reads: on PostgreSQL in autocommit, so a read is its statements' round
    trips only (no BEGIN, no ROLLBACK on return to the pool). Nodes and entries never change,
    so reads need no snapshot."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine


SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
"""Files SQLite keeps next to a database; they hold the same data, so the same mode."""


def _private_sqlite_files(database: str, *, create: bool = False) -> None:
    """Make a SQLite database file and its ``-wal``/``-shm``/``-journal`` owner-only (0600).

    With ``create`` a missing database file is created empty with mode 0600 (``os.open``'s mode,
    independent of SQLite's 0644 default): SQLite then takes the file as a new database and gives
    its ``-wal``/``-shm`` the database file's mode. A file this process cannot change (another
    owner, a read-only mount) is left as it is: the database itself then says what it can do.
    """
    path = Path(database)
    if create:
        with suppress(OSError):
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for candidate in (path, *(Path(f"{database}{suffix}") for suffix in SQLITE_SIDE_FILES)):
        try:
            if candidate.stat().st_mode & 0o077:
                os.chmod(candidate, 0o600)
        except OSError:  # absent, or not ours to change
            pass


def create_ledger_engine(database_url: str) -> Engine:
    """An engine for the ledger (and anything sharing its database) with durable settings.

    SQLite: WAL, ``synchronous=FULL``, foreign keys, a long busy timeout; the database file and
    its ``-wal``/``-shm`` are 0600 and a folder created here is 0700. PostgreSQL: psycopg 3,
    ``synchronous_commit`` left at its durable default (``on``).
    """
    url = make_url(normalise_url(database_url))
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
            Path(url.database).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _private_sqlite_files(url.database, create=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False})
    else:
        engine = create_engine(url)
    return configure_engine(engine)


# --- Dialect-specific hot paths -----------------------------------------------------------------


class Ops(Protocol):
    """The statements whose shape differs between SQLite and PostgreSQL."""

    def lock_writer(self, cur: Any) -> None: ...
    def size(self, cur: Any) -> int: ...
    def get_nodes(self, cur: Any, ids: Sequence[NodeId]) -> dict[NodeId, bytes]: ...
    def last_leaf_hashes(self, cur: Any, items: Sequence[str]) -> dict[str, bytes]: ...
    def insert_entries(self, cur: Any, rows: Sequence[EntryRow]) -> None: ...
    def insert_nodes(self, cur: Any, rows: Sequence[NodeRow]) -> None: ...
    def insert_checkpoint(self, cur: Any, size: int, root: bytes, note: str) -> None: ...
    def placeholder(self) -> str: ...


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


class PostgresOps:
    """PostgreSQL: one round trip per question, binary COPY for the batch."""

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
        levels = [lvl for lvl, _ in ids if lvl > 0]
        idxs = [i for lvl, i in ids if lvl > 0]
        leaves = [i for lvl, i in ids if lvl == 0]
        rows = cur.execute(
            "SELECT n.level, n.idx, n.hash FROM unnest(%s::int[], %s::bigint[]) AS q(level, idx) "
            "JOIN log_nodes n ON n.level = q.level AND n.idx = q.idx "
            "UNION ALL SELECT 0, e.idx, e.leaf_hash FROM log_entries e WHERE e.idx = ANY(%s::bigint[])",
            (levels, idxs, leaves),
        ).fetchall()
        return {(int(lvl), int(i)): bytes(h) for lvl, i, h in rows}

    def last_leaf_hashes(self, cur: Any, items: Sequence[str]) -> dict[str, bytes]:
        if not items:
            return {}
        rows = cur.execute(
            "SELECT q.item, e.leaf_hash FROM unnest(%s::text[]) AS q(item) CROSS JOIN LATERAL "
            "(SELECT leaf_hash FROM log_entries WHERE item = q.item ORDER BY idx DESC LIMIT 1) e",
            (list(items),),
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


def _cursor(conn: Connection) -> Any:
    raw: Any = conn.connection.driver_connection
    # psycopg: binary results, so bytea arrives as bytes instead of hex text (twice as fast).
    return raw.cursor(binary=True) if isinstance(raw, psycopg.Connection) else raw.cursor()


def _drop_if_broken(conn: Connection) -> None:
    """A connection the server dropped must not go back to the pool."""
    raw = conn.connection.driver_connection
    if getattr(raw, "broken", False) or getattr(raw, "closed", False):
        conn.invalidate()


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
                cur = _cursor(conn)
                try:
                    ops.lock_writer(cur)
                    yield conn, cur
                finally:
                    cur.close()
        except BaseException:
            _drop_if_broken(conn)
            raise


@contextmanager
def writer(engine: Engine, ops: Ops) -> Iterator[Any]:
    """:func:`writer_tx` for code that needs the cursor only."""
    with writer_tx(engine, ops) as (_conn, cur):
        yield cur


@contextmanager
def reader(engine: Engine) -> Iterator[Any]:
    """A DB-API cursor for reads (pass :func:`read_engine`'s engine)."""
    with db_errors(), engine.connect() as conn:
        cur = _cursor(conn)
        try:
            yield cur
        except BaseException:
            _drop_if_broken(conn)
            raise
        finally:
            cur.close()


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
