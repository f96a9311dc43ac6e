"""Strict inputs over HTTP (issue 11, point 6), on SQLite and PostgreSQL.

- Every JSON body is strict JSON: a duplicate object key (anywhere: a DSSE envelope's
  ``payload``, a signature's ``sig``, a plain body's ``brand``) is a **400 problem+json** naming
  the key, and nothing is recorded; so are ``NaN``/``Infinity`` and lone surrogates.
- Every free-text field refuses control, bidi-override and line/paragraph separator
  characters with a **422 problem+json** whose ``errors[0].loc`` and ``detail`` name the field.
- The certificate payload is typed exactly as docs/certificates.md says.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from authenticator.dsse import PAYLOAD_TYPE, keyid_for, pae
from authenticator.services import certificate_payload, certificates
from authenticator.text import FREE_TEXT_PATTERN
from tests.api_helpers import Actors, bearer, certificate_envelope, log_size, new_item
from tests.text_samples import FORBIDDEN

JSON = {"Content-Type": "application/json"}


def _problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text[:500]
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["detail"]
    return body


def _members(*pairs: tuple[str, Any]) -> bytes:
    """A JSON object's text with exactly these members, in this order, repeats included."""
    return ("{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in pairs) + "}").encode()


def _sign_raw(key: Ed25519PrivateKey, raw: bytes) -> dict[str, Any]:
    """An envelope over exactly ``raw`` (which ``sign_envelope`` would canonicalize first)."""
    sig = base64.b64encode(key.sign(pae(PAYLOAD_TYPE, raw))).decode()
    return {
        "payload": base64.b64encode(raw).decode(),
        "payloadType": PAYLOAD_TYPE,
        "signatures": [{"keyid": keyid_for(key.public_key()), "sig": sig}],
    }


@pytest.fixture(scope="module")
def item(client: TestClient, actors: Actors) -> str:
    return new_item(client, actors.platform)


@pytest.fixture()
def unchanged(client: TestClient) -> Iterator[None]:
    """The log gains no entry during the test."""
    before = log_size(client)
    yield
    assert log_size(client) == before


# --- duplicate keys -------------------------------------------------------------------------------


@pytest.mark.usefixtures("unchanged")
def test_an_envelope_with_payload_twice_is_refused(client: TestClient, actors: Actors, item: str) -> None:
    """The attack of the issue: a parser that keeps the first ``payload`` sees another outcome."""
    signed = certificate_envelope(actors.lab_key, item, actors.lab_id)
    forged = certificate_envelope(Ed25519PrivateKey.generate(), item, actors.lab_id, outcome="counterfeit")
    url = f"/v1/items/{item}/certificates"
    for order in (
        [("payload", forged["payload"]), ("payloadType", PAYLOAD_TYPE), ("signatures", signed["signatures"]),
         ("payload", signed["payload"])],
        [("payload", signed["payload"]), ("payloadType", PAYLOAD_TYPE), ("signatures", signed["signatures"]),
         ("payload", forged["payload"])],
    ):  # fmt: skip
        r = client.post(url, content=_members(*order), headers={**bearer(actors.lab), **JSON})
        body = _problem(r, 400)
        assert '"payload"' in body["detail"] and "duplicate" in body["detail"]


@pytest.mark.usefixtures("unchanged")
def test_a_signature_with_sig_twice_is_refused(client: TestClient, actors: Actors, item: str) -> None:
    signed = certificate_envelope(actors.lab_key, item, actors.lab_id)
    sig = signed["signatures"][0]
    twice = _members(("keyid", sig["keyid"]), ("sig", sig["sig"]), ("sig", base64.b64encode(b"\0" * 64).decode()))
    data = b'{"payload": "%s", "payloadType": "%s", "signatures": [%s]}' % (
        signed["payload"].encode(),
        PAYLOAD_TYPE.encode(),
        twice,
    )
    r = client.post(f"/v1/items/{item}/certificates", content=data, headers={**bearer(actors.lab), **JSON})
    assert '"sig"' in _problem(r, 400)["detail"]


@pytest.mark.usefixtures("unchanged")
def test_a_signed_payload_with_a_key_twice_is_refused(client: TestClient, actors: Actors, item: str) -> None:
    """The lab really signed these bytes; they still name ``outcome`` twice."""
    signed = certificate_envelope(actors.lab_key, item, actors.lab_id)
    raw = base64.b64decode(signed["payload"])[:-1] + b',"outcome":"counterfeit"}'
    r = client.post(f"/v1/items/{item}/certificates", json=_sign_raw(actors.lab_key, raw), headers=bearer(actors.lab))
    assert r.status_code in (400, 422), r.text
    assert '"outcome"' in _problem(r, r.status_code)["detail"]


