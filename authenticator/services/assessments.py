"""Assessments: photos in, a verdict out, recorded in the log with a receipt.

The vision pipeline runs first (CPU, in the caller's worker thread); then the photos are stored
content-addressed, then ``assessment.recorded`` is appended. A failure before the append
leaves no entry; with an ``Idempotency-Key`` a retry gets the first answer and no second entry.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select

from authenticator.errors import InvalidInput, ModelError, NotFound, PermissionDenied
from authenticator.ledger.log import NewEntry
from authenticator.services.context import ServiceContext, b64, receipt_json
from authenticator.services.items import require_own_item
from authenticator.store import idempotency
from authenticator.store.db import read_tx, write_tx
from authenticator.store.keys import Principal, new_id
from authenticator.store.tables import assessments, heatmaps, items, models
from authenticator.vision.reasons import reason


@dataclass(frozen=True)
class Upload:
    """One uploaded photo: the client's file name (never stored) and the bytes."""

    filename: str
    data: bytes


def _reasons(codes: list[str]) -> list[dict[str, str]]:
    return [reason(c).model_dump() for c in codes]


def _overall_category(per_photo: list[dict[str, Any]]) -> str | None:
    cats = Counter(p["category"] for p in per_photo if p.get("category"))
    if len(cats) == 1:
        return str(next(iter(cats)))
    return None


def assessment_view(
    ctx: ServiceContext, assessment_id: str, item_id: str, index: int, recorded_at: str, body: dict[str, Any]
) -> dict[str, Any]:
    """The public answer for a recorded assessment, built from its log entry alone."""
    with read_tx(ctx.engine) as conn:
        model = conn.execute(
            select(models.c.name, models.c.version).where(models.c.sha256 == body["model_sha256"])
        ).first()
    return {
        "id": assessment_id,
        "item_id": item_id,
        "decision": body["decision"],
        "probability_authentic": body["probability_authentic"],
        "category": _overall_category(body["per_photo"]),
        "reasons": _reasons(body["reasons"]),
        "thresholds": body["thresholds"],
        "model": {
            "sha256": body["model_sha256"],
            "name": model.name if model is not None else None,
            "version": body["model_version"],
        },
        "photos": [
            {
                "sha256": p["sha256"],
                "probability_authentic": p["probability_authentic"],
                "category": p["category"],
                "reasons": _reasons(p["reasons"]),
                "file": None,
                "heatmap_url": None,
            }
            for p in body["per_photo"]
        ],
        "index": index,
        "recorded_at": recorded_at,
    }


def _fingerprint(item_id: str, uploads: list[Upload], want_heatmaps: bool) -> str:
    h = hashlib.sha256(f"assess|{item_id}|{int(want_heatmaps)}".encode())
    for u in uploads:
        h.update(hashlib.sha256(u.data).digest())
    return h.hexdigest()


def entry_body(assessment_id: str, result: dict[str, Any]) -> dict[str, Any]:
    """The ``assessment.recorded`` body from the vision result (hashes and scores only)."""
    photos = result["photos"]
    return {
        "assessment_id": assessment_id,
        "photo_sha256": [p["sha256"] for p in photos],
        "model_sha256": result["model"]["sha256"],
        "model_version": result["model"]["version"],
        "decision": result["decision"],
        "probability_authentic": result["probability_authentic"],
        "per_photo": [
            {
                "sha256": p["sha256"],
                "probability_authentic": p.get("probability_authentic"),
                "category": p.get("category"),
                "reasons": [r["code"] for r in p.get("reasons", [])],
            }
            for p in photos
        ],
        "thresholds": {
            "authentic_above": result["thresholds"]["authentic_above"],
            "counterfeit_below": result["thresholds"]["counterfeit_below"],
        },
        "reasons": [r["code"] for r in result.get("reasons", [])],
    }


def assess_item(
    ctx: ServiceContext,
    principal: Principal,
    item_id: str,
    uploads: list[Upload],
    *,
    want_heatmaps: bool = False,
    idempotency_key: str | None = None,
) -> tuple[int, dict[str, Any]]:
    """Run the vision pipeline on an item's photos and record the verdict; (status, answer)."""
    require_own_item(ctx, principal, item_id)
    limit = ctx.settings.api_max_photos
    if not 1 <= len(uploads) <= limit:
        raise InvalidInput(f"send 1 to {limit} photos in the field 'photos'", count=len(uploads))
    assessment_id = new_id("asm")
    if idempotency_key is not None:
        fingerprint = _fingerprint(item_id, uploads, want_heatmaps)
        claim = idempotency.begin(ctx.engine, principal.id, idempotency_key, fingerprint, assessment_id)
        if isinstance(claim, idempotency.StoredResponse):
            return claim.status_code, json.loads(claim.body)
        assessment_id = claim.resource_id
        if claim.taken_over and _recorded(ctx, assessment_id):
            # The first run appended, then died before answering: answer from the log.
            answer = get_assessment(ctx, assessment_id)
            idempotency.complete(ctx.engine, principal.id, idempotency_key, 201, json.dumps(answer))
            return 201, answer
    try:
        answer = _assess(ctx, item_id, uploads, want_heatmaps, assessment_id)
    except BaseException:
        if idempotency_key is not None and not _recorded_safely(ctx, assessment_id):
            idempotency.abandon(ctx.engine, principal.id, idempotency_key)
        raise  # if the entry was appended, the claim stays: a retry answers from the log
    if idempotency_key is not None:
        idempotency.complete(ctx.engine, principal.id, idempotency_key, 201, json.dumps(answer))
    return 201, answer


