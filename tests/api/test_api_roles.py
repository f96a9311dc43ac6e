"""The role matrix: every endpoint x every role (and no key, and a wrong key) -> expected status.

Columns: ``none`` (no key), ``admin``, ``platform`` (the platform that owns the item),
``other`` (another platform), ``lab`` (the lab that issued the certificate). Each request is
built fresh (new certificate to revoke, new listing to close), so every cell is independent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api_helpers import Actors, bearer, certificate_envelope, new_item, photo_files, real_photos

ROLES = ("none", "admin", "platform", "other", "lab")


@dataclass
class World:
    actors: Actors
    item: str
    assessment: str
    photo: str
    certificate: str
    listing: str
    model: str


@pytest.fixture(scope="module")
def world(client: TestClient, actors: Actors) -> World:
    item = new_item(client, actors.platform)
    r = client.post(
        f"/v1/items/{item}/assessments",
        params={"heatmaps": "true"},
        files=photo_files(real_photos(1, offset=2)),
        headers=bearer(actors.platform),
    )
    assert r.status_code == 201, r.text
    verdict = r.json()
    cert = _certificate(client, actors, item, "world")
    listing = _listing(client, actors, item)
    return World(actors, item, verdict["id"], verdict["photos"][0]["sha256"], cert, listing, verdict["model"]["sha256"])


def _certificate(client: TestClient, actors: Actors, item: str, method: str) -> str:
    env = certificate_envelope(actors.lab_key, item, actors.lab_id, method=method)
    r = client.post(f"/v1/items/{item}/certificates", json=env, headers=bearer(actors.lab))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _listing(client: TestClient, actors: Actors, item: str) -> str:
    r = client.post(
        "/v1/listings",
        json={"item_id": item, "title": "Birkin", "price": "10", "currency": "EUR"},
        headers=bearer(actors.platform),
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _assessment(client: TestClient, actors: Actors) -> str:
    """A fresh assessment of a fresh item (photos to erase; the bytes are shared, the erasure is not)."""
    item = new_item(client, actors.platform)
    files = photo_files(real_photos(1, offset=3))
    r = client.post(f"/v1/items/{item}/assessments", files=files, headers=bearer(actors.platform))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


Request = tuple[str, str, dict[str, Any]]
Builder = Callable[[TestClient, World, str], Request]

_counter = iter(range(10**6))


def _fresh_method() -> str:
    return f"inspection #{next(_counter)}"


MATRIX: list[tuple[str, Builder, tuple[int, int, int, int, int]]] = [
    # name, request builder, statuses for none / admin / platform / other / lab
    (
        "POST /v1/items",
        lambda c, w, r: ("POST", "/v1/items", {"json": {"category": "bag", "brand": "B", "model": "M"}}),
        (401, 403, 201, 201, 403),
    ),
    ("GET /v1/items/{id}", lambda c, w, r: ("GET", f"/v1/items/{w.item}", {}), (200, 200, 200, 200, 200)),
    ("GET /v1/items/{id}/trace", lambda c, w, r: ("GET", f"/v1/items/{w.item}/trace", {}), (200, 200, 200, 200, 200)),
    ("GET /v1/items/{id}/head", lambda c, w, r: ("GET", f"/v1/items/{w.item}/head", {}), (200, 200, 200, 200, 200)),
    (
        "POST /v1/items/{id}/assessments",
        lambda c, w, r: ("POST", f"/v1/items/{w.item}/assessments", {"files": photo_files(real_photos(1))}),
        (401, 403, 201, 403, 403),
    ),
    (
        "GET /v1/assessments/{id}",
        lambda c, w, r: ("GET", f"/v1/assessments/{w.assessment}", {}),
        (200, 200, 200, 200, 200),
    ),
    (
        "GET /v1/assessments/{id}/photos/{sha}",
        lambda c, w, r: ("GET", f"/v1/assessments/{w.assessment}/photos/{w.photo}", {}),
        (401, 403, 200, 403, 403),
    ),
    (
        "GET /v1/assessments/{id}/heatmaps/{sha}",
        lambda c, w, r: ("GET", f"/v1/assessments/{w.assessment}/heatmaps/{w.photo}", {}),
        (401, 403, 200, 403, 403),
    ),
    (
        "DELETE /v1/assessments/{id}/photos",
        lambda c, w, r: ("DELETE", f"/v1/assessments/{_assessment(c, w.actors)}/photos", {}),
        (401, 200, 200, 403, 403),
    ),
    (
        "POST /v1/labs",
        lambda c, w, r: (
            "POST",
            "/v1/labs",
            {"json": {"name": "L", "accreditation": "A", "public_key": "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="}},
        ),
        (401, 201, 403, 403, 403),
    ),
    ("GET /v1/labs/{id}", lambda c, w, r: ("GET", f"/v1/labs/{w.actors.lab_id}", {}), (200, 200, 200, 200, 200)),
    ("GET /v1/labs", lambda c, w, r: ("GET", "/v1/labs", {}), (200, 200, 200, 200, 200)),
    (
        "GET /v1/capture-guides/{category}",
        lambda c, w, r: ("GET", "/v1/capture-guides/watch", {}),
        (200, 200, 200, 200, 200),
    ),
    (
        "POST /v1/assessments/preview",
        lambda c, w, r: ("POST", "/v1/assessments/preview", {"files": photo_files(real_photos(1))}),
        (401, 403, 200, 200, 403),
    ),
    (
        "POST /v1/items/{id}/certificates",
        lambda c, w, r: (
            "POST",
            f"/v1/items/{w.item}/certificates",
            {"json": certificate_envelope(w.actors.lab_key, w.item, w.actors.lab_id, method=_fresh_method())},
        ),
        (401, 403, 403, 403, 201),
    ),
    (
        "GET /v1/certificates/{id}",
        lambda c, w, r: ("GET", f"/v1/certificates/{w.certificate}", {}),
        (200, 200, 200, 200, 200),
    ),
    (
        "POST /v1/certificates/{id}/revocation",
        lambda c, w, r: (
            "POST",
            f"/v1/certificates/{_certificate(c, w.actors, w.item, _fresh_method())}/revocation",
            {"json": {"reason": "re-examined"}},
        ),
        (401, 403, 403, 403, 201),
    ),
    (
        "POST /v1/items/{id}/custody",
        lambda c, w, r: ("POST", f"/v1/items/{w.item}/custody", {"json": {"event": "consigned"}}),
        (401, 403, 201, 403, 403),
    ),
    (
        "POST /v1/listings",
        lambda c, w, r: (
            "POST",
            "/v1/listings",
            {"json": {"item_id": new_item(c, w.actors.platform), "title": "T", "price": "1", "currency": "EUR"}},
        ),
        (401, 403, 201, 403, 403),
    ),
    (
        "POST /v1/listings/{id}/close",
        lambda c, w, r: (
            "POST",
            f"/v1/listings/{_listing(c, w.actors, new_item(c, w.actors.platform))}/close",
            {"json": {"reason": "sold"}},
        ),
        (401, 403, 200, 403, 403),
    ),
    ("GET /v1/listings/{id}", lambda c, w, r: ("GET", f"/v1/listings/{w.listing}", {}), (200, 200, 200, 200, 200)),
    ("GET /v1/models", lambda c, w, r: ("GET", "/v1/models", {}), (200, 200, 200, 200, 200)),
    (
        "GET /v1/models/{sha}/assessments",
        lambda c, w, r: ("GET", f"/v1/models/{w.model}/assessments", {}),
        (200, 200, 200, 200, 200),
    ),
    (
        "GET /v1/models/{sha}/shadow",
        lambda c, w, r: ("GET", f"/v1/models/{w.model}/shadow", {}),
        (200, 200, 200, 200, 200),
    ),
    ("GET /v1/log/checkpoint", lambda c, w, r: ("GET", "/v1/log/checkpoint", {}), (200, 200, 200, 200, 200)),
    ("GET /checkpoint", lambda c, w, r: ("GET", "/checkpoint", {}), (200, 200, 200, 200, 200)),
    ("GET /tile/{tile_path}", lambda c, w, r: ("GET", "/tile/0/000.p/1", {}), (200, 200, 200, 200, 200)),
    ("GET /v1/log/key", lambda c, w, r: ("GET", "/v1/log/key", {}), (200, 200, 200, 200, 200)),
    (
        "GET /v1/log/proof/inclusion",
        lambda c, w, r: ("GET", "/v1/log/proof/inclusion", {"params": {"index": 0}}),
        (200, 200, 200, 200, 200),
    ),
    (
        "GET /v1/log/proof/consistency",
        lambda c, w, r: ("GET", "/v1/log/proof/consistency", {"params": {"from": 1, "to": 2}}),
        (200, 200, 200, 200, 200),
    ),
    (
        "GET /v1/log/entries",
        lambda c, w, r: ("GET", "/v1/log/entries", {"params": {"start": 0, "end": 5}}),
        (200, 200, 200, 200, 200),
    ),
    (
        "POST /v1/keys",
        lambda c, w, r: ("POST", "/v1/keys", {"json": {"role": "platform", "name": "P"}}),
        (401, 201, 403, 403, 403),
    ),
    ("GET /healthz", lambda c, w, r: ("GET", "/healthz", {}), (200, 200, 200, 200, 200)),
    ("GET /readyz", lambda c, w, r: ("GET", "/readyz", {}), (200, 200, 200, 200, 200)),
    ("GET /metrics", lambda c, w, r: ("GET", "/metrics", {}), (200, 200, 200, 200, 200)),
]


def _key(actors: Actors, role: str) -> dict[str, str]:
    keys = {"admin": actors.admin, "platform": actors.platform, "other": actors.platform2, "lab": actors.lab}
    return {} if role == "none" else bearer(keys[role])


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("name", "build", "expected"), MATRIX, ids=[m[0] for m in MATRIX])
def test_role_matrix(
    client: TestClient, world: World, name: str, build: Builder, expected: tuple[int, ...], role: str
) -> None:
    method, url, kwargs = build(client, world, role)
    r = client.request(method, url, headers=_key(world.actors, role), **kwargs)
    want = expected[ROLES.index(role)]
    assert r.status_code == want, f"{name} as {role}: {r.status_code} {r.text[:300]}"
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["status"] == r.status_code
    if r.status_code == 401:
        assert r.headers["www-authenticate"].startswith("Bearer")


def test_every_route_is_in_the_matrix(client: TestClient) -> None:
    import re

    paths = client.get("/openapi.json").json()["paths"]
    routes = {f"{m.upper()} {re.sub(r'{[a-z_0-9]+}', '{}', p)}" for p, ops in paths.items() for m in ops}
    named = {re.sub(r"{[a-z_0-9]+}", "{}", m[0]) for m in MATRIX}
    assert routes == named


@pytest.mark.parametrize(
    "header",
    [
        "Bearer nonsense",
        "Bearer key_0123456789abcdef.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "Basic dXNlcjpwYXNz",
        "Bearer ",
    ],
)
def test_bad_keys_are_401(client: TestClient, header: str) -> None:
    r = client.post(
        "/v1/items", json={"category": "bag", "brand": "B", "model": "M"}, headers={"Authorization": header}
    )
    assert r.status_code == 401
    assert r.json()["code"] == "unauthenticated"


def test_revoked_key_is_401(client: TestClient, actors: Actors) -> None:
    from authenticator.store.keys import create_key, revoke_key

    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    issued = create_key(ctx.engine, "platform", "short-lived")
    assert (
        client.post(
            "/v1/items", json={"category": "bag", "brand": "B", "model": "M"}, headers=bearer(issued.api_key)
        ).status_code
        == 201
    )
    revoke_key(ctx.engine, issued.key_id)
    assert (
        client.post(
            "/v1/items", json={"category": "bag", "brand": "B", "model": "M"}, headers=bearer(issued.api_key)
        ).status_code
        == 401
    )
