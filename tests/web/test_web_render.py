"""The pages as HTML, through the real app (lifespan included): words, escaping, headers, QR code.

No browser here (see ``test_web_pages.py`` for Chromium); these are the server-side halves:
what the trace page says about each entry, that hostile text stays text, that every page and
static file carries the security headers and no inline script, and that the QR code decodes
(with OpenCV's detector, not our encoder) to the page's own address.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient

from api.app import create_app
from api.pages.headers import CSP
from authenticator.config import Settings
from authenticator.dsse import sign_envelope
from authenticator.store.keys import create_key
from tests.conftest import SHARED
from tests.vision_tiny_model import write_tiny_model
from tests.web.page_parsing import decode_qr, inline_scripts

HOSTILE = '</script><script>alert("x")</script> & <b>bold</b>'


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class World:
    client: TestClient
    item_id: str
    listing_id: str
    closed_listing_id: str
    lab_name: str = "Milan Lab <Srl>"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("web-render")
    write_tiny_model(tmp / "weights")
    settings = Settings(data_dir=tmp / "data", weights_dir=tmp / "weights", database_url=None)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        w = World()
        w.client = c
        admin = create_key(c.app.state.ctx.engine, "admin", "ops").api_key  # type: ignore[attr-defined]
        platform = c.post("/v1/keys", json={"role": "platform", "name": "Acme"}, headers=_bearer(admin)).json()[
            "api_key"
        ]
        r = c.post(
            "/v1/items", json={"category": "watch", "brand": "Rolex", "model": HOSTILE}, headers=_bearer(platform)
        )
        assert r.status_code == 201, r.text
        w.item_id = r.json()["id"]
        photo = sorted((SHARED / "data" / "real" / "alauzon13-birkin" / "authentic").iterdir())[0]
        r = c.post(
            f"/v1/items/{w.item_id}/assessments",
            files=[("photos", (photo.name, photo.read_bytes(), "image/jpeg"))],
            headers=_bearer(platform),
        )
        assert r.status_code == 201, r.text
        key = Ed25519PrivateKey.generate()
        raw = base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
        r = c.post(
            "/v1/labs",
            json={"name": w.lab_name, "accreditation": "ISO/IEC 17025", "public_key": raw},
            headers=_bearer(admin),
        )
        assert r.status_code == 201, r.text
        lab, lab_id = r.json()["api_key"], r.json()["id"]
        payload = {
            "v": 1,
            "item_id": w.item_id,
            "lab_id": lab_id,
            "outcome": "authentic",
            "inspection_date": "2026-11-21",
            "method": "physical inspection",
            "photos": [],
            "report_sha256": None,
        }
        r = c.post(f"/v1/items/{w.item_id}/certificates", json=sign_envelope(payload, key), headers=_bearer(lab))
        assert r.status_code == 201, r.text
        cert = r.json()["id"]
        r = c.post(f"/v1/certificates/{cert}/revocation", json={"reason": "Movement re-examined"}, headers=_bearer(lab))
        assert r.status_code in (200, 201), r.text
        # One open listing per item: the closed one first.
        r = c.post(
            "/v1/listings",
            json={"item_id": w.item_id, "title": "Datejust 36", "price": "7000", "currency": "EUR"},
            headers=_bearer(platform),
        )
        assert r.status_code == 201, r.text
        w.closed_listing_id = r.json()["id"]
        r = c.post(f"/v1/listings/{w.closed_listing_id}/close", json={"reason": "sold"}, headers=_bearer(platform))
        assert r.status_code in (200, 201), r.text
        r = c.post(
            "/v1/listings",
            json={"item_id": w.item_id, "title": HOSTILE, "price": "100.50", "currency": "CHF"},
            headers=_bearer(platform),
        )
        assert r.status_code == 201, r.text
        w.listing_id = r.json()["id"]
        yield w


def test_trace_page_words(world: World) -> None:
    html = world.client.get(f"/t/{world.item_id}").text
    titles = re.findall(r'<h3 class="event-title">(.*?)</h3>', html)
    assert titles[1].startswith("Photo assessment: ")
    assert titles[2:] == [
        "Lab certificate: authentic",
        "Lab certificate revoked",
        "Listed for sale at 7000 EUR",
        "Listing closed",
        "Listed for sale at 100.50 CHF",
        "Signed checkpoint of the log",
        "Nothing newer left out",
        "Same log as on your last visit",
    ]
    assert "by Milan Lab &lt;Srl&gt; (ISO/IEC 17025), inspected on 21 Nov 2026" in html
    assert "revoked later" in html
    assert "Movement re-examined" in html
    # Names, not ids: the platform's display name; the ids only under "Technical details".
    assert "registered by Acme on " in html and "by platform plt_" not in html
    # The first question, answered from the record: the revocation is the current, most serious fact.
    facts = re.findall(r'<div class="fact fact-(\w+)[^"]*" data-kind="(\w+)">', html)
    assert facts[0] == ("warning", "revoked"), facts
    assert "A lab withdrew its certificate for this item" in html
    assert "No lab certificate is in force for this item now." in html


def test_hostile_text_stays_text(world: World) -> None:
    for path in (f"/t/{world.item_id}", f"/l/{world.listing_id}"):
        html = world.client.get(path).text
        assert HOSTILE not in html
        assert "<b>bold</b>" not in html
        assert inline_scripts(html) == []
    trace_html = world.client.get(f"/t/{world.item_id}").text
    data = re.search(r'<script type="application/json" id="event-words">(.*?)</script>', trace_html, flags=re.S)
    assert data is not None
    words = json.loads(data.group(1))  # the data block parses back to the exact text
    assert any(HOSTILE in line for w in words.values() for line in [w["title"], *w["lines"]])
    listing_html = world.client.get(f"/l/{world.listing_id}").text
    assert (
        "&lt;/script&gt;&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in listing_html
    )


@pytest.mark.parametrize(
    "path", ["/t/{item}", "/l/{listing}", "/assess", "/t/itm_nothere", "/static/trace-verify.js", "/static/style.css"]
)
def test_security_headers(world: World, path: str) -> None:
    r = world.client.get(path.format(item=world.item_id, listing=world.listing_id))
    assert r.status_code in (200, 404)
    assert r.headers["content-security-policy"] == CSP
    assert "frame-ancestors 'none'" in CSP and "script-src 'self'" in CSP and "unsafe-inline" not in CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"


def test_unknown_item_and_listing_are_html_404s(world: World) -> None:
    for path in ("/t/itm_nothere", "/l/lst_nothere"):
        r = world.client.get(path)
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("text/html")
        assert "<h1>Not found</h1>" in r.text


def test_pages_use_only_local_assets(world: World) -> None:
    for path in (f"/t/{world.item_id}", f"/l/{world.listing_id}", "/assess"):
        html = world.client.get(path).text
        for ref in re.findall(r'(?:src|href)="([^"]+)"', html):
            assert ref.startswith(("/", "#", "http://testserver/")), ref
        for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
            assert world.client.get(asset).status_code == 200, asset


def test_qr_code_decodes_to_the_page_address(world: World, tmp_path: Path) -> None:
    html = world.client.get(f"/t/{world.item_id}").text
    svg = re.search(r'<svg xmlns="http://www.w3.org/2000/svg".*?</svg>', html, flags=re.S)
    assert svg is not None
    text = decode_qr(svg.group(0))
    assert text is not None
    # No public URL configured: the path only, never the Host header's name (test_hardening.py).
    assert text == f"/t/{world.item_id}"


def test_home_leads_to_the_upload_page(world: World) -> None:
    r = world.client.get("/", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/assess"
    html = world.client.get("/assess").text
    assert 'capture="environment"' in html
    for field_id in ("api-key", "category", "brand", "model", "item-id", "photos", "camera"):
        assert f'for="{field_id}"' in html, field_id  # every input has a label


def test_listing_page_open_and_closed(world: World) -> None:
    html = world.client.get(f"/l/{world.listing_id}").text
    assert '<span class="pill open">For sale</span>' in html
    assert '<data value="100.50">100.50 CHF</data>' in html
    assert f'href="/t/{world.item_id}"' in html
    assert '<strong id="badge-label">Warning</strong>' in html  # the revoked certificate
    closed = world.client.get(f"/l/{world.closed_listing_id}").text
    assert '<span class="pill closed">Closed: sold</span>' in closed
    trace = world.client.get(f"/t/{world.item_id}").text
    assert "Listing closed" in trace
