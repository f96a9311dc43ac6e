"""Hostile uploads: oversized and streamed bodies, many parts, decompression and gzip bombs,
path-like file names, wrong content types -> 4xx problem+json, and nothing stored (no blob file,
no ledger entry). A real photo under a path-like name is stored under its hash only."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.app import create_app
from authenticator.config import Settings
from authenticator.dsse import PAYLOAD_TYPE, pae
from tests.api_helpers import Actors, bearer, make_actors, new_item, photo_files, real_photos

LIMIT = 2_000_000


@dataclass
class Site:
    client: TestClient
    actors: Actors
    item: str
    blob_dir: Path
    data_dir: Path


@pytest.fixture(scope="module")
def site(api_tiny_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    data = tmp_path_factory.mktemp("hostile")
    settings = Settings(data_dir=data, weights_dir=api_tiny_weights, api_max_body_bytes=LIMIT)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        actors = make_actors(client)
        yield Site(client, actors, new_item(client, actors.platform), settings.blob_dir, data)


def _stored(site: Site) -> tuple[int, list[str]]:
    ctx = site.client.app.state.ctx  # type: ignore[attr-defined]
    files = sorted(str(p.relative_to(site.data_dir)) for p in site.data_dir.rglob("*") if p.is_file())
    return ctx.ledger.size(), [f for f in files if not f.startswith("authenticator.db")]


def _png_bomb(side: int) -> bytes:
    """A valid PNG of side x side black pixels: a few hundred KB that inflate to side*side*3 bytes."""
    raw_row = b"\x00" + b"\x00" * (side * 3)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(raw_row) for _ in range(side)) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _zip_of(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(name, data)
    return buf.getvalue()


def _multipart(parts: list[tuple[str, str, bytes, str]], boundary: str = "hostile") -> tuple[bytes, str]:
    out = io.BytesIO()
    for field, filename, data, ctype in parts:
        out.write(f"--{boundary}\r\n".encode())
        out.write(f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'.encode())
        out.write(f"Content-Type: {ctype}\r\n\r\n".encode())
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def _expect_refused(site: Site, status: set[int], **request: object) -> dict[str, object]:
    before = _stored(site)
    url = f"/v1/items/{site.item}/assessments"
    headers = {**bearer(site.actors.platform), **dict(request.pop("headers", {}))}  # type: ignore[call-overload]
    r = site.client.post(url, headers=headers, **request)  # type: ignore[arg-type]
    assert r.status_code in status, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/problem+json")
    assert _stored(site) == before, "a refused upload left something behind"
    return dict(r.json())


JPEG = real_photos(1)[0].read_bytes()


def test_declared_oversized_body(site: Site) -> None:
    body, ctype = _multipart([("photos", "a.jpg", b"\xff" * (LIMIT + 1), "image/jpeg")])
    _expect_refused(site, {413}, content=body, headers={"Content-Type": ctype})


def test_streamed_oversized_body_without_length(site: Site) -> None:
    body, ctype = _multipart([("photos", "a.jpg", JPEG * (LIMIT // len(JPEG) + 2), "image/jpeg")])

    def chunks() -> Iterator[bytes]:
        for k in range(0, len(body), 65536):
            yield body[k : k + 65536]

    _expect_refused(site, {413}, content=chunks(), headers={"Content-Type": ctype})


def test_many_parts(site: Site) -> None:
    few = [("photos", f"p{k}.jpg", JPEG[:2000], "image/jpeg") for k in range(13)]
    body, ctype = _multipart(few)
    _expect_refused(site, {413, 415, 422}, content=body, headers={"Content-Type": ctype})
    tiny = [("photos", f"p{k}.jpg", b"x", "image/jpeg") for k in range(5000)]
    body, ctype = _multipart(tiny)
    _expect_refused(site, {400, 413, 422}, content=body, headers={"Content-Type": ctype})
    fields = [(f"f{k}", f"f{k}", b"x", "text/plain") for k in range(5000)]
    body, ctype = _multipart(fields)
    _expect_refused(site, {400, 413, 422}, content=body, headers={"Content-Type": ctype})


def test_decompression_bombs(site: Site) -> None:
    bomb = _png_bomb(12_000)  # 144 megapixels, 432 MB of pixels, from a small file
    assert len(bomb) < LIMIT
    r = _expect_refused(site, {413}, files=[("photos", ("bomb.png", bomb, "image/png"))])
    assert r["code"] == "decompression_bomb"
    zipped = _zip_of("photo.jpg", JPEG)
    _expect_refused(site, {415}, files=[("photos", ("photo.zip", zipped, "application/zip"))])
    _expect_refused(site, {415}, files=[("photos", ("photo.jpg", zipped, "image/jpeg"))])
    # A gzip bomb as the request body: the server never inflates request bodies.
    inner, ctype = _multipart([("photos", "a.jpg", b"\x00" * 50_000_000, "image/jpeg")])
    packed = gzip.compress(inner, 9)
    assert len(packed) < LIMIT
    _expect_refused(
        site, {400, 413, 415, 422}, content=packed, headers={"Content-Type": ctype, "Content-Encoding": "gzip"}
    )


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "/etc/passwd", "..\\..\\boot.ini", "a/../../../x.jpg", "%2e%2e%2fx"]
)
def test_path_like_file_names(site: Site, name: str) -> None:
    _expect_refused(site, {415}, files=[("photos", (name, b"root:x:0:0:root:/root:/bin/bash\n", "image/jpeg"))])
    # A real photo under that name: stored under its SHA-256 in the blob store, nowhere else.
    item = new_item(site.client, site.actors.platform)  # one verdict per item and photo set
    before_size, before_files = _stored(site)
    r = site.client.post(
        f"/v1/items/{item}/assessments",
        files=[("photos", (name, JPEG, "image/jpeg"))],
        headers=bearer(site.actors.platform),
    )
    assert r.status_code == 201, r.text
    size, files = _stored(site)
    digest = hashlib.sha256(JPEG).hexdigest()
    assert size == before_size + 1
    assert set(files) - set(before_files) <= {f"blobs/{digest[:2]}/{digest[2:4]}/{digest}"}
    # besides the blobs: the log's key, and the workers' shared live-work counts (fixed names)
    assert all(f.startswith("blobs/") or f in ("log.key", "live-work.slots") for f in files)


def test_wrong_content_types(site: Site) -> None:
    _expect_refused(site, {415}, json={"photos": ["a"]})
    _expect_refused(site, {415}, content=b"photos=a", headers={"Content-Type": "application/x-www-form-urlencoded"})
    _expect_refused(site, {415}, content=JPEG, headers={"Content-Type": "image/jpeg"})
    _expect_refused(site, {400, 415, 422}, content=JPEG, headers={"Content-Type": "multipart/form-data"})
    _expect_refused(site, {415}, files=[("photos", ("a.gif", b"GIF89a" + b"\x00" * 100, "image/gif"))])
    _expect_refused(
        site, {415}, files=[("photos", ("a.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml"))]
    )
    # And JSON endpoints refuse multipart.
    before = _stored(site)
    r = site.client.post(
        "/v1/items", files=[("photos", ("a.jpg", JPEG, "image/jpeg"))], headers=bearer(site.actors.platform)
    )
    assert r.status_code == 415, r.text
    assert _stored(site) == before


def test_real_photo_still_accepted(site: Site) -> None:
    """The refusals above are about the input, not a broken deployment."""
    r = site.client.post(
        f"/v1/items/{site.item}/assessments", files=photo_files(real_photos(2)), headers=bearer(site.actors.platform)
    )
    assert r.status_code == 201, r.text


def _signed(site: Site, payload_bytes: bytes) -> dict[str, object]:
    """A DSSE envelope over exactly ``payload_bytes``, signed with the lab's registered key."""
    sig = site.actors.lab_key.sign(pae(PAYLOAD_TYPE, payload_bytes))
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload_bytes).decode(),
        "signatures": [{"keyid": "", "sig": base64.b64encode(sig).decode()}],
    }


