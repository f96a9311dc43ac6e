"""Photos a seller can take back: erase an assessment's photos and heat maps, keep the record.

The log holds hashes only, so an erasure never rewrites history: the photos' bytes and their
heat maps leave the blob store, the photo-reuse index forgets them, and ``photos.erased``
(the hashes, who, when) is appended to the item's history. The verdict, its photo hashes and
every proof stay valid; reading an erased photo or heat map answers 404.

Blobs are content-addressed, so one file can be a photo of several assessments (the same
picture uploaded twice, for two items) or even a listing title or a heat map: the bytes are
deleted only when nothing that is not erased still names them. That decision and the deletion
run in the append's transaction, under the log's writer lock, so an assessment recording the
same bytes at the same moment either comes first (and keeps them) or comes after (and stores
them again under the same lock; see ``services/assessments.py``). If the transaction fails
after the files were removed, nothing is appended: the photos read as gone and a retry
appends the record.

Erasing is idempotent: photos already erased are not erased again (checked under the lock),
and a request with nothing left to erase answers the record that erased them, appending
nothing. The retention purge (``authenticator photos purge``) erases photos older than N days
the same way, one ``photos.erased`` per assessment, by ``operator``, reason ``retention``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Select, and_, delete, exists, select

from authenticator.contracts.assessments import PhotoErasure
from authenticator.contracts.common import Appended
from authenticator.contracts.common import Receipt as ReceiptOut
from authenticator.db import read_tx
from authenticator.errors import Conflict, NotFound, PermissionDenied
from authenticator.ledger.entries import format_time, parse_entry
from authenticator.ledger.log import NewEntry, Receipt, StoredEntry
from authenticator.services.commands import Command, execute
from authenticator.services.context import ServiceContext, fresh_receipt, receipt_of
from authenticator.store.idempotency import IdempotencyKey
from authenticator.store.keys import Principal
from authenticator.store.tables import (
    assessment_photos,
    assessments,
    certificates,
    erasures,
    heatmaps,
    items,
    listings,
)
from authenticator.text import check_free_text

RETENTION_BY = "operator"
RETENTION_REASON = "retention"
ATTEMPTS = 5
"""Plans of one request that another erase may overtake before it gives up (409)."""


@dataclass(frozen=True)
class Target:
    """An assessment whose photos may be erased: its item, owner and photo hashes (in order)."""

    assessment_id: str
    item_id: str
    platform: str
    photos: tuple[str, ...]


class _Overtaken(Exception):
    """Raised under the lock: another request erased some of the planned photos meanwhile."""


def _target(ctx: ServiceContext, assessment_id: str) -> Target:
    with read_tx(ctx.engine) as conn:
        row = conn.execute(
            select(assessments.c.item_id, assessments.c.body, items.c.platform)
            .join(items, items.c.id == assessments.c.item_id)
            .where(assessments.c.id == assessment_id)
        ).first()
    if row is None:
        raise NotFound(f"no assessment {assessment_id}", assessment_id=assessment_id)
    photos = tuple(dict.fromkeys(json.loads(row.body)["photo_sha256"]))
    return Target(assessment_id, str(row.item_id), str(row.platform), photos)


def erased_in(conn: Connection, assessment_id: str) -> dict[str, int]:
    """``{photo sha256: index of the photos.erased entry}`` of one assessment."""
    rows = conn.execute(
        select(erasures.c.photo_sha256, erasures.c.entry_index).where(erasures.c.assessment_id == assessment_id)
    ).all()
    return {str(r.photo_sha256): int(r.entry_index) for r in rows}


def erasure_marks(ctx: ServiceContext, assessment_id: str) -> dict[str, str]:
    """``{photo sha256: erased_at}`` of an assessment's erased photos (for its public view)."""
    with read_tx(ctx.engine) as conn:
        rows = conn.execute(
            select(erasures.c.photo_sha256, erasures.c.erased_at).where(erasures.c.assessment_id == assessment_id)
        ).all()
    return {str(r.photo_sha256): str(r.erased_at) for r in rows}


