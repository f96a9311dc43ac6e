"""The database layer shared by the ledger and the API's storage: engines, errors, transactions.

The ledger's tables and the API's tables live in one database (one SQLite file, or one
PostgreSQL schema), so a deployment has one thing to back up. Everything about *talking to*
that database lives here, once:

* engines: :func:`create_ledger_engine` (SQLite pragmas, owner-only files, the explicit
  ``BEGIN``/``BEGIN IMMEDIATE`` hook; psycopg 3 on PostgreSQL with a ping after idle),
  :func:`configure_engine`, :func:`read_engine`, :func:`normalise_url`;
* errors: :func:`translate_db_error` and :func:`db_errors` map driver exceptions to the
  project's error tree (append-only refusals, integrity, unavailable);
* transactions: :func:`write_tx` and :func:`read_tx` on SQLAlchemy Core for the API's tables,
  :func:`reader` (a DB-API cursor) for the log's reads, :class:`HotReaders` (a few raw
  PostgreSQL connections) for its hottest ones, and :func:`utc_now`, the stored time format;
* PostgreSQL binary arrays (:class:`Int8Array` and its siblings) for statements that take a
  whole batch as a few parameters.

What stays with its owner: the log's SQL per database, its single-writer transaction
(:func:`authenticator.ledger.sql.writer_tx`, which takes the log's own lock through
``Ops.lock_writer``) and its migrations live in :mod:`authenticator.ledger.sql`; the API's
migrations in :mod:`authenticator.store.migrate`. This module imports neither: both build on it.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import struct
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import psycopg
import sqlalchemy.exc
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from authenticator.errors import (
    AppendOnlyViolation,
    AuthenticatorError,
    ConfigurationError,
    IntegrityError,
    StorageUnavailable,
)

WRITE_OPTION = "ledger_write"
"""Connection execution option: on SQLite the transaction starts with ``BEGIN IMMEDIATE``."""
SQLITE_BUSY_TIMEOUT_S = 120.0
PING_AFTER_IDLE_S = 10.0
APPEND_ONLY_MESSAGE = "append-only log"
"""Every append-only trigger's error message contains this (the ledger's migrations raise it on
both databases), so :func:`translate_db_error` recognises a refusal on either."""


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


def _pg_on_connect(dbapi_connection: Any, _record: Any) -> None:
    register_arrays(dbapi_connection)


def configure_engine(engine: Engine) -> Engine:
    """Install the SQLite pragmas and explicit-BEGIN hooks, or PostgreSQL's idle ping (idempotent).

    An engine handed to :meth:`Ledger.open` should be configured before its first connection:
    :func:`create_ledger_engine` does that.
    """
    if engine.dialect.name == "sqlite" and not event.contains(engine, "connect", _sqlite_on_connect):
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    if engine.dialect.name == "postgresql" and not event.contains(engine, "checkout", _pg_on_checkout):
        event.listen(engine, "connect", _pg_on_connect)
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
        # O_EXCL: never open (and close) a descriptor on an existing database. Closing any
        # descriptor on a file drops every POSIX lock this process holds on it, SQLite's
        # included, and another process would then take the database for unused.
        with suppress(OSError):
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
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


# --- Transactions ------------------------------------------------------------------------------


def utc_now() -> str:
    """RFC 3339 UTC timestamp with microseconds, the format of every time this API stores."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _lock_key(conn: Connection, name: str) -> int:
    schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
    digest = hashlib.sha256(f"authenticator-app:{name}:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def write_tx(engine: Engine, lock: str | None = None) -> Iterator[Connection]:
    """A write transaction; with ``lock``, one holder at a time across processes.

    SQLite: ``BEGIN IMMEDIATE`` serialises every writer anyway, so a read-then-write transaction
    never fails half-way with "database is locked". PostgreSQL: a transaction-scoped advisory
    lock named by ``lock`` (and the schema), released by commit or rollback.
    """
    with db_errors(), engine.connect().execution_options(**{WRITE_OPTION: True}) as conn, conn.begin():
        if lock is not None and engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key(conn, lock)})
        yield conn