def _expect_certificate_refused(site: Site, envelope: dict[str, object]) -> int:
    before = _stored(site)
    r = site.client.post(f"/v1/items/{site.item}/certificates", json=envelope, headers=bearer(site.actors.lab))
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/problem+json")
    assert _stored(site) == before
    return r.status_code


def test_deeply_nested_certificate_payload(site: Site) -> None:
    """A lab's signed payload nested 20,000 deep: 422, not a 500 from the JSON parser's recursion."""
    nested = b'{"notes": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    assert _expect_certificate_refused(site, _signed(site, nested)) == 422


@settings(max_examples=150, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_signed_certificate_payloads_of_any_shape(site: Site, data: st.DataObject) -> None:
    """Payloads the lab really signed, with fields of any JSON type or missing: 4xx or 201, never 5xx."""
    payload: dict[str, object] = {
        "v": 1,
        "item_id": site.item,
        "lab_id": site.actors.lab_id,
        "outcome": "authentic",
        "inspection_date": "2026-11-20",
        "method": "physical inspection",
        "photos": ["ab" * 32],
        "report_sha256": None,
    }
    json_value = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
        max_leaves=8,
    )
    for key in data.draw(st.lists(st.sampled_from([*payload, "notes", "extra"]), min_size=1, max_size=3)):
        if data.draw(st.booleans()):
            payload[key] = data.draw(json_value)
        else:
            payload.pop(key, None)
    raw = json.dumps(payload, allow_nan=True).encode()
    r = site.client.post(
        f"/v1/items/{site.item}/certificates", json=_signed(site, raw), headers=bearer(site.actors.lab)
    )
    assert r.status_code < 500, r.text[:300]


def test_deeply_nested_json_bodies(site: Site) -> None:
    """JSON nested 100,000 deep on every JSON endpoint: 400 problem+json, nothing recorded."""
    body = b"[" * 100_000 + b"]" * 100_000
    a = site.actors
    before = _stored(site)
    for url, key in (
        ("/v1/items", a.platform),
        (f"/v1/items/{site.item}/certificates", a.lab),
        (f"/v1/items/{site.item}/custody", a.platform),
        ("/v1/listings", a.platform),
        ("/v1/labs", a.admin),
        ("/v1/keys", a.admin),
    ):
        r = site.client.post(url, content=body, headers={**bearer(key), "Content-Type": "application/json"})
        assert r.status_code == 400, (url, r.status_code, r.text[:200])
        assert r.headers["content-type"].startswith("application/problem+json")
    assert _stored(site) == before