def _live_holders(sha256: str) -> Select[tuple[str]]:
    """Assessment photos with these bytes that are not erased."""
    erased = exists().where(
        and_(erasures.c.assessment_id == assessment_photos.c.assessment_id, erasures.c.photo_sha256 == sha256)
    )
    return select(assessment_photos.c.assessment_id).where(assessment_photos.c.photo_sha256 == sha256, ~erased)


def blob_still_needed(conn: Connection, sha256: str) -> bool:
    """Whether anything not erased still names these bytes: a photo of another assessment, a heat
    map, a listing title or a certificate envelope (content addressing shares files)."""
    probes = (
        _live_holders(sha256),
        select(heatmaps.c.png_sha256).where(heatmaps.c.png_sha256 == sha256),
        select(listings.c.id).where(listings.c.title_sha256 == sha256),
        select(certificates.c.id).where(certificates.c.envelope_sha256 == sha256),
    )
    return any(conn.execute(probe.limit(1)).first() is not None for probe in probes)


def _forget(ctx: ServiceContext, conn: Connection, target: Target, photos: Sequence[str]) -> None:
    """In the append's transaction (the erasures are projected already): heat maps, reuse index
    rows and the bytes nothing else needs."""
    pngs = set(
        conn.execute(
            select(heatmaps.c.png_sha256).where(
                heatmaps.c.assessment_id == target.assessment_id, heatmaps.c.photo_sha256.in_(photos)
            )
        ).scalars()
    )
    conn.execute(
        delete(heatmaps).where(heatmaps.c.assessment_id == target.assessment_id, heatmaps.c.photo_sha256.in_(photos))
    )
    for sha in photos:
        same_item = _live_holders(sha).where(assessment_photos.c.item_id == target.item_id).limit(1)
        if conn.execute(same_item).first() is None:
            ctx.photo_index.remove_in(conn, target.item_id, sha)
    for sha in [*photos, *sorted(pngs)]:
        if not blob_still_needed(conn, sha):
            ctx.blobs.delete(sha)


def record_view(ctx: ServiceContext, index: int, receipt: ReceiptOut | None = None) -> PhotoErasure:
    """The answer for the ``photos.erased`` entry at ``index`` (with a fresh receipt unless given)."""
    stored = ctx.ledger.entry(index)
    entry = parse_entry(stored.data)
    body = entry.body
    return PhotoErasure(
        assessment_id=body["assessment_id"],
        item_id=entry.item,
        photo_sha256=list(body["photo_sha256"]),
        by=body["by"],
        reason=body["reason"],
        erased_at=entry.time,
        index=index,
        receipt=receipt if receipt is not None else fresh_receipt(ctx, index),
    )


def _answer_for(ctx: ServiceContext, target: Target, asked: Sequence[str]) -> PhotoErasure:
    """The record that erased the last of ``asked`` (the one record, when one erase took them all)."""
    with read_tx(ctx.engine) as conn:
        done = erased_in(conn, target.assessment_id)
    indexes = [done[s] for s in asked if s in done]
    if not indexes:
        raise NotFound("these photos were not erased", assessment_id=target.assessment_id)
    return record_view(ctx, max(indexes))


def erase(
    ctx: ServiceContext,
    target: Target,
    asked: Sequence[str],
    *,
    by: str,
    reason: str | None,
    key: IdempotencyKey | None = None,
) -> tuple[int, PhotoErasure | Appended, bool]:
    """Erase ``asked`` (photos of ``target``) once; ``(status, answer, appended)``."""
    for _ in range(ATTEMPTS):
        with read_tx(ctx.engine) as conn:
            done = erased_in(conn, target.assessment_id)
        todo = [s for s in asked if s not in done]
        if not todo:
            return 200, _answer_for(ctx, target, asked), False
        body = {"assessment_id": target.assessment_id, "photo_sha256": todo, "by": by, "reason": reason}

        def none_taken(conn: Connection, todo: list[str] = todo) -> None:
            now = erased_in(conn, target.assessment_id)
            if any(s in now for s in todo):
                raise _Overtaken

        def forget(conn: Connection, _stored: list[StoredEntry], todo: list[str] = todo) -> None:
            _forget(ctx, conn, target, todo)

        def respond(receipts: list[Receipt]) -> PhotoErasure:
            return record_view(ctx, receipts[0].index, receipt_of(receipts[0]))

        command = Command(
            [NewEntry("photos.erased", target.item_id, body)], target.assessment_id, check=none_taken, after=forget
        )
        try:
            status, answer = execute(
                ctx,
                command,
                respond,
                replay=lambda _aid: _answer_for(ctx, target, asked),
                answer_type=PhotoErasure,
                key=key,
                status=200,
            )
        except _Overtaken:
            continue
        return status, answer, True
    raise Conflict("other requests are erasing these photos now; try again", assessment_id=target.assessment_id)


