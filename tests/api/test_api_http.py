"""The API over a real socket (uvicorn on a free loopback port): errors as problem+json, the
log endpoints, ``trace verify`` against a URL, and schemathesis against ``/openapi.json``."""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.app import create_app
from authenticator.config import Settings
from authenticator.ledger.checkpoint import verify_checkpoint
from authenticator.ledger.merkle import hash_leaf, verify_consistency, verify_inclusion
from tests.api_helpers import bearer, certificate_envelope, photo_files, real_photos, register_lab
from tests.live_server import free_port, serving_in_thread
from tests.vision_tiny_model import write_tiny_model

CLI = str(Path(sys.executable).parent / "authenticator")


@dataclass
class Live:
    base: str
    admin: str
    platform: str
    item: str
    vkey: str


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("live")
    write_tiny_model(root / "weights")
    app = create_app(Settings(data_dir=root / "data", weights_dir=root / "weights", database_url=None))
    with serving_in_thread(app) as base:
        from authenticator.store.keys import create_key

        admin = create_key(app.state.ctx.engine, "admin", "ops").api_key
        with httpx.Client(base_url=base) as http:
            platform = http.post("/v1/keys", json={"role": "platform", "name": "P"}, headers=bearer(admin)).json()
            item = http.post(
                "/v1/items",
                json={"category": "sneaker", "brand": "Nike", "model": "AJ1"},
                headers=bearer(platform["api_key"]),
            ).json()["id"]
            vkey = http.get("/v1/log/key").json()["verifier_key"]
        yield Live(base, admin, platform["api_key"], item, vkey)


def _is_problem(r: httpx.Response, status: int) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["type"].startswith("https://") and body["title"] and body["detail"]
    assert "Traceback" not in r.text and 'File "' not in r.text
    return dict(body)


def test_errors_are_problem_json(live: Live) -> None:
    h = bearer(live.platform)
    with httpx.Client(base_url=live.base) as http:
        _is_problem(http.get("/v1/nothing"), 404)
        _is_problem(http.get("/v1/items/itm_missing"), 404)
        _is_problem(http.delete("/v1/items"), 405)
        _is_problem(http.post("/v1/items", json={"category": "car"}, headers=h), 422)
        _is_problem(
            http.post("/v1/items", content=b"{not json", headers={**h, "Content-Type": "application/json"}), 400
        )
        _is_problem(http.post("/v1/items", content=b"category=bag", headers={**h, "Content-Type": "text/plain"}), 415)
        _is_problem(http.post(f"/v1/items/{live.item}/assessments", json={"photos": []}, headers=h), 415)
        r = http.post(
            f"/v1/items/{live.item}/assessments", files=[("photos", ("a.txt", b"hello", "text/plain"))], headers=h
        )
        assert _is_problem(r, 415)["code"] == "unsupported_format"
        too_many = photo_files(real_photos(1)) * 13
        assert _is_problem(http.post(f"/v1/items/{live.item}/assessments", files=too_many, headers=h), 422)
        _is_problem(
            http.post(f"/v1/items/{live.item}/assessments", files=[("other", ("a", b"x", "image/png"))], headers=h), 422
        )
        _is_problem(http.get("/v1/log/entries", params={"start": 0, "end": 1001}), 422)
        _is_problem(http.get("/v1/log/proof/inclusion", params={"index": 10**6}), 404)
        _is_problem(http.get("/v1/log/proof/inclusion", params={"leaf_hash": "not base64!"}), 422)
        _is_problem(http.get("/v1/log/proof/consistency", params={"from": 5, "to": 2}), 422)
        _is_problem(http.get("/v1/items/itm_missing/trace"), 404)


