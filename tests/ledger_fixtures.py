"""Fixtures for the ledger storage tests: the same suite on SQLite and on the real PostgreSQL.

Test modules load them with ``pytest_plugins = ["tests.ledger_fixtures"]``. Each PostgreSQL
test gets its own fresh schema (``search_path`` in the URL, so subprocesses opening the same
URL land in it too), dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from authenticator.ledger.checkpoint import CheckpointSigner
from authenticator.ledger.log import Ledger
from tests.ledger_samples import ORIGIN, PG_DSN


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database: a SQLite file in tmp_path, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    schema = f"t_ledger_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    path = tmp_path / "log.key"
    CheckpointSigner.load_or_create(path, ORIGIN)
    return path


@pytest.fixture
def signer(key_path: Path) -> CheckpointSigner:
    return CheckpointSigner.load_or_create(key_path, ORIGIN)


@pytest.fixture
def ledger(db_url: str, signer: CheckpointSigner) -> Iterator[Ledger]:
    led = Ledger.open(db_url, signer)
    try:
        yield led
    finally:
        led.close()