def _plain_bodies(actors: Actors, item: str) -> list[tuple[str, str, list[tuple[str, Any]]]]:
    """(url, API key, members with one name repeated) for every JSON endpoint."""
    pub = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
    return [
        ("/v1/items", actors.platform,
         [("category", "bag"), ("brand", "Hermès"), ("model", "Birkin 30"), ("brand", "Fake Co")]),
        ("/v1/listings", actors.platform,
         [("item_id", item), ("title", "Birkin"), ("price", "100"), ("currency", "EUR"), ("price", "1")]),
        ("/v1/keys", actors.admin, [("role", "platform"), ("name", "Acme"), ("role", "admin")]),
        ("/v1/labs", actors.admin,
         [("name", "Lab"), ("accreditation", "ISO"), ("public_key", pub), ("name", "Other Lab")]),
        (f"/v1/items/{item}/custody", actors.platform, [("event", "sold"), ("event", "bought_back")]),
        ("/v1/listings/lst_000000000000000000000000/close", actors.platform, [("reason", "sold"), ("reason", "x")]),
        ("/v1/certificates/crt_000000000000000000000000/revocation", actors.lab,
         [("reason", "replica"), ("reason", "x")]),
    ]  # fmt: skip


@pytest.mark.usefixtures("unchanged")
def test_plain_json_bodies_with_a_key_twice_are_refused(client: TestClient, actors: Actors, item: str) -> None:
    for url, key, members in _plain_bodies(actors, item):
        repeated = next(k for i, (k, _) in enumerate(members) if k in [m for m, _ in members[:i]])
        for content_type in ("application/json", "application/json; charset=utf-8", "application/merge-patch+json"):
            r = client.post(url, content=_members(*members), headers={**bearer(key), "Content-Type": content_type})
            body = _problem(r, 400)
            assert body["code"] == "bad_request" and f'"{repeated}"' in body["detail"], (url, body)
    # Even without a key (the body is read before anything else is looked at).
    _problem(client.post("/v1/items", content=b'{"brand": "a", "brand": "b"}', headers=JSON), 400)


@pytest.mark.usefixtures("unchanged")
def test_non_finite_numbers_and_lone_surrogates_are_refused(client: TestClient, actors: Actors) -> None:
    h = {**bearer(actors.platform), **JSON}
    for data in (
        b'{"category": "bag", "brand": "a", "model": "b", "serial_number": NaN}',
        b'{"category": "bag", "brand": "a", "model": "b", "x": [1e999]}',
        b'{"category": "bag", "brand": "\\ud800", "model": "b"}',
        b'\xef\xbb\xbf{"category": "bag", "brand": "a", "model": "b"}',
    ):
        _problem(client.post("/v1/items", content=data, headers=h), 400)


def test_strict_bodies_still_pass_unchanged(client: TestClient, actors: Actors) -> None:
    """What is strict JSON reaches the app byte for byte: chunked, with a charset, escaped."""
    data = '{"category": "bag", "brand": "Herm\\u00e8s", "model": "Birkin \\"30\\"", "serial_number": "S/1"}'

    def chunks() -> Iterator[bytes]:
        raw = data.encode()
        yield from (raw[i : i + 7] for i in range(0, len(raw), 7))

    for content in (data.encode(), chunks()):
        r = client.post(
            "/v1/items",
            content=content,
            headers={**bearer(actors.platform), "Content-Type": "application/json; charset=utf-8"},
        )
        assert r.status_code == 201, r.text
        assert r.json()["brand"] == "Hermès" and r.json()["model"] == 'Birkin "30"'


def test_the_body_limit_comes_first(client: TestClient, actors: Actors) -> None:
    """A JSON body over the limit is 413 (never read whole), duplicate keys or not, chunked or not."""
    limit = client.app.state.settings.api_max_json_bytes  # type: ignore[attr-defined]
    big = b'{"brand": "a", "brand": "b", "model": "' + b"x" * limit + b'"}'

    def chunks() -> Iterator[bytes]:
        yield from (big[i : i + 8192] for i in range(0, len(big), 8192))

    for content in (big, chunks()):
        r = client.post("/v1/items", content=content, headers={**bearer(actors.platform), **JSON})
        assert _problem(r, 413)["code"] == "payload_too_large"


# --- free text ------------------------------------------------------------------------------------


