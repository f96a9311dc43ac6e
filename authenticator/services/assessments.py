"""Assessments: photos in, a verdict out, recorded in the log with a receipt.

The vision pipeline runs first (CPU, in the caller's worker thread); then the photos and heat
maps are stored content-addressed, then ``assessment.recorded`` is appended with the photo-index
and heat-map rows in the same transaction. A failure before the commit leaves no entry; with an
``Idempotency-Key`` a retry gets the first answer and no second entry.

Only a submission with at least one usable photo enters the public record: when every photo is
unreadable, fails the quality gate or (where the model can tell) shows something other than a
bag, watch or sneaker, it is refused with each photo's reasons (:class:`NoUsablePhoto`) before
anything is stored or appended. :func:`preview_assessment` runs the same pipeline and answers the
provisional verdict without storing or appending anything, so a seller can check photos first.
The photo-reuse check looks at other platforms' items only: a platform that sends its own photos
again (a retry that registered a second item) is not flagged as reusing someone else's photos.
Reading recorded assessments back is :mod:`authenticator.services.assessment_reads`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert, select

from authenticator.contracts.assessments import Assessment, AssessmentPreview, PreviewPhoto
from authenticator.contracts.common import Appended, ModelRef
from authenticator.errors import Conflict, InvalidInput, ModelError, NoUsablePhoto
from authenticator.ledger.entries import parse_entry
from authenticator.ledger.entry_types import AssessmentRecorded
from authenticator.ledger.log import NewEntry, Receipt, StoredEntry
from authenticator.services.assessment_reads import assessment_view, get_assessment, reason_out
from authenticator.services.commands import Command, execute, replay_if_recorded
from authenticator.services.context import ServiceContext, receipt_of
from authenticator.services.items import item_row, require_own_item
from authenticator.services.serving import ShadowJob, current_assessor, shadow_active, submit_shadow
from authenticator.services.views import (
    DeclaredViews,
    declare_views,
    missing_views_reason,
    retake_for_view,
    view_refs,
)
from authenticator.store.idempotency import IdempotencyKey
from authenticator.store.keys import Principal, new_id
from authenticator.store.projections import photoset_sha256
from authenticator.store.tables import assessments, heatmaps
from authenticator.vision.capture_guides import Framing, View
from authenticator.vision.phash import ReuseMatch
from authenticator.vision.product_lines import DeclaredLine
from authenticator.vision.reasons import Reason, retake_hint, set_aside

if TYPE_CHECKING:
    from authenticator.vision.service import Assessment as VisionAssessment
    from authenticator.vision.service import PhotoResult


@dataclass(frozen=True)
class Upload:
    """One uploaded photo: the client's file name (never stored), the bytes and the view of the
    capture guide the uploader declared (None: unspecified)."""

    filename: str
    data: bytes
    view: str | None = None


def expand_videos(uploads: list[Upload]) -> list[Upload]:
    """Each MP4/MOV video among the uploads becomes its sharpest distinct frames, each a photo
    (:mod:`authenticator.vision.video`); photos pass through. A video's frames have no view."""
    from authenticator.vision.video import is_video, sharpest_frames

    if not any(is_video(u.data) for u in uploads):
        return uploads
    out: list[Upload] = []
    for u in uploads:
        if not is_video(u.data):
            out.append(u)
            continue
        if u.view not in (None, "", "unspecified"):
            raise InvalidInput(f"{u.filename}: a video's frames have no single view; declare it 'unspecified'")
        out.extend(Upload(f.filename, f.data) for f in sharpest_frames(u.data, u.filename))
    return out


def _photos_of(ctx: ServiceContext, uploads: list[Upload]) -> list[Upload]:
    """The uploads with each video expanded into its frames; refuses a count outside 1..limit,
    saying how many it counted (a video's frames count as photos)."""
    photos = expand_videos(uploads)
    limit = ctx.settings.api_max_photos
    if not 1 <= len(photos) <= limit:
        frames = " (each video counts as the frames taken from it)" if len(photos) != len(uploads) else ""
        raise InvalidInput(
            f"send 1 to {limit} photos in the field 'photos'; this request has {len(photos)}{frames}",
            count=len(photos),
        )
    return photos


def _fingerprint(item_id: str, uploads: list[Upload], want_heatmaps: bool) -> str:
    h = hashlib.sha256(f"assess|{item_id}|{int(want_heatmaps)}".encode())
    for u in uploads:
        h.update(hashlib.sha256(u.data).digest())
    if any(u.view for u in uploads):  # the same photos declared as other views are another request
        h.update(("|views|" + "|".join(u.view or "" for u in uploads)).encode())
    return h.hexdigest()


