"""Scratch PostgreSQL schemas on the server at 127.0.0.1:5432: one per test or benchmark run,
so runs never see each other's tables. Used by the tests and by bench/."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


def schema_url(schema: str) -> str:
    """SQLAlchemy URL of the ``test`` database with ``schema`` as the search path."""
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"


def create_scratch_schema(prefix: str) -> tuple[str, str]:
    """Create a uniquely named empty schema; return its name and URL."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return schema, schema_url(schema)


def drop_scratch_schema(schema: str) -> None:
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@contextmanager
def scratch_schema(prefix: str) -> Iterator[str]:
    """The URL of a fresh schema, dropped afterwards."""
    schema, url = create_scratch_schema(prefix)
    try:
        yield url
    finally:
        drop_scratch_schema(schema)