@contextmanager
def read_tx(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction (one consistent snapshot on PostgreSQL)."""
    with db_errors(), engine.connect() as conn, conn.begin():
        yield conn


def dbapi_cursor(conn: Connection) -> Any:
    """A DB-API cursor on ``conn``'s transaction, for hot paths that skip SQLAlchemy Core."""
    raw: Any = conn.connection.driver_connection
    # psycopg: binary results, so bytea arrives as bytes instead of hex text (twice as fast).
    return raw.cursor(binary=True) if isinstance(raw, psycopg.Connection) else raw.cursor()


def drop_if_broken(conn: Connection) -> None:
    """A connection the server dropped must not go back to the pool."""
    raw = conn.connection.driver_connection
    if getattr(raw, "broken", False) or getattr(raw, "closed", False):
        conn.invalidate()


@contextmanager
def reader(engine: Engine) -> Iterator[Any]:
    """A DB-API cursor for reads (pass :func:`read_engine`'s engine)."""
    with db_errors(), engine.connect() as conn:
        cur = dbapi_cursor(conn)
        try:
            yield cur
        except BaseException:
            drop_if_broken(conn)
            raise
        finally:
            cur.close()


class HotReaders:
    """A few raw PostgreSQL connections for the log's hottest reads (proofs, entries), each with
    its cursor, checked out and in with a list pop and append under a plain lock.

    A proof is one round trip to a local server, and SQLAlchemy's pool checkout (the connection
    fairy, its events, the isolation level set and reset) costs about as much again. These
    connections skip all of it: made with the engine's own connect arguments, in autocommit
    (nodes and entries never change, so reads need no snapshot), pinged after
    ``PING_AFTER_IDLE_S`` idle (a server restart shows up there), dropped when broken, never
    shared across a fork. At most ``MAX_OPEN`` are open at once; a reader beyond that, or on
    SQLite, uses :func:`reader` on ``engine``.
    """

    MAX_OPEN = 16

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        if self._postgres:
            args, kwargs = engine.dialect.create_connect_args(engine.url)
            self._args, self._kwargs = list(args), {**kwargs, "autocommit": True}
        self._idle: list[tuple[psycopg.Connection[Any], Any, float]] = []
        self._lock = threading.Lock()
        self._open = 0
        self._pid = os.getpid()
        self._closed = False

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        """A binary DB-API cursor for reads; database errors become the project's errors."""
        held = self._checkout() if self._postgres and not self._closed else None
        if held is None:
            with reader(self._engine) as cur:
                yield cur
            return
        conn, cur = held
        try:
            yield cur
        except psycopg.Error as exc:
            _raise_translated(exc)
        finally:
            self._checkin(conn, cur)

    def _checkout(self) -> tuple[psycopg.Connection[Any], Any] | None:
        while True:
            with self._lock:
                if os.getpid() != self._pid:  # a forked child: the parent's connections are not ours
                    self._idle, self._open, self._pid = [], 0, os.getpid()
                if self._idle:
                    conn, cur, idle_since = self._idle.pop()
                elif self._open < self.MAX_OPEN:
                    self._open += 1
                    break
                else:
                    return None
            if time.monotonic() - idle_since < PING_AFTER_IDLE_S:
                return conn, cur
            try:
                conn.execute("SELECT 1")
                return conn, cur
            except psycopg.Error:
                self._drop(conn)
        try:
            conn = psycopg.connect(*self._args, **self._kwargs)
        except psycopg.Error as exc:
            with self._lock:
                self._open -= 1
            _raise_translated(exc)
        register_arrays(conn)
        return conn, conn.cursor(binary=True)

    def _checkin(self, conn: psycopg.Connection[Any], cur: Any) -> None:
        if conn.broken or conn.closed or self._closed:
            self._drop(conn)
            return
        with self._lock:
            if os.getpid() == self._pid:
                self._idle.append((conn, cur, time.monotonic()))
                return
        conn.close()

    def _drop(self, conn: psycopg.Connection[Any]) -> None:
        with self._lock:
            if os.getpid() == self._pid:
                self._open -= 1
        conn.close()

    def close(self) -> None:
        self._closed = True
        with self._lock:
            idle, self._idle = self._idle, []
            self._open -= len(idle)
        for conn, _, _ in idle:
            conn.close()


def _raise_translated(exc: psycopg.Error) -> NoReturn:
    mapped = translate_db_error(exc)
    if mapped is None:
        raise exc
    raise mapped from exc


# --- PostgreSQL binary arrays ------------------------------------------------------------------
#
# psycopg dumps a Python list element by element in Python (and, for a ``%s`` placeholder,
# often as text). These build PostgreSQL's binary array format (``array_send``) with struct and
# bytes.join, and go as ``%b`` parameters of their own type: a batch of 1,000 rows costs a few
# hundred microseconds, not tens of milliseconds. Every connection of an engine from
# :func:`configure_engine`, and every :class:`HotReaders` connection, knows them.


class _BinaryArray(bytes):
    """A one-dimensional PostgreSQL array in binary wire format."""

    element_oid = 0
    array_oid = 0

    @classmethod
    def _header(cls, n: int) -> bytes:
        if not n:
            return struct.pack(">iiI", 0, 0, cls.element_oid)
        return struct.pack(">iiIii", 1, 0, cls.element_oid, n, 1)


class Int4Array(_BinaryArray):
    element_oid, array_oid = 23, 1007

    @classmethod
    def of(cls, values: Sequence[int]) -> Int4Array:
        return cls(cls._header(len(values)) + struct.pack(f">{2 * len(values)}i", *[x for v in values for x in (4, v)]))


class Int8Array(_BinaryArray):
    element_oid, array_oid = 20, 1016

    @classmethod
    def of(cls, values: Sequence[int]) -> Int8Array:
        return cls(
            cls._header(len(values)) + struct.pack(">" + "iq" * len(values), *[x for v in values for x in (8, v)])
        )


class ByteaArray(_BinaryArray):
    element_oid, array_oid = 17, 1001

    @classmethod
    def of(cls, values: Sequence[bytes]) -> ByteaArray:
        return cls(cls._header(len(values)) + _length_prefixed(values))


class TextArray(_BinaryArray):
    element_oid, array_oid = 25, 1009

    @classmethod
    def of(cls, values: Sequence[str]) -> TextArray:
        return cls(cls._header(len(values)) + _length_prefixed([v.encode("utf-8") for v in values]))


def _length_prefixed(values: Iterable[bytes]) -> bytes:
    return b"".join([part for v in values for part in (len(v).to_bytes(4, "big"), v)])


def _array_dumper(array_type: type[_BinaryArray]) -> type[psycopg.adapt.Dumper]:
    class Dumper(psycopg.adapt.Dumper):
        format = psycopg.pq.Format.BINARY
        oid = array_type.array_oid

        def dump(self, obj: Any) -> bytes:
            return bytes(obj)

    Dumper.__name__ = f"{array_type.__name__}Dumper"
    return Dumper


_ARRAY_DUMPERS = [(t, _array_dumper(t)) for t in (Int4Array, Int8Array, ByteaArray, TextArray)]


def register_arrays(conn: Any) -> None:
    """Teach a psycopg connection the binary array types (without them a ``%b`` array would go
    as plain bytea and the server would refuse the cast)."""
    for array_type, dumper in _ARRAY_DUMPERS:
        conn.adapters.register_dumper(array_type, dumper)