def test_declared_oversize_body_is_refused_before_reading(live: Live) -> None:
    """Only the headers are sent: the 413 comes back without the server waiting for a gigabyte."""
    host, port = live.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            (
                f"POST /v1/items/{live.item}/assessments HTTP/1.1\r\nHost: {host}\r\n"
                f"Authorization: Bearer {live.platform}\r\n"
                "Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 1000000000\r\n\r\n"
            ).encode()
        )
        head = sock.recv(65536).decode("latin-1")
    assert head.startswith("HTTP/1.1 413"), head[:200]
    assert "application/problem+json" in head


def test_log_endpoints(live: Live) -> None:
    with httpx.Client(base_url=live.base) as http:
        note = http.get("/v1/log/checkpoint")
        assert note.headers["content-type"].startswith("text/plain")
        cp = verify_checkpoint(note.text, live.vkey)
        key = http.get("/v1/log/key").json()
        assert key == {"origin": cp.origin, "verifier_key": live.vkey, "witnesses": []}
        entries = http.get("/v1/log/entries", params={"start": 0, "end": cp.size}).json()
        assert [e["index"] for e in entries["entries"]] == list(range(cp.size))
        for e in entries["entries"]:
            leaf = hash_leaf(base64.b64decode(e["entry"]))
            assert base64.b64encode(leaf).decode() == e["leaf_hash"]
            by_index = http.get("/v1/log/proof/inclusion", params={"index": e["index"], "size": cp.size}).json()
            by_hash = http.get("/v1/log/proof/inclusion", params={"leaf_hash": e["leaf_hash"], "size": cp.size}).json()
            assert by_index == by_hash
            assert set(by_index) == {"index", "size", "leaf_hash", "hashes"}
            verify_inclusion(e["index"], cp.size, leaf, [base64.b64decode(h) for h in by_index["hashes"]], cp.root_hash)
        first = 1
        root1 = base64.b64decode(
            http.get("/v1/log/proof/inclusion", params={"index": 0, "size": 1}).json()["leaf_hash"]
        )
        proof = http.get("/v1/log/proof/consistency", params={"from": first, "to": cp.size}).json()
        assert set(proof) == {"from", "to", "hashes"} and proof["from"] == first and proof["to"] == cp.size
        verify_consistency(first, cp.size, [base64.b64decode(h) for h in proof["hashes"]], root1, cp.root_hash)