def _free_text_cases(actors: Actors, item: str) -> list[tuple[str, str, dict[str, Any], str]]:
    """(url, API key, a valid body, the free-text field to spoil) for every free-text field."""
    pub = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
    registered = {"category": "bag", "brand": "Hermès", "model": "Birkin 30", "serial_number": "X-1"}
    listing = {"item_id": item, "title": "Birkin 30", "price": "100", "currency": "EUR"}
    lab = {"name": "Lab", "accreditation": "ISO/IEC 17025", "public_key": pub}
    nowhere = "000000000000000000000000"
    return [
        ("/v1/items", actors.platform, registered, "brand"),
        ("/v1/items", actors.platform, registered, "model"),
        ("/v1/items", actors.platform, registered, "serial_number"),
        ("/v1/listings", actors.platform, listing, "title"),
        (f"/v1/listings/lst_{nowhere}/close", actors.platform, {"reason": "sold"}, "reason"),
        (f"/v1/certificates/crt_{nowhere}/revocation", actors.lab, {"reason": "replica"}, "reason"),
        ("/v1/labs", actors.admin, lab, "name"),
        ("/v1/labs", actors.admin, lab, "accreditation"),
        ("/v1/keys", actors.admin, {"role": "platform", "name": "Acme"}, "name"),
        (f"/v1/items/{item}/custody", actors.platform, {"event": "sold", "counterparty": "seller-1"}, "counterparty"),
    ]


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("char", FORBIDDEN.values(), ids=FORBIDDEN.keys())
def test_free_text_fields_refuse_controls_bidi_and_separators(
    client: TestClient, actors: Actors, item: str, char: str
) -> None:
    for url, key, valid, field in _free_text_cases(actors, item):
        spoiled = {**valid, field: f"{valid[field]}{char}tail"}
        body = _problem(client.post(url, json=spoiled, headers=bearer(key)), 422)
        assert body["errors"][0]["loc"] == ["body", field], (url, body)
        assert field in body["detail"] and f"U+{ord(char):04X}" in body["detail"], (url, body)


@pytest.mark.usefixtures("unchanged")
def test_blank_free_text_is_refused(client: TestClient, actors: Actors, item: str) -> None:
    for url, key, valid, field in _free_text_cases(actors, item):
        body = _problem(client.post(url, json={**valid, field: "   "}, headers=bearer(key)), 422)
        assert body["errors"][0]["loc"] == ["body", field], (url, body)


def test_the_rule_is_published_in_the_openapi_schema(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    fields = {
        "ItemCreate": ["brand", "model", "serial_number"],
        "ListingCreate": ["title"],
        "ListingClose": ["reason"],
        "Revocation": ["reason"],
        "LabCreate": ["name", "accreditation"],
        "KeyCreate": ["name"],
        "CustodyCreate": ["counterparty"],
    }
    for model, names in fields.items():
        for name in names:
            prop = schemas[model]["properties"][name]
            string = next((s for s in prop.get("anyOf", [prop]) if s.get("type") == "string"), {})
            assert string.get("pattern") == FREE_TEXT_PATTERN, (model, name, prop)


def test_ordinary_text_is_accepted(client: TestClient, actors: Actors) -> None:
    for brand in ("Hermès", "ساعة رولكس", "シャネル", "Birkin\u00a030 👩\u200d🔧"):
        r = client.post(
            "/v1/items", json={"category": "bag", "brand": brand, "model": "m"}, headers=bearer(actors.platform)
        )
        assert r.status_code == 201, r.text
        assert r.json()["brand"] == brand


# --- the certificate payload, typed exactly --------------------------------------------------------

_WIRED = any(
    getattr(certificates, name, None) is getattr(certificate_payload, name)
    for name in ("check_payload", "parse_payload")
)


@pytest.mark.skipif(not _WIRED, reason="certificates.py does not use authenticator.services.certificate_payload yet")
@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"v": True}, "v"),
        ({"notes": {"text": "an object"}}, "notes"),
        ({"notes": "two\nlines"}, "notes"),
        ({"inspection_date": "9999-12-31"}, "inspection_date"),
        ({"inspection_date": "1900-01-01"}, "inspection_date"),
        ({"method": "UV\u202eloupe"}, "method"),
    ],
)
def test_certificate_payload_types_are_exact(
    client: TestClient, actors: Actors, item: str, changes: dict[str, Any], field: str
) -> None:
    env = certificate_envelope(actors.lab_key, item, actors.lab_id, **changes)
    body = _problem(client.post(f"/v1/items/{item}/certificates", json=env, headers=bearer(actors.lab)), 422)
    assert field in body["detail"]