@dataclass(frozen=True)
class Verdict:
    """The vision pipeline's result plus what the declared views add: the ``missing_views``
    reason and the required views no photo was declared as (None: the upload declared none)."""

    assessed: VisionAssessment
    reasons: list[Reason]
    missing_views: list[View] | None = None

    @property
    def photos(self) -> list[PhotoResult]:
        return self.assessed.photos


def entry_body(assessment_id: str, verdict: Verdict) -> dict[str, Any]:
    """The ``assessment.recorded`` body from the vision result (hashes and scores only; each photo's
    declared view and the missing required views when the upload declared views). JSON for the
    log: the ledger checks it against ``entry_types.AssessmentRecorded`` when it appends it."""
    result = verdict.assessed
    body: dict[str, Any] = {
        "assessment_id": assessment_id,
        "photo_sha256": [p.sha256 for p in result.photos],
        "model_sha256": result.model.sha256,
        "model_version": result.model.version,
        "decision": result.decision,
        "probability_authentic": result.probability_authentic,
        "per_photo": [
            {
                "sha256": p.sha256,
                "probability_authentic": p.probability_authentic,
                "category": p.category,
                "reasons": [r.code for r in p.reasons],
            }
            | ({"view": p.view} if p.view is not None else {})
            for p in result.photos
        ],
        "thresholds": {
            "authentic_above": result.thresholds.authentic_above,
            "counterfeit_below": result.thresholds.counterfeit_below,
        },
        "reasons": [r.code for r in verdict.reasons],
    }
    if verdict.missing_views is not None:
        body["missing_views"] = [v.id for v in verdict.missing_views]
    return body


class _OtherPlatformsPhotos:
    """The photo-reuse index as one platform sees it: only other platforms' items count as reuse.

    A platform that sends its own photos again for another of its items (a retry that
    registered the item twice) is not reusing someone else's photos. The index leaves that
    platform's items out in its own statement."""

    def __init__(self, ctx: ServiceContext, platform: str) -> None:
        self.ctx = ctx
        self.platform = platform

    def lookup(self, phash: int, exclude_item: str | None) -> list[ReuseMatch]:
        return self.lookup_many([phash], exclude_item)[0]

    def lookup_many(self, phashes: Sequence[int], exclude_item: str | None) -> list[list[ReuseMatch]]:
        """Each photo's matches on other platforms' items, the whole set in one index query."""
        return self.ctx.photo_index.lookup_many(phashes, exclude_item=exclude_item, exclude_platform=self.platform)

    def add(self, phash: int, item_id: str, photo_sha256: str) -> None:
        self.ctx.photo_index.add(phash, item_id, photo_sha256)


def _run_vision(
    ctx: ServiceContext,
    principal: Principal,
    uploads: list[Upload],
    *,
    item_id: str | None,
    heatmaps: bool,
    views: DeclaredViews | None = None,
) -> VisionAssessment:
    """The vision pipeline on the uploads (nothing stored): the ``Assessment`` of the model this worker
    serves now (taken once: the request finishes on it even if another is promoted meanwhile), judged
    as the product line the item was registered as (without an item: no declared line)."""
    assessor = current_assessor(ctx)
    if assessor is None:
        raise ModelError("this process has no model loaded")
    from authenticator.vision.service import PhotoInput

    return assessor.assess(
        [
            PhotoInput(u.filename, u.data, view=view, framing=framing)
            for u, (view, framing) in zip(uploads, _view_framings(uploads, views), strict=True)
        ],
        item_id=item_id,
        reuse_index=_OtherPlatformsPhotos(ctx, principal.id),
        heatmaps=heatmaps,
        principal=principal.id,
        line=_declared_line(ctx, item_id),
    )


def _declared_line(ctx: ServiceContext, item_id: str | None) -> DeclaredLine | None:
    """The product line an item was registered as (its verdict uses that line's operating point)."""
    if item_id is None:
        return None
    row = item_row(ctx, item_id)
    return DeclaredLine(row.category, row.brand, row.model)


def _view_framings(uploads: list[Upload], views: DeclaredViews | None) -> list[tuple[str | None, Framing]]:
    """Each photo's declared view and the framing the quality gate holds it to."""
    if views is None:
        return [(None, "whole") for _ in uploads]
    return [(views.view_of(i), views.framing(i)) for i in range(len(uploads))]


