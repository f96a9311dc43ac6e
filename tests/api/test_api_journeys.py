"""End-to-end journeys over HTTP through the real app, on SQLite and on PostgreSQL.

A platform registers an item and uploads real photos; the verdict's receipt verifies; a lab
certifies (the badge changes), another lab cannot revoke, the issuing lab revokes (warning);
the buyer's trace verifies with ``authenticator trace verify`` and an altered one does not.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from api.app import create_app
from authenticator.config import Settings
from authenticator.ledger.checkpoint import verify_checkpoint
from authenticator.ledger.entries import parse_entry
from authenticator.ledger.merkle import hash_leaf, verify_inclusion
from authenticator.trace_verify import verify_trace
from tests.api_helpers import (
    REAL as REAL_DIR,
)
from tests.api_helpers import (
    Actors,
    bearer,
    certificate_envelope,
    log_size,
    new_item,
    photo_files,
    real_photos,
)

CLI = [str(Path(sys.executable).parent / "authenticator")]


def b64d(s: str) -> bytes:
    return base64.b64decode(s, validate=True)


def check_proof(event: dict[str, Any], checkpoint: str, verifier_key: str) -> dict[str, Any]:
    """Verify one entry's inclusion against a signed checkpoint; return the parsed entry."""
    cp = verify_checkpoint(checkpoint, verifier_key)
    data = b64d(event["entry"])
    leaf = hash_leaf(data)
    assert base64.b64encode(leaf).decode() == event["leaf_hash"]
    verify_inclusion(event["index"], cp.size, leaf, [b64d(h) for h in event["inclusion_proof"]], cp.root_hash)
    return parse_entry(data).to_dict()


def check_receipt(receipt: dict[str, Any], verifier_key: str) -> dict[str, Any]:
    cp = verify_checkpoint(receipt["checkpoint"], verifier_key)
    assert cp.size == receipt["tree_size"]
    return check_proof(receipt, receipt["checkpoint"], verifier_key)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


