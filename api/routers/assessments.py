"""Recorded assessments; their photos and heat maps for the owning platform only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse

from api.auth import Ctx, Platform, require
from api.routers.common import IdempotencyKeyHeader, answered, errors
from authenticator.contracts.assessments import Assessment, PhotoErasure
from authenticator.services import assessment_reads, erasure
from authenticator.store.keys import Principal
from authenticator.text import FreeText

router = APIRouter(tags=["assessments"])


HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
"""ISO-BMFF major brands of HEIC/HEIF stills (an MP4, MOV or AVIF has another one)."""
BLOB_CSP = "default-src 'none'; sandbox"


def _image_type(data: bytes) -> tuple[str, str]:
    """``(content type, file extension)`` from the magic bytes alone; never what the uploader said."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg", "jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png", "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", "webp"
    if data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS:
        return "image/heic", "heic"
    return "application/octet-stream", "bin"


def blob_response(data: bytes, name: str) -> Response:
    """A stored blob as an answer no browser will render as anything but an image (or a download).

    The type comes from the magic bytes (JPEG, PNG, WebP, HEIC; anything else is
    ``application/octet-stream`` served as an attachment), with ``nosniff`` and a sandboxing CSP,
    so bytes that happen to be HTML, SVG or script never run in this origin.
    """
    media_type, ext = _image_type(data)
    disposition = "attachment" if media_type == "application/octet-stream" else "inline"
    safe_name = "".join(c for c in name if c.isascii() and (c.isalnum() or c == "-"))[:80] or "blob"
    headers = {
        "Cache-Control": "private, max-age=3600",
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f'{disposition}; filename="{safe_name}.{ext}"',
        "Content-Security-Policy": BLOB_CSP,
        "Cross-Origin-Resource-Policy": "same-origin",
    }
    return Response(data, media_type=media_type, headers=headers)


@router.get("/v1/assessments/{assessment_id}", response_model=Assessment, responses=errors(404))
def get_assessment(assessment_id: str, ctx: Ctx) -> Assessment:
    """Public: a recorded verdict (its entry is public in the log) with a fresh inclusion proof."""
    return assessment_reads.get_assessment(ctx, assessment_id)


@router.get(
    "/v1/assessments/{assessment_id}/photos/{sha256}",
    response_class=Response,
    responses={
        200: {
            "description": "The photo's bytes as uploaded (content-addressed by its SHA-256).",
            "content": {"image/jpeg": {"example": "<JPEG bytes>"}, "image/png": {"example": "<PNG bytes>"}},
        },
        **errors(401, 403, 404),
    },
)
def get_photo(assessment_id: str, sha256: str, principal: Platform, ctx: Ctx) -> Response:
    """A photo of the assessment (the item's platform only)."""
    data = assessment_reads.assessment_photo(ctx, principal, assessment_id, sha256)
    return blob_response(data, sha256)


@router.get(
    "/v1/assessments/{assessment_id}/heatmaps/{sha256}",
    response_class=Response,
    responses={
        200: {
            "description": "PNG overlay: red where occluding the region moved the score most.",
            "content": {"image/png": {"example": "<PNG bytes>"}},
        },
        **errors(401, 403, 404),
    },
)
def get_heatmap(assessment_id: str, sha256: str, principal: Platform, ctx: Ctx) -> Response:
    """The occlusion heat map of one photo (the item's platform only; asked for with `heatmaps=true`)."""
    data = assessment_reads.assessment_heatmap(ctx, principal, assessment_id, sha256)
    return blob_response(data, f"heatmap-{sha256}")


PlatformOrAdmin = Annotated[Principal, Depends(require("platform", "admin"))]


@router.delete(
    "/v1/assessments/{assessment_id}/photos", response_model=PhotoErasure, responses=errors(401, 403, 404, 409, 422)
)
def erase_photos(
    assessment_id: str,
    principal: PlatformOrAdmin,
    ctx: Ctx,
    response: Response,
    sha256: Annotated[
        str | None, Query(pattern="^[0-9a-f]{64}$", description="Erase this photo only (default: every photo).")
    ] = None,
    reason: Annotated[
        FreeText | None, Query(min_length=1, max_length=200, description="Why, in a few words: `seller request`.")
    ] = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> PhotoErasure | JSONResponse:
    """Take photos back (the item's platform or an admin): the photos and their heat maps leave the
    blob store (bytes another assessment still uses stay for it), the photo-reuse index forgets
    them, and `photos.erased` is appended. The verdict and every proof stay valid; the photo and
    heat-map URLs answer 404. Erasing again appends nothing and answers the first record."""
    return answered(
        response,
        erasure.erase_photos(ctx, principal, assessment_id, sha256, reason=reason, idempotency_key=idempotency_key),
    )
