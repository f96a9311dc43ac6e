"""Fixtures for the ledger storage tests: the same suite on SQLite and on the real PostgreSQL.

Each PostgreSQL
test gets its own fresh schema (``search_path`` in the URL, so subprocesses opening the same
URL land in it too), dropped afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from authenticator.ledger.checkpoint import CheckpointSigner
from authenticator.ledger.log import Ledger
from tests.ledger_samples import ORIGIN
from tests.pg_scratch import scratch_schema


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database: a SQLite file in tmp_path, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    with scratch_schema("t_ledger") as url:
        yield url


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
