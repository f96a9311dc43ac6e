"""Fixtures every part of the suite may use: ../shared (vectors and real photos), and a real API
app (lifespan included) on SQLite or a fresh PostgreSQL schema, with the tiny ONNX test model
(same contract as the shipped one) and the actors of a journey. Each folder's conftest.py adds
what only its part needs; helpers without fixtures live beside this file (api_helpers.py,
live_server.py, ledger_samples.py, pg_scratch.py, vision_tiny_model.py, ...)."""

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

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"../shared is missing at {SHARED}: the tests need its vectors and photos")
    return SHARED


# --- the API app on SQLite or PostgreSQL (was tests/api_support.py) ---
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