def test_full_journey(client: TestClient, actors: Actors, tmp_path: Path) -> None:
    vkey = client.get("/v1/log/key").json()["verifier_key"]
    item = new_item(client, actors.platform)
    old_checkpoint = client.get("/v1/log/checkpoint").text

    photos = real_photos(3)
    r = client.post(f"/v1/items/{item}/assessments", files=photo_files(photos), headers=bearer(actors.platform))
    assert r.status_code == 201, r.text
    verdict = r.json()
    entry = check_receipt(verdict["receipt"], vkey)
    assert entry["type"] == "assessment.recorded" and entry["item"] == item
    assert entry["body"]["photo_sha256"] == [hashlib.sha256(p.read_bytes()).hexdigest() for p in photos]
    assert entry["body"]["decision"] == verdict["decision"]
    models = client.get("/v1/models").json()
    assert verdict["model"]["sha256"] in [m["sha256"] for m in models]

    again = client.get(f"/v1/assessments/{verdict['id']}").json()
    check_receipt(again["receipt"], vkey)
    for key in ("id", "decision", "probability_authentic", "reasons", "thresholds", "model", "index"):
        assert again[key] == verdict[key]

    # The owner reads its photos back; nobody else does.
    sha = verdict["photos"][0]["sha256"]
    own = client.get(f"/v1/assessments/{verdict['id']}/photos/{sha}", headers=bearer(actors.platform))
    assert own.status_code == 200 and own.content == photos[0].read_bytes()
    assert (
        client.get(f"/v1/assessments/{verdict['id']}/photos/{sha}", headers=bearer(actors.platform2)).status_code == 403
    )

    expected_badge = {"authentic": "ai_verified", "counterfeit": "warning", "inconclusive": "inconclusive"}
    r = client.post(
        "/v1/listings",
        json={"item_id": item, "title": "Hermès Birkin 30", "price": "45000.00", "currency": "EUR"},
        headers=bearer(actors.platform),
    )
    assert r.status_code == 201, r.text
    listing = r.json()
    assert listing["badge"]["level"] == expected_badge[verdict["decision"]]
    assert (
        client.post(
            "/v1/listings",
            json={"item_id": item, "title": "stolen", "price": "1", "currency": "EUR"},
            headers=bearer(actors.platform2),
        ).status_code
        == 403
    )

    # A lab certifies: the badge becomes lab_certified, with the certificate's entry as evidence.
    env = certificate_envelope(actors.lab_key, item, actors.lab_id)
    r = client.post(f"/v1/items/{item}/certificates", json=env, headers=bearer(actors.lab))
    assert r.status_code == 201, r.text
    cert = r.json()
    assert check_receipt(cert["receipt"], vkey)["type"] == "certificate.attached"
    shown = client.get(f"/v1/listings/{listing['id']}").json()
    assert shown["badge"]["level"] == "lab_certified"
    assert cert["attached_index"] in shown["badge"]["evidence"]
    proved = {e["index"] for e in shown["proof"]["events"]}
    assert cert["attached_index"] in proved
    for event in shown["proof"]["events"]:
        check_proof(event, shown["proof"]["checkpoint"], vkey)
    assert client.post(f"/v1/items/{item}/certificates", json=env, headers=bearer(actors.lab)).status_code == 409

    # Another lab cannot revoke it; the issuing lab can, once; the badge turns to a warning.
    revoke = f"/v1/certificates/{cert['id']}/revocation"
    assert client.post(revoke, json={"reason": "not mine"}, headers=bearer(actors.lab2)).status_code == 403
    assert client.post(revoke, json={"reason": "x"}, headers=bearer(actors.platform)).status_code == 403
    r = client.post(revoke, json={"reason": "Stitching re-examined: replica."}, headers=bearer(actors.lab))
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "revoked"
    assert client.post(revoke, json={"reason": "again"}, headers=bearer(actors.lab)).status_code == 409
    assert client.get(f"/v1/listings/{listing['id']}").json()["badge"]["level"] == "warning"
    assert client.get(f"/v1/items/{item}").json()["badge"]["level"] == "warning"

    r = client.post(
        f"/v1/items/{item}/custody", json={"event": "sold", "counterparty": "buyer-1"}, headers=bearer(actors.platform)
    )
    assert r.status_code == 201, r.text
    assert "buyer-1" not in base64.b64decode(r.json()["receipt"]["entry"]).decode()
    r = client.post(f"/v1/listings/{listing['id']}/close", json={"reason": "sold"}, headers=bearer(actors.platform))
    assert r.status_code == 200 and r.json()["status"] == "closed"

    # The buyer's trace: every event, in order, verifiable offline.
    trace = client.get(f"/v1/items/{item}/trace").json()
    assert set(trace) == {"item_id", "checkpoint", "verifier_key", "item_head", "events"}
    types = [parse_entry(b64d(e["entry"])).type for e in trace["events"]]
    assert types == [
        "item.registered",
        "assessment.recorded",
        "listing.published",
        "certificate.attached",
        "certificate.revoked",
        "custody.transferred",
        "listing.closed",
    ]
    report = verify_trace(trace, vkey)
    assert report.ok, report.all_failures()

    good = tmp_path / "trace.json"
    good.write_text(json.dumps(trace))
    res = run_cli("trace", "verify", str(good), "--key", vkey)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "trace verified" in res.stdout

    # Consistency with a checkpoint the buyer kept from before.
    with_since = client.get(f"/v1/items/{item}/trace", params={"since": int(old_checkpoint.split("\n")[1])}).json()
    assert verify_trace(with_since, vkey, old_checkpoint).ok
    kept = tmp_path / "old.note"
    kept.write_text(old_checkpoint)
    with_file = tmp_path / "trace-since.json"
    with_file.write_text(json.dumps(with_since))
    res = run_cli("trace", "verify", str(with_file), "--key", vkey, "--checkpoint", str(kept))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "consistent with the old checkpoint" in res.stdout

    # Altered traces fail, naming what failed.
    flipped = copy.deepcopy(trace)
    raw = bytearray(b64d(flipped["events"][3]["entry"]))
    raw[raw.index(b"authentic")] ^= 0x01
    flipped["events"][3]["entry"] = base64.b64encode(bytes(raw)).decode()
    dropped = copy.deepcopy(trace)
    del dropped["events"][4]
    resigned = copy.deepcopy(trace)
    resigned["checkpoint"] = resigned["checkpoint"][:-6] + "AAAA=\n"  # last bytes of the signature
    for name, bad, needle in (
        ("flipped", flipped, "leaf hash does not match"),
        ("dropped", dropped, "hash chain"),
        ("bad-signature", resigned, "checkpoint"),
    ):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(bad))
        res = run_cli("trace", "verify", str(path), "--key", vkey)
        assert res.returncode == 1, (name, res.stdout, res.stderr)
        assert needle in res.stdout, (name, res.stdout)
        assert not verify_trace(bad, vkey).ok


