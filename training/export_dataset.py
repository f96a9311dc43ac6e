"""Learning from the labs: turn lab outcomes recorded in the ledger into a training manifest.

An item's label is the outcome of its latest *unrevoked* ``certificate.attached`` entry (a lab
certified or rejected it after a physical inspection: the best label we can get). Its photos
are those of its ``assessment.recorded`` entries, read from the content-addressed blob store.
Items whose unrevoked certificates disagree are left out and counted; nothing is guessed.
Photos a seller took back (``photos.erased``) are left out and counted: a photo is exported
only while an assessment that was not erased still names it. Each photo carries the view of the
capture guide its uploader declared (``view``: the latest assessment's declaration, empty when
none was made), so the flywheel collects what per-view scores and a view classifier need.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from authenticator.errors import NotFound
from authenticator.ledger.entries import parse_entry
from authenticator.ledger.log import Ledger
from authenticator.store.blobs import BlobStore

SOURCE = "lab-certified"
MANIFEST_COLUMNS = [
    "path",
    "label",
    "category",
    "brand",
    "model",
    "item_group",
    "source",
    "width",
    "height",
    "sha256",
    "certificate_id",
    "lab_id",
    "ledger_index",
    "view",
]
_EXT = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "WEBP": ".webp", "HEIF": ".heic", "HEIC": ".heic"}


@dataclass
class _Item:
    category: str = "other"
    brand: str = ""
    model: str = ""
    photos: dict[str, int] = field(default_factory=dict)  # sha256 -> first ledger index
    views: dict[str, str] = field(default_factory=dict)  # sha256 -> latest declared view
    holders: dict[str, set[str]] = field(default_factory=dict)  # sha256 -> assessments not erased
    certs: dict[str, tuple[str, str, int]] = field(default_factory=dict)  # id -> (outcome, lab, index)
    revoked: set[str] = field(default_factory=set)


def collect(ledger: Ledger, page: int = 1000) -> dict[str, _Item]:
    items: dict[str, _Item] = {}
    size = ledger.size()
    for start in range(0, size, page):
        for st in ledger.entries(start, min(size, start + page)):
            e = parse_entry(st.data)
            it = items.setdefault(e.item, _Item())
            b: dict[str, Any] = e.body
            if e.type == "item.registered":
                it.category, it.brand, it.model = str(b["category"]).lower(), str(b["brand"]), str(b["model"])
            elif e.type == "assessment.recorded":
                for sha in b["photo_sha256"]:
                    it.photos.setdefault(sha, st.index)
                    it.holders.setdefault(sha, set()).add(b["assessment_id"])
                for p in b["per_photo"]:
                    if p.get("view") not in (None, "unspecified"):
                        it.views[p["sha256"]] = p["view"]
            elif e.type == "photos.erased":
                for sha in b["photo_sha256"]:
                    it.holders.get(sha, set()).discard(b["assessment_id"])
            elif e.type == "certificate.attached":
                it.certs[b["certificate_id"]] = (b["outcome"], b["lab_id"], st.index)
            elif e.type == "certificate.revoked":
                it.revoked.add(b["certificate_id"])
    return items


def export_dataset(ledger: Ledger, blobs: BlobStore, out: Path) -> dict[str, int]:
    """Write ``out/<label>/<sha256>.<ext>`` and ``out/manifest.csv``; return counts. Copies of
    erased photos that an earlier export left in ``out`` are deleted."""
    counts = {
        "items": 0,
        "photos": 0,
        "authentic": 0,
        "counterfeit": 0,
        "conflicting_items": 0,
        "missing_blobs": 0,
        "items_without_photos": 0,
        "erased_photos": 0,
    }
    rows: list[list[Any]] = []
    erased: set[str] = set()
    for item_id, it in sorted(collect(ledger).items()):
        erased.update(sha for sha in it.photos if not it.holders.get(sha))
        active = {cid: c for cid, c in it.certs.items() if cid not in it.revoked}
        if not active:
            continue
        outcomes = {c[0] for c in active.values()}
        if len(outcomes) > 1:
            counts["conflicting_items"] += 1
            continue
        cert_id, (label, lab, idx) = max(active.items(), key=lambda kv: kv[1][2])
        kept = sorted(sha for sha in it.photos if it.holders.get(sha))
        counts["erased_photos"] += len(it.photos) - len(kept)
        if not kept:
            counts["items_without_photos"] += 1
            continue
        counts["items"] += 1
        for sha in kept:
            try:
                data = blobs.get(sha)
            except NotFound:
                counts["missing_blobs"] += 1
                continue
            with Image.open(io.BytesIO(data)) as im:
                ext, (w, h) = _EXT.get((im.format or "").upper(), ".bin"), im.size
            path = out / label / f"{sha}{ext}"
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                path.write_bytes(data)
            rows.append(
                [
                    path.relative_to(out).as_posix(),
                    label,
                    it.category,
                    it.brand,
                    it.model,
                    item_id,
                    SOURCE,
                    w,
                    h,
                    sha,
                    cert_id,
                    lab,
                    idx,
                    it.views.get(sha, ""),
                ]
            )
            counts["photos"] += 1
            counts[label] += 1
    exported = {row[MANIFEST_COLUMNS.index("sha256")] for row in rows}
    for sha in erased - exported:  # an earlier export into ``out`` may hold a copy
        for stale in out.glob(f"*/{sha}.*"):
            stale.unlink()
    out.mkdir(parents=True, exist_ok=True)
    with (out / "manifest.csv").open("w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(MANIFEST_COLUMNS)
        wr.writerows(rows)
    return counts