def _declared_views(
    ctx: ServiceContext, uploads: list[Upload], item_id: str | None, category: str | None
) -> DeclaredViews:
    """The uploads' views checked against the capture guide of the item's category (or ``category``)."""
    if item_id is not None:
        category = item_row(ctx, item_id).category
    return declare_views(category, [u.view for u in uploads], len(uploads))


def _with_missing_views(result: VisionAssessment, declared: DeclaredViews) -> Verdict:
    """The vision result plus, when the upload declared views, the required views it lacks (a
    ``missing_views`` reason naming them and what each photo should show; the decision stands)."""
    if not declared.declared or declared.guide is None:
        return Verdict(result, list(result.reasons))
    missing = declared.missing()
    reasons = list(result.reasons)
    if missing:
        reasons.append(missing_views_reason(missing))
    return Verdict(result, reasons, missing)


def _usable(ctx: ServiceContext, photo: PhotoResult) -> bool:
    """A photo that may enter the record: decoded, through the quality gate, and, where the model
    has a reference bank to tell (the shipped one recognises 99.2% of the development photos), a
    bag, watch or sneaker. Without a bank "no category" only means the model cannot tell."""
    if photo.probability_authentic is None:
        return False
    can_tell = ctx.assessor is not None and getattr(ctx.assessor, "bank", None) is not None
    return not (can_tell and photo.category is None)


def _photo_problems(photo: PhotoResult, number: int) -> str:
    name = photo.file or f"photo {number}"
    words = " ".join(r.message for r in photo.reasons) or "It cannot be used."
    return f"{name}: {words}"


def _refuse_without_usable_photo(ctx: ServiceContext, photos: list[PhotoResult]) -> None:
    if any(_usable(ctx, p) for p in photos):
        return
    n = len(photos)
    detail = "; ".join(_photo_problems(p, i) for i, p in enumerate(photos, 1))
    raise NoUsablePhoto(
        f"Nothing was recorded: {'the photo' if n == 1 else f'none of the {n} photos'} can be used. {detail}",
        photos=[{"file": p.file, "reasons": [r.code for r in p.reasons]} for p in photos],
    )


def preview_assessment(
    ctx: ServiceContext,
    principal: Principal,
    uploads: list[Upload],
    *,
    item_id: str | None = None,
    category: str | None = None,
) -> AssessmentPreview:
    """Check photos without recording anything: quality, "what is it?", the provisional verdict.

    Runs the same pipeline as :func:`assess_item` (the item, when given, must be the caller's)
    but stores no photo and appends no entry. Photos that were set aside get no score, only
    their reasons and what a retake should show; ``recordable`` says whether recording these
    photos would be accepted, ``refusal`` why not. Declared views are checked against the capture guide of the
    item's category (or of ``category`` for photos of an item not registered yet).
    """
    if item_id is not None:
        require_own_item(ctx, principal, item_id)
    uploads = _photos_of(ctx, uploads)
    declared = _declared_views(ctx, uploads, item_id, category)
    assessed = _run_vision(ctx, principal, uploads, item_id=item_id, heatmaps=False, views=declared)
    verdict = _with_missing_views(assessed, declared)
    refusal = None
    try:
        _refuse_without_usable_photo(ctx, verdict.photos)
    except NoUsablePhoto as exc:
        refusal = exc.message
    photos = []
    for raw in verdict.photos:
        codes = [r.code for r in raw.reasons]
        aside = set_aside(codes)
        photos.append(
            PreviewPhoto(
                file=raw.file,
                sha256=raw.sha256,
                probability_authentic=None if aside else raw.probability_authentic,
                category=raw.category,
                reasons=[reason_out(r) for r in raw.reasons],
                set_aside=aside,
                usable=_usable(ctx, raw),
                retake=retake_for_view(declared.guide, raw.view, retake_hint(codes)) if aside else None,
                reused_from=raw.reused_from,
                view=raw.view,
            )
        )
    return AssessmentPreview(
        item_id=item_id,
        decision=assessed.decision,
        probability_authentic=assessed.probability_authentic,
        category=assessed.category,
        reasons=[reason_out(r) for r in verdict.reasons],
        thresholds=assessed.thresholds,
        model=ModelRef(sha256=assessed.model.sha256, name=assessed.model.name, version=assessed.model.version),
        photos=photos,
        missing_views=None if verdict.missing_views is None else view_refs(verdict.missing_views),
        recordable=refusal is None,
        refusal=refusal,
    )


