"""Migrations of the API's tables, on the ledger's engine.

The tables live in the ledger's database (one SQLite file, or one PostgreSQL schema) so that a
deployment has one thing to back up. Engines, error mapping and the transactions the API's
storage uses (``write_tx``, ``read_tx``, ``utc_now``) live in :mod:`authenticator.db`; the
ledger's own migrations in :mod:`authenticator.ledger.sql`.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy.exc
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from authenticator.db import write_tx
from authenticator.store.tables import VERSION_TABLE

APP_HEAD = "0006_lab_keys_once"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


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