def test_certificate_refusals(client: TestClient, actors: Actors) -> None:
    item = new_item(client, actors.platform)
    before = log_size(client)
    # Signed by another lab's key: the signature does not verify against the caller's key.
    forged = certificate_envelope(actors.lab2_key, item, actors.lab_id)
    r = client.post(f"/v1/items/{item}/certificates", json=forged, headers=bearer(actors.lab))
    assert r.status_code == 422 and r.json()["code"] == "invalid_signature"
    # Issued in another lab's name.
    other = certificate_envelope(actors.lab_key, item, actors.lab2_id)
    assert client.post(f"/v1/items/{item}/certificates", json=other, headers=bearer(actors.lab)).status_code == 403
    # Unknown item.
    ghost = certificate_envelope(actors.lab_key, "itm_nope", actors.lab_id)
    assert client.post("/v1/items/itm_nope/certificates", json=ghost, headers=bearer(actors.lab)).status_code == 404
    # Certificate for another item than the URL's.
    assert client.post(f"/v1/items/{item}/certificates", json=ghost, headers=bearer(actors.lab)).status_code == 422
    # A tampered payload.
    env = certificate_envelope(actors.lab_key, item, actors.lab_id)
    payload = json.loads(b64d(env["payload"]))
    payload["outcome"] = "counterfeit"
    env["payload"] = base64.b64encode(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()).decode()
    assert client.post(f"/v1/items/{item}/certificates", json=env, headers=bearer(actors.lab)).status_code == 422
    assert log_size(client) == before


def test_idempotent_retry_makes_one_entry(client: TestClient, actors: Actors) -> None:
    item = new_item(client, actors.platform)
    files = photo_files(real_photos(2, offset=3))
    headers = {**bearer(actors.platform), "Idempotency-Key": f"retry-{item}"}
    first = client.post(f"/v1/items/{item}/assessments", files=files, headers=headers)
    assert first.status_code == 201, first.text
    size = log_size(client)
    second = client.post(f"/v1/items/{item}/assessments", files=files, headers=headers)
    assert second.status_code == 201
    assert second.json() == first.json()
    assert log_size(client) == size
    other = photo_files(real_photos(1, offset=6))
    r = client.post(f"/v1/items/{item}/assessments", files=other, headers=headers)
    assert r.status_code == 409 and r.json()["code"] == "idempotency_conflict"
    assert log_size(client) == size


def test_upload_over_limit_is_413_and_appends_nothing(
    api_settings: Settings, actors: Actors, client: TestClient
) -> None:
    item = new_item(client, actors.platform)
    small = api_settings.model_copy(update={"api_max_body_bytes": 60_000})
    photos = real_photos(4, offset=7)
    assert sum(p.stat().st_size for p in photos) > 60_000
    with TestClient(create_app(small)) as limited:
        before = log_size(limited)
        r = limited.post(f"/v1/items/{item}/assessments", files=photo_files(photos), headers=bearer(actors.platform))
        assert r.status_code == 413
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "payload_too_large"

        def chunks() -> Any:  # no Content-Length: the limit is enforced while streaming
            yield b'--x\r\nContent-Disposition: form-data; name="photos"; filename="a.jpg"\r\n\r\n'
            for _ in range(40):
                yield b"\0" * 8192

        r = limited.post(
            f"/v1/items/{item}/assessments",
            content=chunks(),
            headers={**bearer(actors.platform), "Content-Type": "multipart/form-data; boundary=x"},
        )
        assert r.status_code == 413
        assert log_size(limited) == before


def test_projections_rebuild_answers_the_same(client: TestClient, actors: Actors, tmp_path: Path) -> None:
    item = new_item(client, actors.platform)
    r = client.post(
        f"/v1/items/{item}/assessments", files=photo_files(real_photos(1, offset=1)), headers=bearer(actors.platform)
    )
    assessment = r.json()["id"]
    env = certificate_envelope(actors.lab_key, item, actors.lab_id, method="UV and microscope")
    cert = client.post(f"/v1/items/{item}/certificates", json=env, headers=bearer(actors.lab)).json()["id"]
    listing = client.post(
        "/v1/listings",
        json={"item_id": item, "title": "Birkin 30 — rebuilt", "price": "100.5", "currency": "CHF"},
        headers=bearer(actors.platform),
    ).json()["id"]
    models = client.get("/v1/models").json()
    urls = [
        f"/v1/items/{item}",
        f"/v1/items/{item}/trace",
        f"/v1/assessments/{assessment}",
        f"/v1/certificates/{cert}",
        f"/v1/listings/{listing}",
        "/v1/models",
        f"/v1/models/{models[0]['sha256']}/assessments",
    ]
    before = {u: client.get(u).json() for u in urls}
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    with ctx.engine.begin() as conn:  # wreck the projections so the rebuild has work to do
        for table in ("proj_items", "proj_assessments", "proj_certificates", "proj_listings", "proj_models"):
            conn.exec_driver_sql(f"DELETE FROM {table}")
    assert client.get(f"/v1/items/{item}").status_code == 404
    env_vars = {"AUTHENTICATOR_DATA_DIR": str(ctx.settings.data_dir)}
    db = ctx.settings.resolved_database_url
    res = subprocess.run(
        [*CLI, "projections", "rebuild", "--db", db],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, **env_vars},
    )
    assert res.returncode == 0, res.stdout + res.stderr
    after = {u: client.get(u).json() for u in urls}
    assert after == before