def assess_item(
    ctx: ServiceContext,
    principal: Principal,
    item_id: str,
    uploads: list[Upload],
    *,
    want_heatmaps: bool = False,
    idempotency_key: str | None = None,
    on_recorded: Callable[[Assessment], None] | None = None,
) -> tuple[int, Assessment | Appended]:
    """Run the vision pipeline on an item's photos and record the verdict; (status, answer).

    ``on_recorded`` is called with the answer when this call appended the verdict (not for a
    replay of an earlier one): what counts recorded assessments counts each once.

    One verdict per item, photo set and model: the same photos sent again (a doubled request)
    get 409 naming the first assessment; with the same ``Idempotency-Key`` they get its answer.
    """
    require_own_item(ctx, principal, item_id)
    uploads = _photos_of(ctx, uploads)
    key = (
        None
        if idempotency_key is None
        else IdempotencyKey(principal.id, idempotency_key, _fingerprint(item_id, uploads, want_heatmaps))
    )
    replay = lambda aid: get_assessment(ctx, aid)  # noqa: E731
    early = replay_if_recorded(ctx, key, replay, Assessment)
    if early is not None:
        return early
    declared = _declared_views(ctx, uploads, item_id, None)
    result_model = _run_vision(ctx, principal, uploads, item_id=item_id, heatmaps=want_heatmaps, views=declared)
    verdict = _with_missing_views(result_model, declared)
    _refuse_without_usable_photo(ctx, verdict.photos)  # nothing stored, nothing appended
    for u in uploads:  # stored before the entry: no verdict ever points to a photo we lack
        ctx.blobs.put(u.data)
    heatmap_pngs = {sha: ctx.blobs.put(png) for sha, png in result_model.heatmaps.items()}
    assessment_id = new_id("asm")
    body = entry_body(assessment_id, verdict)
    photoset = photoset_sha256(body["photo_sha256"])

    def first_of_its_kind(conn: Connection) -> None:
        earlier = conn.execute(
            select(assessments.c.id).where(
                assessments.c.item_id == item_id,
                assessments.c.photoset_sha256 == photoset,
                assessments.c.model_sha256 == body["model_sha256"],
            )
        ).scalar()
        if earlier is not None:
            raise Conflict("these photos were already assessed for this item by this model", assessment_id=str(earlier))

    def side_tables(conn: Connection, _stored: list[StoredEntry]) -> None:
        # Again under the writer lock (a no-op when the files are there): an erase of the same
        # bytes for another assessment may have deleted them since they were stored above.
        for u in uploads:
            ctx.blobs.put(u.data)
        for png in result_model.heatmaps.values():
            ctx.blobs.put(png)
        for p in verdict.photos:
            if p.phash is not None:
                ctx.photo_index.add_in(conn, int(p.phash, 16), item_id, p.sha256)
        for sha, png_sha in heatmap_pngs.items():
            conn.execute(insert(heatmaps).values(assessment_id=assessment_id, photo_sha256=sha, png_sha256=png_sha))

    def answer(receipts: list[Receipt]) -> Assessment:
        receipt = receipts[0]
        entry = parse_entry(receipt.data)  # the body as the log holds it, and the entry's own time
        recorded = AssessmentRecorded.model_validate(entry.body)
        view = assessment_view(ctx, assessment_id, item_id, receipt.index, entry.time, recorded, receipt_of(receipt))
        for photo, upload, raw in zip(view.photos, uploads, verdict.photos, strict=True):
            photo.file = upload.filename
            if photo.sha256 in heatmap_pngs:
                photo.heatmap_url = f"/v1/assessments/{assessment_id}/heatmaps/{photo.sha256}"
            photo.reused_from = raw.reused_from
        return view

    command = Command(
        [NewEntry("assessment.recorded", item_id, body)], assessment_id, check=first_of_its_kind, after=side_tables
    )
    status, out = execute(ctx, command, answer, replay=replay, answer_type=Assessment, key=key)
    if out.id == assessment_id and on_recorded is not None and isinstance(out, Assessment):
        on_recorded(out)
    if out.id == assessment_id and shadow_active(ctx):  # recorded here: the shadow models score it too
        photos = [(u.filename, u.data) for u in uploads]
        line = _declared_line(ctx, item_id)
        submit_shadow(ctx, ShadowJob(assessment_id, item_id, photos, line, body["model_sha256"], body["decision"]))
    return status, out