def erase_photos(
    ctx: ServiceContext,
    principal: Principal,
    assessment_id: str,
    sha256: str | None = None,
    *,
    reason: str | None = None,
    idempotency_key: str | None = None,
) -> tuple[int, PhotoErasure | Appended]:
    """Erase every photo of an assessment, or the one named by ``sha256`` (the item's platform
    or an admin); answers the ``photos.erased`` record and its receipt, the first one again
    when there is nothing left to erase."""
    target = _target(ctx, assessment_id)
    if principal.role != "admin" and target.platform != principal.id:
        raise PermissionDenied("only the item's platform or an operator may erase its photos")
    if sha256 is not None and sha256 not in target.photos:
        raise NotFound("this photo is not part of the assessment", assessment_id=assessment_id)
    if reason is not None:
        reason = check_free_text(reason, "reason")
    asked = target.photos if sha256 is None else (sha256,)
    key = (
        None
        if idempotency_key is None
        else IdempotencyKey(principal.id, idempotency_key, f"erase|{assessment_id}|{sha256 or '*'}|{reason or ''}")
    )
    status, answer, _ = erase(ctx, target, asked, by=principal.id, reason=reason, key=key)
    return status, answer


# --- Retention ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PurgeSummary:
    """What a retention purge did (or, with ``dry_run``, would do)."""

    cutoff: str
    dry_run: bool
    photos: int
    entries: int
    assessment_ids: tuple[str, ...]

    @property
    def assessments(self) -> int:
        return len(self.assessment_ids)


def _due(ctx: ServiceContext, cutoff: str) -> dict[str, list[str]]:
    """``{assessment id: photos recorded before cutoff and not erased}``, oldest assessments first."""
    erased = exists().where(
        and_(
            erasures.c.assessment_id == assessment_photos.c.assessment_id,
            erasures.c.photo_sha256 == assessment_photos.c.photo_sha256,
        )
    )
    with read_tx(ctx.engine) as conn:
        rows = conn.execute(
            select(assessment_photos.c.assessment_id, assessment_photos.c.photo_sha256)
            .where(assessment_photos.c.recorded_at < cutoff, ~erased)
            .order_by(assessment_photos.c.recorded_at, assessment_photos.c.assessment_id)
        ).all()
    due: dict[str, list[str]] = {}
    for r in rows:
        due.setdefault(str(r.assessment_id), []).append(str(r.photo_sha256))
    return due


def purge_older_than(
    ctx: ServiceContext, older_than: timedelta, *, dry_run: bool = False, now: datetime | None = None
) -> PurgeSummary:
    """Erase every photo recorded more than ``older_than`` before ``now`` (default: the clock),
    one ``photos.erased`` per assessment (by ``operator``, reason ``retention``)."""
    cutoff = format_time((now if now is not None else datetime.now(UTC)) - older_than)
    photo_count, entries, done = 0, 0, []
    for assessment_id, photos in _due(ctx, cutoff).items():
        target = _target(ctx, assessment_id)
        order = {s: i for i, s in enumerate(target.photos)}
        asked = sorted(photos, key=lambda s: order.get(s, len(order)))
        if dry_run:
            appended, count = False, len(asked)
        else:
            _, answer, appended = erase(ctx, target, asked, by=RETENTION_BY, reason=RETENTION_REASON)
            erased = answer.photo_sha256 if isinstance(answer, PhotoErasure) else asked  # Appended: all asked
            count = len(erased) if appended else 0
        if dry_run or appended:
            photo_count += count
            entries += int(appended)
            done.append(assessment_id)
    return PurgeSummary(cutoff=cutoff, dry_run=dry_run, photos=photo_count, entries=entries, assessment_ids=tuple(done))
