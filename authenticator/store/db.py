"""Migrations and transactions of the API's tables, on the ledger's engine.

The tables live in the ledger's database (one SQLite file, or one PostgreSQL schema) so that a
deployment has one thing to back up. Writes use the ledger's ``BEGIN IMMEDIATE`` hook on
SQLite, so a read-then-write transaction never fails half-way with "database is locked".
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy.exc
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, text

from authenticator.ledger.store import WRITE_OPTION, db_errors
from authenticator.store.tables import VERSION_TABLE

APP_HEAD = "0002_natural_keys"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


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

    SQLite: ``BEGIN IMMEDIATE`` serialises every writer anyway. PostgreSQL: a transaction-scoped
    advisory lock named by ``lock`` (and the schema), released by commit or rollback.
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


def _current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn, conn.begin():
            value = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
            return None if value is None else str(value)
    except sqlalchemy.exc.DBAPIError:
        return None


def migrate(engine: Engine) -> None:
    """Bring the API's tables to :data:`APP_HEAD`; concurrent starters wait for each other."""
    if _current_revision(engine) == APP_HEAD:
        return
    with write_tx(engine, lock="migrate") as conn:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
