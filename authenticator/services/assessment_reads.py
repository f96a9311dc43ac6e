"""Reading recorded assessments: the public answer built from a log entry, a fresh proof, and
the photos and heat maps for the item's platform. The write side (photos in, verdict recorded)
is :mod:`authenticator.services.assessments`."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from authenticator.contracts.assessments import Assessment, PhotoVerdict
from authenticator.contracts.common import ModelRef, ReasonOut
from authenticator.contracts.common import Receipt as ReceiptOut
from authenticator.db import read_tx
from authenticator.errors import NotFound, PermissionDenied
from authenticator.ledger.entry_types import AssessmentRecorded
from authenticator.services.context import ServiceContext, fresh_receipt
from authenticator.services.erasure import erasure_marks
from authenticator.services.items import item_row
from authenticator.services.views import guide_of_category, missing_views_reason, recorded_missing, view_refs
from authenticator.store.keys import Principal
from authenticator.store.tables import assessments, heatmaps, items, models
from authenticator.vision.reasons import Reason, reason, set_aside


def _reasons(codes: list[str], category: str | None = None) -> list[ReasonOut]:
    """The messages of reason codes; ``category`` words ``category_not_validated`` (a watch: a lab)."""
    return [reason_out(reason(c, category=category)) for c in codes]


def reason_out(r: Reason) -> ReasonOut:
    return ReasonOut(code=r.code, message=r.message)


def _overall_category(categories: list[str | None]) -> str | None:
    cats = Counter(c for c in categories if c)
    if len(cats) == 1:
        return next(iter(cats))
    return None


def _most_shown_category(categories: list[str | None]) -> str | None:
    cats = Counter(c for c in categories if c)
    return cats.most_common(1)[0][0] if cats else None


def assessment_view(
    ctx: ServiceContext,
    assessment_id: str,
    item_id: str,
    index: int,
    recorded_at: str,
    body: AssessmentRecorded,
    receipt: ReceiptOut,
) -> Assessment:
    """The public answer for a recorded assessment, built from its log entry alone."""
    with read_tx(ctx.engine) as conn:
        model = conn.execute(
            select(models.c.name, models.c.version).where(models.c.sha256 == body.model_sha256)
        ).first()
    missing = None
    if body.missing_views is not None:  # the upload declared views: name what was missing, as the guide says
        missing = recorded_missing(guide_of_category(item_row(ctx, item_id).category), body.missing_views)
    categories = [p.category for p in body.per_photo]
    reasons = _reasons(body.reasons, _most_shown_category(categories))
    if missing:
        named = reason_out(missing_views_reason(missing))
        reasons = [named if r.code == "missing_views" else r for r in reasons]
    return Assessment(
        id=assessment_id,
        item_id=item_id,
        decision=body.decision,
        probability_authentic=body.probability_authentic,
        category=_overall_category(categories),
        reasons=reasons,
        thresholds=body.thresholds,
        model=ModelRef(
            sha256=body.model_sha256, name=model.name if model is not None else None, version=body.model_version
        ),
        photos=[
            PhotoVerdict(
                sha256=p.sha256,
                # a photo left out of the verdict gets no score at all (the entry keeps what was measured)
                probability_authentic=None if set_aside(p.reasons) else p.probability_authentic,
                category=p.category,
                reasons=_reasons(p.reasons, p.category),
                set_aside=set_aside(p.reasons),
                view=p.view,
            )
            for p in body.per_photo
        ],
        missing_views=None if missing is None else view_refs(missing),
        index=index,
        recorded_at=recorded_at,
        receipt=receipt,
    )


def get_assessment(ctx: ServiceContext, assessment_id: str) -> Assessment:
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
    recorded = AssessmentRecorded.model_validate_json(row.body)
    receipt = fresh_receipt(ctx, int(row.entry_index))
    view = assessment_view(ctx, row.id, row.item_id, int(row.entry_index), row.recorded_at, recorded, receipt)
    erased = erasure_marks(ctx, row.id)
    for photo in view.photos:
        if photo.sha256 in erased:  # taken back: the hash and score stay, the bytes are gone
            photo.erased, photo.erased_at = True, erased[photo.sha256]
        elif photo.sha256 in maps:
            photo.heatmap_url = f"/v1/assessments/{row.id}/heatmaps/{photo.sha256}"
    return view


def _owned_assessment(ctx: ServiceContext, principal: Principal, assessment_id: str) -> AssessmentRecorded:
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
    return AssessmentRecorded.model_validate_json(row.body)


def assessment_photo(ctx: ServiceContext, principal: Principal, assessment_id: str, sha256: str) -> bytes:
    """A photo of the assessment (owner only); 404 when erased or not part of it."""
    body = _owned_assessment(ctx, principal, assessment_id)
    if sha256 not in body.photo_sha256:
        raise NotFound("this photo is not part of the assessment")
    _not_erased(ctx, assessment_id, sha256)
    return ctx.blobs.get(sha256)


def _not_erased(ctx: ServiceContext, assessment_id: str, sha256: str) -> None:
    """404 for a photo taken back (its bytes may live on for another assessment that shares them)."""
    erased_at = erasure_marks(ctx, assessment_id).get(sha256)
    if erased_at is not None:
        raise NotFound(f"this photo was erased on {erased_at[:10]}", assessment_id=assessment_id)


def assessment_heatmap(ctx: ServiceContext, principal: Principal, assessment_id: str, sha256: str) -> bytes:
    """The heat-map PNG of one photo (owner only), when it was asked for at upload (404 once erased)."""
    _owned_assessment(ctx, principal, assessment_id)
    _not_erased(ctx, assessment_id, sha256)
    with read_tx(ctx.engine) as conn:
        png = conn.execute(
            select(heatmaps.c.png_sha256).where(
                heatmaps.c.assessment_id == assessment_id, heatmaps.c.photo_sha256 == sha256
            )
        ).scalar()
    if png is None:
        raise NotFound("no heat map for this photo (ask for heatmaps=true when uploading)")
    return ctx.blobs.get(str(png))
