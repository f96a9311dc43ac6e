"""Views in the assessment (issue 14, point 3): each photo's declared view, checked against the
item's capture guide, recorded in the log, held to its view's quality limits; the verdict lists the
required views that are missing; uploads without views work as before; the export carries views."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageFilter

from api.app import create_app
from authenticator.config import Settings
from authenticator.ledger.entries import canonical_bytes, make_entry, parse_entry
from authenticator.store.keys import create_key
from authenticator.vision.capture_guides import GUIDES, gate_thresholds
from authenticator.vision.decode import decode_image
from authenticator.vision.quality import gate, measure_quality
from tests.api_helpers import bearer
from tests.web.browser_site import write_model_that_knows

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
BAGS = sorted((SHARED / "real" / "alauzon13-birkin" / "authentic").iterdir())[:4]
WATCH = SHARED / "watches" / "ashiii2121-watch" / "counterfeit"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    weights = tmp_path_factory.mktemp("weights")
    write_model_that_knows(weights, [(p, "bag") for p in BAGS])
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), weights_dir=weights, database_url=None)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        ctx = client.app.state.ctx  # type: ignore[attr-defined]
        admin = create_key(ctx.engine, "admin", "ops").api_key
        r = client.post("/v1/keys", json={"role": "platform", "name": "Acme Resale"}, headers=bearer(admin))
        assert r.status_code == 201, r.text
        yield client, r.json()["api_key"]


def _item(client: TestClient, platform: str, category: str = "bag") -> str:
    r = client.post(
        "/v1/items", json={"category": category, "brand": "Acme", "model": "Tote"}, headers=bearer(platform)
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _files(photos: list[tuple[str, bytes]]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("photos", (name, data, "image/jpeg")) for name, data in photos]


def _bag_photos(n: int) -> list[tuple[str, bytes]]:
    return [(p.name, p.read_bytes()) for p in BAGS[:n]]


def _entry_body(client: TestClient, index: int) -> dict[str, Any]:
    ledger = client.app.state.ctx.ledger  # type: ignore[attr-defined]
    [stored] = list(ledger.entries(index, index + 1))
    return parse_entry(stored.data).body


def test_declared_views_are_recorded_and_missing_required_views_listed(api: tuple[TestClient, str]) -> None:
    client, platform = api
    item = _item(client, platform)
    r = client.post(
        f"/v1/items/{item}/assessments",
        files=_files(_bag_photos(3)),
        data={"views": ["front", "heat_stamp"]},  # the third photo: unspecified
        headers=bearer(platform),
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert [p["view"] for p in body["photos"]] == ["front", "heat_stamp", "unspecified"]
    required = [v.id for v in GUIDES["bag"].required]
    missing = [v["id"] for v in body["missing_views"]]
    assert missing == [v for v in required if v not in ("front", "heat_stamp")]
    back = next(v for v in body["missing_views"] if v["id"] == "back")
    assert back["name"] == "Back" and back["instruction"] == GUIDES["bag"].view("back").instruction  # type: ignore[union-attr]
    [reason] = [x for x in body["reasons"] if x["code"] == "missing_views"]
    assert "Back: The whole bag from the back" in reason["message"] and "Date code or serial" in reason["message"]
    # the log names each photo's view and what was missing
    entry = _entry_body(client, body["index"])
    assert [p["view"] for p in entry["per_photo"]] == ["front", "heat_stamp", "unspecified"]
    assert entry["missing_views"] == missing and "missing_views" in entry["reasons"]
    # the public answer, rebuilt from the entry, says the same
    again = client.get(f"/v1/assessments/{body['id']}").json()
    assert again["missing_views"] == body["missing_views"]
    assert [p["view"] for p in again["photos"]] == ["front", "heat_stamp", "unspecified"]
    assert [x["message"] for x in again["reasons"]] == [x["message"] for x in body["reasons"]]


def test_uploads_without_views_are_recorded_as_before(api: tuple[TestClient, str]) -> None:
    client, platform = api
    item = _item(client, platform)
    r = client.post(f"/v1/items/{item}/assessments", files=_files(_bag_photos(2)), headers=bearer(platform))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["missing_views"] is None and all(p["view"] is None for p in body["photos"])
    assert "missing_views" not in [x["code"] for x in body["reasons"]]
    entry = _entry_body(client, body["index"])
    assert "missing_views" not in entry and all("view" not in p for p in entry["per_photo"])


def test_entries_with_and_without_views_are_canonical_and_older_entries_parse() -> None:
    base = {
        "assessment_id": "asm_1",
        "photo_sha256": ["ab" * 32],
        "model_sha256": "cd" * 32,
        "model_version": "1",
        "decision": "inconclusive",
        "probability_authentic": None,
        "per_photo": [{"sha256": "ab" * 32, "probability_authentic": None, "category": None, "reasons": []}],
        "thresholds": {"authentic_above": 0.9, "counterfeit_below": 0.1},
        "reasons": [],
    }
    old = make_entry("assessment.recorded", "itm_1", base, None)
    assert b"view" not in canonical_bytes(old)  # an upload without views encodes exactly as before
    assert parse_entry(canonical_bytes(old)).body == base
    with_views = {
        **base,
        "per_photo": [{**base["per_photo"][0], "view": "dial"}],  # type: ignore[index]
        "missing_views": ["caseback"],
    }
    new = make_entry("assessment.recorded", "itm_1", with_views, None)
    assert parse_entry(canonical_bytes(new)).body == with_views
    from authenticator.errors import EntryValidationError

    with pytest.raises(EntryValidationError):
        make_entry("assessment.recorded", "itm_1", {**base, "missing_views": ["Not A Code"]}, None)


@pytest.mark.parametrize(
    ("views", "words"),
    [
        (["front", "dial"], "'dial' is not a view of the bag capture guide; one of: front, back"),
        (["front", "back", "base", "base"], "4 views for 3 photos"),
        (["x" * 65], "at most 64 characters"),
    ],
)
def test_views_are_checked_against_the_guide(api: tuple[TestClient, str], views: list[str], words: str) -> None:
    client, platform = api
    item = _item(client, platform)
    r = client.post(
        f"/v1/items/{item}/assessments", files=_files(_bag_photos(3)), data={"views": views}, headers=bearer(platform)
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert words in r.json()["detail"]


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=95)
    return buf.getvalue()


def _sharp_enough_for_a_whole_item_only() -> bytes:
    """A real 960 px watch photo blurred until it passes the whole-item gate but not a close-up's."""
    base = Settings().quality_thresholds
    whole, close = gate_thresholds(base, "whole"), gate_thresholds(base, "close_up")
    img = Image.open(sorted(WATCH.iterdir())[3])
    for radius in (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0):
        data = _jpeg(img.filter(ImageFilter.GaussianBlur(radius)))
        d = decode_image(data)
        m = measure_quality(d.rgb, d.alpha, source_short_side=min(d.width, d.height))
        if not gate(m, whole) and [r.code for r in gate(m, close)] == ["blurred"]:
            return data
    raise AssertionError("no blur level between the two limits")


