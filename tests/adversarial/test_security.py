"""Security pass: keys hashed and never logged, constant-time comparison, upload rate limits, and
the role matrix of the calls the web pages make."""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from authenticator.config import Settings
from authenticator.store import keys
from authenticator.store.tables import api_keys
from tests.api_helpers import (
    Actors,
    bearer,
    certificate_envelope,
    make_actors,
    new_item,
    photo_files,
    real_photos,
    register_lab,
)
from tests.live_server import bootstrap_admin, run_cli, server_env, start_server

# --- API keys -------------------------------------------------------------------------------


def _journey(base: str, admin: str) -> list[str]:
    """Every kind of call a deployment sees, with every kind of key; returns the keys issued."""
    issued = [admin]
    with httpx.Client(base_url=base, timeout=60) as http:
        platform = http.post("/v1/keys", json={"role": "platform", "name": "Acme"}, headers=bearer(admin)).json()
        other = http.post("/v1/keys", json={"role": "platform", "name": "Other"}, headers=bearer(admin)).json()
        lab, lab_id, lab_key = register_lab(http, admin, "Geneva Lab")  # type: ignore[arg-type]
        issued += [platform["api_key"], other["api_key"], lab]
        p = bearer(platform["api_key"])
        item = http.post("/v1/items", json={"category": "bag", "brand": "Hermès", "model": "Birkin"}, headers=p)
        item_id = item.json()["id"]
        r = http.post(
            f"/v1/items/{item_id}/assessments",
            params={"heatmaps": "true"},
            files=photo_files(real_photos(1)),
            headers={**p, "Idempotency-Key": "journey-1"},
        )
        assert r.status_code == 201, r.text
        env = certificate_envelope(lab_key, item_id, lab_id)
        cert = http.post(f"/v1/items/{item_id}/certificates", json=env, headers=bearer(lab))
        assert cert.status_code == 201, cert.text
        revoked = http.post(
            f"/v1/certificates/{cert.json()['id']}/revocation", json={"reason": "x"}, headers=bearer(lab)
        )
        assert revoked.status_code == 201, revoked.text
        listing = http.post(
            "/v1/listings", json={"item_id": item_id, "title": "Birkin", "price": "10", "currency": "EUR"}, headers=p
        )
        assert listing.status_code == 201, listing.text
        http.get(f"/v1/listings/{listing.json()['id']}")
        http.get(f"/v1/items/{item_id}/trace")
        http.get(f"/t/{item_id}")
        # Refusals: a wrong secret, another platform, a key in the wrong place.
        wrong = platform["api_key"][:-4] + ("AAAA" if not platform["api_key"].endswith("AAAA") else "BBBB")
        assert http.post("/v1/items", json={"category": "bag"}, headers=bearer(wrong)).status_code == 401
        other_h = bearer(other["api_key"])
        assert http.post(f"/v1/items/{item_id}/custody", json={"event": "sold"}, headers=other_h).status_code == 403
        http.get(f"/v1/items/{item_id}", params={"api_key": platform["api_key"]})  # a key in the wrong place
        http.get("/v1/models", headers=p)
    return issued