def test_idempotent_retry_after_a_dead_first_run(client: TestClient, actors: Actors) -> None:
    """A key recorded with its entry, whose answer was never stored (the process died between
    the commit and the answer), is answered from the log; a claim an older version left for a
    run that never appended is refused with 409 rather than guessed at."""
    from authenticator.store import idempotency

    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    item = new_item(client, actors.platform)
    files = photo_files(real_photos(1, offset=5))
    headers = {**bearer(actors.platform), "Idempotency-Key": f"dead-{item}"}
    first = client.post(f"/v1/items/{item}/assessments", files=files, headers=headers).json()
    size = log_size(client)
    with ctx.engine.begin() as conn:  # as if the process died after appending, before answering
        conn.execute(
            idempotency.idempotency.update()
            .where(idempotency.idempotency.c.key == f"dead-{item}")
            .values(status_code=None, response=None)
        )
    again = client.post(f"/v1/items/{item}/assessments", files=files, headers=headers)
    assert again.status_code == 201
    assert again.json()["id"] == first["id"] and again.json()["index"] == first["index"]
    assert log_size(client) == size

    principal = client.get(f"/v1/items/{item}").json()["platform"]
    with ctx.engine.begin() as conn:
        conn.execute(
            idempotency.idempotency.insert().values(
                principal_id=principal,
                key=f"dead2-{item}",
                fingerprint=idempotency_fingerprint(item, files),
                resource_id="asm_claimedbyadeadrun0000",
                created_at="2000-01-01T00:00:00.000000Z",
            )
        )
    r = client.post(
        f"/v1/items/{item}/assessments", files=files, headers={**headers, "Idempotency-Key": f"dead2-{item}"}
    )
    assert r.status_code == 409 and r.json()["code"] == "idempotency_conflict", r.text
    assert log_size(client) == size


def idempotency_fingerprint(item: str, files: list[Any]) -> str:
    from authenticator.services.assessments import Upload, _fingerprint

    return _fingerprint(item, [Upload(f[1][0], f[1][1]) for f in files], False)


def test_shipped_model_through_the_api(tmp_path: Path) -> None:
    """The real weights in weights/: a verdict on real photos, registered model, matching badge."""
    from authenticator.store.keys import create_key

    settings = Settings(data_dir=tmp_path / "data", database_url=None)
    card = settings.weights_dir / f"{settings.model_name}.card.json"
    assert card.is_file(), "the shipped model is missing from weights/"
    with TestClient(create_app(settings)) as c:
        platform = create_key(c.app.state.ctx.engine, "platform", "p").api_key  # type: ignore[attr-defined]
        vkey = c.get("/v1/log/key").json()["verifier_key"]
        item = new_item(c, platform, category="sneaker")
        aj1 = sorted((REAL_DIR / "zhengwu123-aj1" / "authentic").iterdir())[:4]
        r = c.post(f"/v1/items/{item}/assessments", files=photo_files(aj1), headers=bearer(platform))
        assert r.status_code == 201, r.text
        verdict = r.json()
        check_receipt(verdict["receipt"], vkey)
        [model] = c.get("/v1/models").json()
        assert verdict["model"]["sha256"] == model["sha256"] == json.loads(card.read_text())["sha256"]
        assert all(
            p["probability_authentic"] is None or 0 <= p["probability_authentic"] <= 1 for p in verdict["photos"]
        )
        expected = {"authentic": "ai_verified", "counterfeit": "warning", "inconclusive": "inconclusive"}
        assert c.get(f"/v1/items/{item}").json()["badge"]["level"] == expected[verdict["decision"]]