def test_a_close_up_is_held_to_more_sharpness_than_a_whole_item(api: tuple[TestClient, str]) -> None:
    client, platform = api
    photo = _sharp_enough_for_a_whole_item_only()
    files = _files([("a.jpg", photo), ("b.jpg", photo)])
    r = client.post(
        "/v1/assessments/preview",
        files=files,
        data={"views": ["whole", "dial"], "category": "watch"},
        headers=bearer(platform),
    )
    assert r.status_code == 200, r.text
    whole, dial = r.json()["photos"]
    assert whole["view"] == "whole" and "blurred" not in [x["code"] for x in whole["reasons"]]
    assert dial["view"] == "dial" and [x["code"] for x in dial["reasons"]] == ["blurred"] and dial["set_aside"]
    # the retake advice says what the view's photo should show, then how to fix it
    assert dial["retake"].startswith("The dial straight on") and "hold the phone steady" in dial["retake"]
    missing = [v["id"] for v in r.json()["missing_views"]]
    assert "caseback" in missing and "dial" not in missing and "whole" not in missing
    # without views the same photo is a whole-item shot: nothing set aside for blur
    r = client.post("/v1/assessments/preview", files=_files([("a.jpg", photo)]), headers=bearer(platform))
    assert "blurred" not in [x["code"] for x in r.json()["photos"][0]["reasons"]]
    assert r.json()["missing_views"] is None