def test_keys_are_stored_hashed_and_never_logged(api_tiny_weights: Path, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", weights_dir=api_tiny_weights)
    env = server_env(settings)
    admin = bootstrap_admin(env)
    server = start_server(env, tmp_path / "server.log", workers=1, log_level="debug")
    try:
        issued = _journey(server.base, admin)
    finally:
        server.stop()
    log = server.log_text()
    assert "POST /v1/items" in log and "401" in log  # the access log is there and was written
    assert "api_key=key_" in log and ".<redacted>" in log  # the key sent in a URL, logged without its secret
    secrets = [k.split(".", 1)[1] for k in issued]
    for key, secret in zip(issued, secrets, strict=True):
        assert key not in log and secret not in log
    # The database holds the SHA-256 of each secret and never the secret itself (WAL included).
    raw = b"".join(p.read_bytes() for p in settings.data_dir.glob("authenticator.db*"))
    with sqlite3.connect(settings.data_dir / "authenticator.db") as db:
        stored = {bytes(row[0]) for row in db.execute(f"SELECT secret_sha256 FROM {api_keys.name}")}
    for secret in secrets:
        assert secret.encode() not in raw
        assert base64.b64encode(secret.encode()) not in raw
        assert hashlib.sha256(secret.encode()).digest() in stored


def test_keys_are_compared_in_constant_time(client: TestClient, actors: Actors) -> None:
    """``hmac.compare_digest`` on the hash, and a hash is compared even for an unknown key id, so
    neither the answer nor the work done tells a wrong secret from an unknown key."""
    source = inspect.getsource(keys.authenticate)
    assert "hmac.compare_digest(" in source and "_DUMMY_HASH" in source
    key_id, secret = actors.platform.split(".", 1)
    wrong_secret = f"{key_id}.{'A' * len(secret)}"
    unknown_id = f"key_{'0' * 16}.{secret}"
    answers = [client.post("/v1/items", json={}, headers=bearer(k)) for k in (wrong_secret, unknown_id, "junk")]
    assert {r.status_code for r in answers} == {401}
    assert len({r.json()["detail"] for r in answers}) == 1


def test_rotating_a_key_keeps_the_principal_and_refuses_the_old_key(api_tiny_weights: Path, tmp_path: Path) -> None:
    """``authenticator keys rotate``: the platform keeps its items under its new key."""
    env = server_env(Settings(data_dir=tmp_path / "data", weights_dir=api_tiny_weights))
    admin = bootstrap_admin(env)
    with TestClient(create_app(Settings(data_dir=tmp_path / "data", weights_dir=api_tiny_weights))) as client:
        r = client.post("/v1/keys", json={"role": "platform", "name": "Acme"}, headers=bearer(admin))
        old = r.json()
        item = new_item(client, old["api_key"])
    res = run_cli(["keys", "rotate", old["key_id"]], env)
    assert res.returncode == 0, res.stderr
    new = json.loads(res.stdout)
    assert new["principal_id"] == old["principal_id"] and new["revoked"] == old["key_id"]
    assert new["api_key"] != old["api_key"]
    with TestClient(create_app(Settings(data_dir=tmp_path / "data", weights_dir=api_tiny_weights))) as client:
        custody = {"event": "received_for_consignment"}
        assert client.post(f"/v1/items/{item}/custody", json=custody, headers=bearer(old["api_key"])).status_code == 401
        assert client.post(f"/v1/items/{item}/custody", json=custody, headers=bearer(new["api_key"])).status_code == 201
    assert run_cli(["keys", "rotate", old["key_id"]], env).returncode == 2  # already revoked


# --- Upload rate limit ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited(api_tiny_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("limited"), weights_dir=api_tiny_weights, upload_rate_per_minute=3
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def test_uploads_over_the_rate_get_429_with_retry_after(limited: TestClient) -> None:
    actors = make_actors(limited)
    item = new_item(limited, actors.platform)
    ctx = limited.app.state.ctx  # type: ignore[attr-defined]
    files = photo_files(real_photos(1, offset=3))
    url = f"/v1/items/{item}/assessments"
    # Someone who knows the key id but not the secret cannot spend the platform's allowance.
    key_id = actors.platform.split(".", 1)[0]
    for _ in range(5):
        assert limited.post(url, files=files, headers=bearer(f"{key_id}.{'x' * 43}")).status_code in (401, 429)
    # Three different photo sets (the same set twice would be one verdict, 409).
    sets = [photo_files(real_photos(1, offset=3 + k)) for k in range(3)]
    assert [limited.post(url, files=f, headers=bearer(actors.platform)).status_code for f in sets] == [201] * 3
    size = ctx.ledger.size()
    r = limited.post(url, files=files, headers=bearer(actors.platform))
    assert r.status_code == 429, r.text
    assert r.headers["content-type"].startswith("application/problem+json") and r.json()["code"] == "rate_limited"
    assert 1 <= int(r.headers["Retry-After"]) <= 20
    env = certificate_envelope(actors.lab_key, item, actors.lab_id)
    assert limited.post(f"/v1/items/{item}/certificates", json=env, headers=bearer(actors.platform)).status_code == 429
    assert ctx.ledger.size() == size  # a refused upload records nothing
    # Other keys keep their own allowance; reads are not limited.
    assert limited.post(f"/v1/items/{item}/certificates", json=env, headers=bearer(actors.lab)).status_code == 201
    assert limited.get(f"/v1/items/{item}/trace").status_code == 200
    assert (
        limited.post(
            "/v1/items", json={"category": "bag", "brand": "b", "model": "m"}, headers=bearer(actors.platform)
        ).status_code
        == 201
    )


def test_rate_limit_can_be_turned_off(api_tiny_weights: Path, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, weights_dir=api_tiny_weights, upload_rate_per_minute=0)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        actors = make_actors(c)
        item = new_item(c, actors.platform)
        for k in range(6):
            env = certificate_envelope(actors.lab_key, item, actors.lab_id, method=f"inspection {k}")
            assert c.post(f"/v1/items/{item}/certificates", json=env, headers=bearer(actors.lab)).status_code == 201


# --- The web pages' calls ---------------------------------------------------------------------

PAGE_ROLES = ("none", "admin", "platform", "other", "lab")


def _who(actors: Actors, role: str) -> dict[str, str]:
    key = {"admin": actors.admin, "platform": actors.platform, "other": actors.platform2, "lab": actors.lab}.get(role)
    return bearer(key) if key else {}


def test_role_matrix_of_the_pages_calls(client: TestClient, actors: Actors) -> None:
    """What ``assess.js`` and ``trace-page.js`` send, exactly as they send it, by every role;
    and the pages themselves, public for everyone."""
    item = new_item(client, actors.platform)
    files = photo_files(real_photos(1, offset=1))
    seen: dict[str, list[int]] = {}
    heatmap = ""
    for n, role in enumerate(PAGE_ROLES):
        h = _who(actors, role)
        register = client.post(
            "/v1/items",
            json={"category": "bag", "brand": "Hermès", "model": "Kelly"},
            headers={**h, "Accept": "application/json"},
        )
        upload = client.post(
            f"/v1/items/{item}/assessments?heatmaps=true",
            files=files,
            headers={**h, "Accept": "application/json", "Idempotency-Key": f"page-{n}"},
        )
        if upload.status_code == 201:
            heatmap = next(p["heatmap_url"] for p in upload.json()["photos"] if p["heatmap_url"])
        seen[role] = [register.status_code, upload.status_code]
    for role in PAGE_ROLES:
        h = _who(actors, role)
        seen[role].append(client.get(heatmap, headers=h).status_code)
        seen[role].append(
            client.get(f"/v1/items/{item}/trace", headers={**h, "Accept": "application/json"}).status_code
        )
        seen[role] += [client.get(p, headers=h).status_code for p in (f"/t/{item}", "/assess", "/")]
    assert seen == {
        # POST /v1/items, POST assessments, GET heat map, GET trace, /t/{item}, /assess, /
        "none": [401, 401, 401, 200, 200, 200, 200],
        "admin": [403, 403, 403, 200, 200, 200, 200],
        "platform": [201, 201, 200, 200, 200, 200, 200],
        "other": [201, 403, 403, 200, 200, 200, 200],
        "lab": [403, 403, 403, 200, 200, 200, 200],
    }
