"""export-dataset: lab outcomes in the ledger + photos in the blob store -> a training manifest."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

pytest.importorskip("torch")
from authenticator.ledger.checkpoint import CheckpointSigner
from authenticator.ledger.log import Ledger, NewEntry
from authenticator.store.blobs import BlobStore
from training.data import read_manifest
from training.export_dataset import export_dataset

pytestmark = pytest.mark.torch
H = "ab" * 32


def _assessment(aid: str, shas: list[str]) -> dict[str, object]:
    return {
        "assessment_id": aid,
        "photo_sha256": shas,
        "model_sha256": H,
        "model_version": "1",
        "decision": "inconclusive",
        "probability_authentic": 0.5,
        "per_photo": [{"sha256": s, "probability_authentic": 0.5, "category": "sneaker", "reasons": []} for s in shas],
        "thresholds": {"authentic_above": 0.9, "counterfeit_below": 0.1},
        "reasons": [],
    }


def _cert(cid: str, outcome: str) -> dict[str, object]:
    return {
        "certificate_id": cid,
        "lab_id": "lab-1",
        "outcome": outcome,
        "payload_sha256": H,
        "envelope_sha256": H,
        "signature": "c2ln",
        "keyid": None,
        "inspection_date": "2026-11-01",
    }


def _item(category: str) -> dict[str, object]:
    return {"category": category, "brand": "Nike", "model": "AJ1", "serial_commitment": None, "platform": "p1"}


def test_export_dataset_from_ledger_and_blobs(tmp_path: Path, shared_dir: Path) -> None:
    photos = sorted((shared_dir / "data" / "real" / "zhengwu123-aj1" / "authentic").iterdir())[:3]
    photos += sorted((shared_dir / "data" / "real" / "zhengwu123-aj1" / "counterfeit").iterdir())[:2]
    blobs = BlobStore(tmp_path / "blobs")
    shas = [blobs.put(p.read_bytes()) for p in photos]
    signer = CheckpointSigner.load_or_create(tmp_path / "log.key", "test.local/log")
    with Ledger.open(f"sqlite:///{tmp_path / 'db.sqlite'}", signer) as ledger:
        ledger.append_batch(
            [
                NewEntry("item.registered", "item-a", _item("sneaker")),
                NewEntry("assessment.recorded", "item-a", _assessment("as-1", shas[:2])),
                NewEntry("assessment.recorded", "item-a", _assessment("as-2", shas[1:3])),
                NewEntry("certificate.attached", "item-a", _cert("c-1", "authentic")),
                # rejected by a lab
                NewEntry("item.registered", "item-b", _item("sneaker")),
                NewEntry("assessment.recorded", "item-b", _assessment("as-3", shas[3:5])),
                NewEntry("certificate.attached", "item-b", _cert("c-2", "counterfeit")),
                # certified, then the certificate was revoked: no label
                NewEntry("assessment.recorded", "item-c", _assessment("as-4", shas[:1])),
                NewEntry("certificate.attached", "item-c", _cert("c-3", "authentic")),
                NewEntry("certificate.revoked", "item-c", {"certificate_id": "c-3", "lab_id": "lab-1", "reason": "x"}),
                # labs disagree: left out
                NewEntry("assessment.recorded", "item-d", _assessment("as-5", shas[3:4])),
                NewEntry("certificate.attached", "item-d", _cert("c-4", "authentic")),
                NewEntry("certificate.attached", "item-d", _cert("c-5", "counterfeit")),
                # assessed, never inspected: no label
                NewEntry("assessment.recorded", "item-e", _assessment("as-6", shas[4:5])),
            ]
        )
        counts = export_dataset(ledger, blobs, tmp_path / "out")
    assert counts["items"] == 2 and counts["photos"] == 5 and counts["conflicting_items"] == 1
    assert counts["authentic"] == 3 and counts["counterfeit"] == 2
    samples = read_manifest(tmp_path / "out" / "manifest.csv")
    assert {(s.item_group, s.label) for s in samples} == {("item-a", "authentic"), ("item-b", "counterfeit")}
    assert all(s.category == "sneaker" and s.source == "lab-certified" for s in samples)
    by_sha = dict(zip(shas, photos, strict=True))
    for s in samples:
        data = s.path.read_bytes()
        assert by_sha[hashlib.sha256(data).hexdigest()].read_bytes() == data  # byte-identical copies