def _recorded_safely(ctx: ServiceContext, assessment_id: str) -> bool:
    """Whether the entry made it into the log; True when that cannot be told (keep the claim)."""
    try:
        return _recorded(ctx, assessment_id)
    except Exception:
        return True


def _recorded(ctx: ServiceContext, assessment_id: str) -> bool:
    ctx.projector.catch_up()
    with read_tx(ctx.engine) as conn:
        return conn.execute(select(assessments.c.id).where(assessments.c.id == assessment_id)).first() is not None


def _assess(
    ctx: ServiceContext, item_id: str, uploads: list[Upload], want_heatmaps: bool, assessment_id: str
) -> dict[str, Any]:
    if ctx.assessor is None:
        raise ModelError("this process has no model loaded")
    from authenticator.vision.service import PhotoInput

    result_model = ctx.assessor.assess(
        [PhotoInput(u.filename, u.data) for u in uploads],
        item_id=item_id,
        reuse_index=ctx.photo_index,
        heatmaps=want_heatmaps,
    )
    result = result_model.model_dump(mode="json")
    for u in uploads:  # stored before the entry: no verdict ever points to a photo we lack
        ctx.blobs.put(u.data)
    body = entry_body(assessment_id, result)
    [receipt] = ctx.append([NewEntry("assessment.recorded", item_id, body)])
    stored = ctx.ledger.entry(receipt.index)
    for p in result["photos"]:
        if p.get("phash") is not None:
            value = p["phash"]
            ctx.photo_index.add(int(value, 16) if isinstance(value, str) else int(value), item_id, p["sha256"])
    heatmap_urls: dict[str, str] = {}
    for sha, png in (getattr(result_model, "heatmaps", None) or {}).items():
        png_sha = ctx.blobs.put(png)
        with write_tx(ctx.engine) as conn:
            conn.execute(insert(heatmaps).values(assessment_id=assessment_id, photo_sha256=sha, png_sha256=png_sha))
        heatmap_urls[sha] = f"/v1/assessments/{assessment_id}/heatmaps/{sha}"
    view = assessment_view(ctx, assessment_id, item_id, receipt.index, _entry_time(stored.data), body)
    for photo, upload, raw in zip(view["photos"], uploads, result["photos"], strict=True):
        photo["file"] = upload.filename
        photo["heatmap_url"] = heatmap_urls.get(photo["sha256"])
        photo["reused_from"] = raw.get("reused_from")
    view["receipt"] = receipt_json(receipt, stored.data)
    return view


def _entry_time(data: bytes) -> str:
    return str(json.loads(data)["time"])


def get_assessment(ctx: ServiceContext, assessment_id: str) -> dict[str, Any]:
    """Public: a recorded assessment and a fresh proof of its entry against the latest checkpoint."""
    with read_tx(ctx.engine) as conn:
        row = conn.execute(select(assessments).where(assessments.c.id == assessment_id)).first()
        maps = (
            conn.execute(select(heatmaps.c.photo_sha256).where(heatmaps.c.assessment_id == assessment_id))
            .scalars()
            .all()
        )
    if row is None:
        raise NotFound(f"no assessment {assessment_id}", assessment_id=assessment_id)
    view = assessment_view(ctx, row.id, row.item_id, int(row.entry_index), row.recorded_at, json.loads(row.body))
    for photo in view["photos"]:
        if photo["sha256"] in maps:
            photo["heatmap_url"] = f"/v1/assessments/{row.id}/heatmaps/{photo['sha256']}"
    stored = ctx.ledger.entry(int(row.entry_index))
    note = ctx.ledger.latest_checkpoint()
    size = int(note.split("\n")[1])
    view["receipt"] = {
        "index": stored.index,
        "leaf_hash": b64(stored.leaf_hash),
        "tree_size": size,
        "checkpoint": note,
        "inclusion_proof": [b64(h) for h in ctx.ledger.inclusion_proof(stored.index, size)],
        "entry": b64(stored.data),
    }
    return view


def _owned_assessment(ctx: ServiceContext, principal: Principal, assessment_id: str) -> dict[str, Any]:
    with read_tx(ctx.engine) as conn:
        row = conn.execute(
            select(assessments.c.body, items.c.platform)
            .join(items, items.c.id == assessments.c.item_id)
            .where(assessments.c.id == assessment_id)
        ).first()
    if row is None:
        raise NotFound(f"no assessment {assessment_id}", assessment_id=assessment_id)
    if row.platform != principal.id:
        raise PermissionDenied("photos and heat maps are readable by the item's platform only")
    body: dict[str, Any] = json.loads(row.body)
    return body


def assessment_photo(ctx: ServiceContext, principal: Principal, assessment_id: str, sha256: str) -> bytes:
    """A photo of the assessment (owner only); 404 when deleted on request or not part of it."""
    body = _owned_assessment(ctx, principal, assessment_id)
    if sha256 not in body["photo_sha256"]:
        raise NotFound("this photo is not part of the assessment")
    return ctx.blobs.get(sha256)


def assessment_heatmap(ctx: ServiceContext, principal: Principal, assessment_id: str, sha256: str) -> bytes:
    """The heat-map PNG of one photo (owner only), when it was asked for at upload."""
    _owned_assessment(ctx, principal, assessment_id)
    with read_tx(ctx.engine) as conn:
        png = conn.execute(
            select(heatmaps.c.png_sha256).where(
                heatmaps.c.assessment_id == assessment_id, heatmaps.c.photo_sha256 == sha256
            )
        ).scalar()
    if png is None:
        raise NotFound("no heat map for this photo (ask for heatmaps=true when uploading)")
    return ctx.blobs.get(str(png))