def test_preview_without_an_item_checks_views_against_the_category_sent(api: tuple[TestClient, str]) -> None:
    client, platform = api
    files = _files(_bag_photos(1))
    r = client.post("/v1/assessments/preview", files=files, data={"views": ["size_tag"]}, headers=bearer(platform))
    assert r.status_code == 422 and "send 'category'" in r.json()["detail"]  # no category: no guide
    r = client.post(
        "/v1/assessments/preview",
        files=files,
        data={"views": ["size_tag"], "category": "sneaker"},
        headers=bearer(platform),
    )
    assert r.status_code == 200, r.text
    assert r.json()["photos"][0]["view"] == "size_tag"


def test_openapi_documents_views(api: tuple[TestClient, str]) -> None:
    client, _ = api
    spec = client.get("/openapi.json").json()
    form = spec["paths"]["/v1/items/{item_id}/assessments"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert "views" in form["schema"]["properties"]
    preview = spec["paths"]["/v1/assessments/preview"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert set(preview["schema"]["properties"]) >= {"photos", "views", "category"}
    assert "missing_views" in spec["components"]["schemas"]["Assessment"]["properties"]


def test_the_lab_certified_export_carries_the_views(tmp_path: Path) -> None:
    from authenticator.ledger.checkpoint import CheckpointSigner
    from authenticator.ledger.log import Ledger, NewEntry
    from authenticator.store.blobs import BlobStore
    from training.export_dataset import export_dataset

    blobs = BlobStore(tmp_path / "blobs")
    shas = [blobs.put(p.read_bytes()) for p in BAGS[:2]]
    body = {
        "assessment_id": "asm_1",
        "photo_sha256": shas,
        "model_sha256": "cd" * 32,
        "model_version": "1",
        "decision": "inconclusive",
        "probability_authentic": 0.5,
        "per_photo": [
            {"sha256": s, "probability_authentic": 0.5, "category": "bag", "reasons": [], "view": v}
            for s, v in zip(shas, ["heat_stamp", "unspecified"], strict=True)
        ],
        "thresholds": {"authentic_above": 0.9, "counterfeit_below": 0.1},
        "reasons": ["missing_views"],
        "missing_views": ["front"],
    }
    cert = {
        "certificate_id": "crt_1",
        "lab_id": "lab-1",
        "outcome": "authentic",
        "payload_sha256": "ab" * 32,
        "envelope_sha256": "ab" * 32,
        "signature": "c2ln",
        "keyid": None,
        "inspection_date": "2026-11-01",
    }
    item = {"category": "bag", "brand": "Hermès", "model": "Birkin", "serial_commitment": None, "platform": "p1"}
    signer = CheckpointSigner.load_or_create(tmp_path / "log.key", "test.local/log")
    with Ledger.open(f"sqlite:///{tmp_path / 'db.sqlite'}", signer) as ledger:
        ledger.append_batch([NewEntry("item.registered", "itm_1", item)])
        ledger.append_batch([NewEntry("assessment.recorded", "itm_1", body)])
        ledger.append_batch([NewEntry("certificate.attached", "itm_1", cert)])
        export_dataset(ledger, blobs, tmp_path / "out")
    rows = {r["sha256"]: r for r in csv.DictReader((tmp_path / "out" / "manifest.csv").open())}
    assert rows[shas[0]]["view"] == "heat_stamp" and rows[shas[1]]["view"] == ""
    assert json.loads(json.dumps(list(rows.values())))  # plain CSV, nothing else
