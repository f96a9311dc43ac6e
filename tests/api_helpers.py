"""Helpers of the API tests (no fixtures; those are in ``tests.api_support``)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient

from authenticator.dsse import sign_envelope
from authenticator.store.keys import create_key

REAL = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "real"
PHOTO_DIRS = ("alauzon13-birkin/authentic", "zhengwu123-aj1/authentic", "waizwafiq-sneakers/counterfeit")


def real_photos(n: int, offset: int = 0) -> list[Path]:
    """``n`` small real photos (the smallest files, so the suite stays fast), deterministic."""
    files: list[Path] = []
    for d in PHOTO_DIRS:
        files.extend(sorted((REAL / d).iterdir()))
    files.sort(key=lambda p: (p.stat().st_size, p.name))
    picked = [p for p in files if p.stat().st_size > 20_000][offset : offset + n]
    assert len(picked) == n, "not enough real photos in ../shared/data/real"
    return picked


def photo_files(paths: list[Path]) -> list[tuple[str, tuple[str, bytes, str]]]:
    out = []
    for p in paths:
        mime = "image/png" if p.suffix.lower() == ".png" else "image/jpeg"
        out.append(("photos", (p.name, p.read_bytes(), mime)))
    return out


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Actors:
    """Keys of everyone in a journey: an operator, two platforms, two labs (with signing keys)."""

    admin: str
    platform: str
    platform2: str
    lab: str
    lab_id: str
    lab_key: Ed25519PrivateKey
    lab2: str
    lab2_id: str
    lab2_key: Ed25519PrivateKey


def register_lab(client: TestClient, admin: str, name: str) -> tuple[str, str, Ed25519PrivateKey]:
    key = Ed25519PrivateKey.generate()
    raw = base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    r = client.post(
        "/v1/labs", json={"name": name, "accreditation": "ISO/IEC 17025", "public_key": raw}, headers=bearer(admin)
    )
    assert r.status_code == 201, r.text
    return r.json()["api_key"], r.json()["id"], key


def make_actors(client: TestClient) -> Actors:
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    admin = create_key(ctx.engine, "admin", "ops").api_key
    plats = []
    for name in ("Acme Resale", "Other Market"):
        r = client.post("/v1/keys", json={"role": "platform", "name": name}, headers=bearer(admin))
        assert r.status_code == 201, r.text
        plats.append(r.json()["api_key"])
    lab, lab_id, lab_key = register_lab(client, admin, "Geneva Lab")
    lab2, lab2_id, lab2_key = register_lab(client, admin, "Milan Lab")
    return Actors(admin, plats[0], plats[1], lab, lab_id, lab_key, lab2, lab2_id, lab2_key)


def certificate_envelope(
    key: Ed25519PrivateKey, item_id: str, lab_id: str, outcome: str = "authentic", **extra: Any
) -> dict[str, Any]:
    payload = {
        "v": 1,
        "item_id": item_id,
        "lab_id": lab_id,
        "outcome": outcome,
        "inspection_date": "2026-11-20",
        "method": "physical inspection: stitching, hardware, date stamp, UV",
        "photos": ["ab" * 32],
        "report_sha256": None,
        **extra,
    }
    return sign_envelope(payload, key)


def new_item(client: TestClient, platform: str, category: str = "bag") -> str:
    r = client.post(
        "/v1/items", json={"category": category, "brand": "Hermès", "model": "Birkin 30"}, headers=bearer(platform)
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def log_size(client: TestClient) -> int:
    """The size of the log's latest checkpoint (its second line)."""
    return int(client.get("/v1/log/checkpoint").text.split("\n")[1])
