"""schemathesis with every built-in check against the whole OpenAPI, once per role.

A real server (``authenticator serve``) with a populated log; the generated requests are sent
as an admin, a platform (that owns items), a lab and anonymously. Whatever the role, no answer
is a 5xx and every answer matches its documented status, content type, headers and schema.
Bounded: a few examples per operation and role (``SCHEMATHESIS_EXAMPLES``, default 3).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from authenticator.config import Settings
from tests.api_helpers import bearer, certificate_envelope, photo_files, real_photos, register_lab
from tests.live_server import LiveServer, bootstrap_admin, server_env, start_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "5"))
# Rules that OpenAPI cannot state, answered 422 by design: "schema-valid request rejected"
# (ST202) is expected there and only there; every other check runs on every operation.
CROSS_FIELD_RULES = {
    "POST /v1/labs": "public_key must parse as PEM or the base64 of 32 raw Ed25519 bytes",
    "GET /v1/log/proof/inclusion": "exactly one of index and leaf_hash",
    "GET /v1/log/proof/consistency": "from <= to",
    "GET /v1/log/entries": "at most 1,000 entries per read (end - start)",
    "POST /v1/items/{item_id}/certificates": "the payload is a canonical certificate signed by the lab's key",
    "POST /v1/assessments/preview": "each photo must decode as an image of at least 64 px per side",
    "POST /v1/items/{item_id}/assessments": "one 'views' field per photo at most, each a view of the item's guide",
}


@dataclass
class Deployment:
    server: LiveServer
    keys: dict[str, str]


@pytest.fixture(scope="module")
def deployment(api_tiny_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("schemathesis")
    env = server_env(Settings(data_dir=root / "data", weights_dir=api_tiny_weights))
    admin = bootstrap_admin(env)
    server = start_server(env, root / "server.log", log_level="warning")
    try:
        with httpx.Client(base_url=server.base, timeout=60) as http:
            platform = http.post("/v1/keys", json={"role": "platform", "name": "P"}, headers=bearer(admin)).json()
            lab, lab_id, lab_key = register_lab(http, admin, "Lab")  # type: ignore[arg-type]
            p = bearer(platform["api_key"])
            item = http.post("/v1/items", json={"category": "bag", "brand": "B", "model": "M"}, headers=p).json()["id"]
            r = http.post(f"/v1/items/{item}/assessments", files=photo_files(real_photos(1)), headers=p)
            assert r.status_code == 201, r.text
            env_json = certificate_envelope(lab_key, item, lab_id)
            assert http.post(f"/v1/items/{item}/certificates", json=env_json, headers=bearer(lab)).status_code == 201
            r = http.post(
                "/v1/listings", json={"item_id": item, "title": "T", "price": "1", "currency": "EUR"}, headers=p
            )
            assert r.status_code == 201, r.text
        yield Deployment(server, {"admin": admin, "platform": platform["api_key"], "lab": lab, "anonymous": ""})
    finally:
        server.stop()


@pytest.mark.parametrize("role", ["admin", "platform", "lab", "anonymous"])
def test_openapi_all_checks_as(role: str, deployment: Deployment) -> None:
    base = deployment.server.base
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 25
    key = deployment.keys[role]
    headers = bearer(key) if key else {}
    failures: list[str] = []
    for operation in operations:
        excluded: Any = [positive_data_acceptance] if operation.label in CROSS_FIELD_RULES else []

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
            case.call_and_validate(base_url=base, headers=headers, excluded_checks=excluded, timeout=60)  # noqa: B023

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup is a BaseExceptionGroup
            failures.append(f"{operation.label}: {str(exc)[:800]}")
    assert not failures, "\n\n".join(failures)