def test_trace_verify_against_a_running_server(live: Live, tmp_path: Path) -> None:
    with httpx.Client(base_url=live.base) as http:
        old = http.get("/v1/log/checkpoint").text
        lab_key, lab_id, key = _lab(http, live.admin)
        env = certificate_envelope(key, live.item, lab_id)
        r = http.post(f"/v1/items/{live.item}/certificates", json=env, headers=bearer(lab_key))
        assert r.status_code == 201, r.text
    url = f"{live.base}/v1/items/{live.item}/trace"
    res = subprocess.run([CLI, "trace", "verify", url, "--key", live.vkey], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    kept = tmp_path / "old.note"
    kept.write_text(old)
    res = subprocess.run(
        [CLI, "trace", "verify", url, "--key", live.vkey, "--checkpoint", str(kept), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert '"ok": true' in res.stdout
    # Another log's key: the checkpoint does not verify.
    other = "other.example/log+01020304+AQ" + "A" * 42 + "="
    res = subprocess.run([CLI, "trace", "verify", url, "--key", other], capture_output=True, text=True, timeout=120)
    assert res.returncode != 0


def _lab(http: httpx.Client, admin: str) -> tuple[str, str, object]:
    class _Shim:  # register_lab wants a client with .post; httpx.Client has it
        def __init__(self, c: httpx.Client) -> None:
            self.post = c.post

    api_key, lab_id, key = register_lab(_Shim(http), admin, "Live Lab")  # type: ignore[arg-type]
    return api_key, lab_id, key


def test_openapi_conformance(live: Live) -> None:
    """schemathesis against /openapi.json, called as a platform: no 5xx, every answer matches its
    documented schema. Bounded (a few examples per operation) to keep the suite fast."""
    schema = schemathesis.openapi.from_url(f"{live.base}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
        )
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(
                base_url=live.base,
                headers=bearer(live.platform),
                checks=[not_a_server_error, response_schema_conformance],
                timeout=60,
            )

        try:
            run()
        except Exception as exc:
            failures.append(f"{operation.label}: {str(exc)[:500]}")
    assert not failures, "\n".join(failures)


def test_every_operation_documents_an_example(live: Live) -> None:
    spec = httpx.get(f"{live.base}/openapi.json").json()
    components = spec["components"]["schemas"]

    def has_example(schema: dict[str, object] | None) -> bool:
        if not schema:
            return False
        if "$ref" in schema:
            target = components[str(schema["$ref"]).rsplit("/", 1)[-1]]
            return "examples" in target or "example" in target
        if schema.get("type") == "array":
            return has_example(schema.get("items"))  # type: ignore[arg-type]
        return "examples" in schema or "example" in schema

    missing = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            contents = [
                c for code, r in op["responses"].items() if code.startswith("2") for c in r.get("content", {}).values()
            ]
            if not any("example" in c or "examples" in c or has_example(c.get("schema")) for c in contents):
                missing.append(f"{method.upper()} {path}")
    assert not missing
    assert httpx.get(f"{live.base}/docs").status_code == 200


def test_real_answers_match_their_schemas(live: Live) -> None:
    """Every read and write on real objects, validated by schemathesis against the OpenAPI."""
    schema = schemathesis.openapi.from_url(f"{live.base}/openapi.json")
    checks = [not_a_server_error, response_schema_conformance]
    h = bearer(live.platform)
    with httpx.Client(base_url=live.base) as http:
        lab_key, lab_id, key = _lab(http, live.admin)
        item = http.post("/v1/items", json={"category": "bag", "brand": "Hermès", "model": "Kelly"}, headers=h).json()
    files = photo_files(real_photos(2, offset=8))

    def call(path: str, method: str, expect: int, headers: dict[str, str] | None = None, **kw: object) -> dict:
        case = schema[path][method].Case(**kw)  # type: ignore[arg-type]
        response = case.call_and_validate(base_url=live.base, headers=headers or {}, checks=checks, timeout=60)
        assert response.status_code == expect, (path, response.text[:300])
        return response.json() if "json" in response.headers.get("content-type", [""])[0] else {}

    item_id = item["id"]
    verdict = _assess_raw(live, item_id, files)
    call("/v1/items/{item_id}", "GET", 200, path_parameters={"item_id": item_id})
    call("/v1/items/{item_id}/trace", "GET", 200, path_parameters={"item_id": item_id}, query={"since": 1})
    call("/v1/assessments/{assessment_id}", "GET", 200, path_parameters={"assessment_id": verdict["id"]})
    cert = call(
        "/v1/items/{item_id}/certificates",
        "POST",
        201,
        bearer(lab_key),
        path_parameters={"item_id": item_id},
        body=certificate_envelope(key, item_id, lab_id),
        media_type="application/json",
    )
    call("/v1/certificates/{certificate_id}", "GET", 200, path_parameters={"certificate_id": cert["id"]})
    call("/v1/labs/{lab_id}", "GET", 200, path_parameters={"lab_id": lab_id})
    listing = call(
        "/v1/listings",
        "POST",
        201,
        h,
        body={"item_id": item_id, "title": "Kelly 28", "price": "9000", "currency": "EUR"},
        media_type="application/json",
    )
    call("/v1/listings/{listing_id}", "GET", 200, path_parameters={"listing_id": listing["id"]})
    call(
        "/v1/items/{item_id}/custody",
        "POST",
        201,
        h,
        path_parameters={"item_id": item_id},
        body={"event": "consigned", "counterparty": "seller-7"},
        media_type="application/json",
    )
    call(
        "/v1/certificates/{certificate_id}/revocation",
        "POST",
        201,
        bearer(lab_key),
        path_parameters={"certificate_id": cert["id"]},
        body={"reason": "re-examined"},
        media_type="application/json",
    )
    call(
        "/v1/listings/{listing_id}/close",
        "POST",
        200,
        h,
        path_parameters={"listing_id": listing["id"]},
        body={"reason": "withdrawn"},
        media_type="application/json",
    )
    erased = {"assessment_id": verdict["id"]}
    call("/v1/assessments/{assessment_id}/photos", "DELETE", 200, h, path_parameters=erased, query={"reason": "x"})
    call("/v1/assessments/{assessment_id}", "GET", 200, path_parameters=erased)
    models = call("/v1/models", "GET", 200)
    call("/v1/models/{sha256}/assessments", "GET", 200, path_parameters={"sha256": verdict["model"]["sha256"]})
    assert verdict["model"]["sha256"] in str(models)
    call("/v1/log/proof/inclusion", "GET", 200, query={"index": 0})
    call("/v1/log/entries", "GET", 200, query={"start": 0, "end": 3})
    call(
        "/v1/keys",
        "POST",
        201,
        bearer(live.admin),
        body={"role": "platform", "name": "x"},
        media_type="application/json",
    )


def _assess_raw(live: Live, item_id: str, files: list) -> dict:  # type: ignore[type-arg]
    r = httpx.post(
        f"{live.base}/v1/items/{item_id}/assessments", files=files, headers=bearer(live.platform), timeout=60
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_authenticator_serve_and_keys_cli(tmp_path: Path) -> None:
    """What the README's run command does: `authenticator serve` answers on loopback with SQLite."""
    import json
    import os

    write_tiny_model(tmp_path / "weights")
    env = {
        **os.environ,
        "AUTHENTICATOR_DATA_DIR": str(tmp_path / "data"),
        "AUTHENTICATOR_WEIGHTS_DIR": str(tmp_path / "weights"),
    }
    env.pop("AUTHENTICATOR_DATABASE_URL", None)
    created = subprocess.run(
        [CLI, "keys", "create", "--role", "admin", "--name", "ops"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    admin = json.loads(created.stdout)["api_key"]
    listed = subprocess.run([CLI, "keys", "list"], env=env, capture_output=True, text=True, timeout=120)
    assert admin.split(".")[0] in listed.stdout and admin.split(".")[1] not in listed.stdout  # never the secret
    port = free_port()
    server = subprocess.Popen(
        [CLI, "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "authenticator serve did not start"
            time.sleep(0.2)
        r = httpx.post(f"{base}/v1/keys", json={"role": "platform", "name": "p"}, headers=bearer(admin))
        assert r.status_code == 201
        assert (tmp_path / "data" / "authenticator.db").is_file()
        assert stat_mode(tmp_path / "data" / "log.key") == 0o600
    finally:
        server.terminate()
        server.wait(timeout=30)


def stat_mode(path: Path) -> int:
    import stat

    return stat.S_IMODE(path.stat().st_mode)


def test_head_answers_as_get_without_the_body(live: Live) -> None:
    """Link checkers and probes send HEAD: every GET path answers it (it was 405 on all but static files)."""
    with httpx.Client(base_url=live.base) as http:
        for path in (f"/t/{live.item}", f"/v1/items/{live.item}", "/healthz", "/checkpoint", "/assess", "/v1/log/key"):
            get, head = http.get(path), http.head(path)
            assert (head.status_code, get.status_code) == (200, 200), path
            assert head.content == b"", path
            assert head.headers["content-type"] == get.headers["content-type"], path
            assert head.headers["content-length"] == str(len(get.content)), path
        assert http.head("/t/itm_nothing_here").status_code == 404
        refused = http.head("/v1/keys")  # POST only: the 405 a GET gets
        assert refused.status_code == 405 and "POST" in refused.headers["allow"]
