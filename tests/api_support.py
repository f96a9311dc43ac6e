"""Fixtures for the API tests: a real app (lifespan included) on SQLite or PostgreSQL.

Test modules load them with ``pytest_plugins = ["tests.api_support"]``. The model is the tiny
ONNX test model (same contract as the shipped one), the photos are real ones from
``../shared/data/real``, and PostgreSQL tests get a fresh schema, dropped afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from authenticator.config import Settings
from tests.api_helpers import Actors, make_actors
from tests.pg_scratch import create_scratch_schema, drop_scratch_schema
from tests.vision_tiny_model import write_tiny_model


@pytest.fixture(scope="session")
def api_tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("weights")
    write_tiny_model(folder)
    return folder


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api_settings(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, api_tiny_weights: Path
) -> Iterator[Settings]:
    """Settings of a fresh deployment: data dir in tmp, SQLite file or a fresh PostgreSQL schema."""
    data = tmp_path_factory.mktemp("data")
    if request.param == "sqlite":
        yield Settings(data_dir=data, weights_dir=api_tiny_weights, database_url=None)
        return
    schema, url = create_scratch_schema("t_api")
    try:
        yield Settings(data_dir=data, weights_dir=api_tiny_weights, database_url=url)
    finally:
        drop_scratch_schema(schema)


@pytest.fixture(scope="module")
def client(api_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def actors(client: TestClient) -> Actors:
    return make_actors(client)
