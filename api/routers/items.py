"""Items and everything that hangs off an item: assessments, certificates, custody, its trace."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api.auth import Ctx, LabRole, Platform
from api.live import LIVE_REQUEST
from api.multipart import read_whole_form
from api.routers.common import MAX_INT, IdempotencyKeyHeader, answered, errors
from api.schemas import Certificate, CustodyCreate, DsseEnvelope, ItemCreate
from authenticator.contracts.assessments import Assessment, AssessmentPreview
from authenticator.contracts.items import Item, ItemCreated, ItemHead, Trace
from authenticator.contracts.listings import CustodyRecorded
from authenticator.errors import InvalidInput, UnsupportedMediaType
from authenticator.services import assessments, certificates, custody, items, traces

router = APIRouter(tags=["items"])

_MULTIPART: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["photos"],
                    "properties": {
                        "photos": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "minItems": 1,
                            "maxItems": 12,
                            "description": "1 to 12 photos of one item: JPEG, PNG, WebP or HEIC.",
                        },
                        "video": {
                            "type": "string",
                            "format": "binary",
                            "description": "Optional: a short phone video of the item (MP4 or MOV, at most 50 MB and "
                            "60 s): its sharpest distinct frames (at most 6) are assessed as photos, after the photos; "
                            "a video sent in `photos` is read the same way.",
                        },
                        "views": {
                            "type": "array",
                            "items": {"type": "string", "maxLength": 64},
                            "maxItems": 12,
                            "description": "Each photo's view, in the order of the photos (one field per photo): an id "
                            "of the item category's capture guide (`GET /v1/capture-guides/{category}`) or "
                            "`unspecified`. Photos without one are `unspecified`; an upload with no views at all "
                            "is assessed as before (no view in the record, no `missing_views`).",
                        },
                    },
                },
                "encoding": {
                    "photos": {
                        "contentType": "image/jpeg, image/png, image/webp, image/heic, video/mp4, video/quicktime"
                    },
                    "video": {"contentType": "video/mp4, video/quicktime"},
                },
            }
        },
    }
}


@router.post("/v1/items", status_code=201, response_model=ItemCreated, responses=errors(401, 403, 409, 413, 415, 422))
def register_item(
    body: ItemCreate, principal: Platform, ctx: Ctx, response: Response, idempotency_key: IdempotencyKeyHeader = None
) -> ItemCreated | JSONResponse:
    """Register an item (platform). Appends `item.registered`; the serial number only as a salted commitment.

    Two registrations are two items: send an `Idempotency-Key` to make a retry safe."""
    return answered(
        response,
        items.register_item(
            ctx, principal, body.category, body.brand, body.model, body.serial_number, key=idempotency_key
        ),
    )


@router.get("/v1/items/{item_id}", response_model=Item, responses=errors(404))
def get_item(item_id: str, ctx: Ctx) -> Item:
    """Public: what the item is and its current badge, derived from the log."""
    return items.get_item(ctx, item_id)


@router.get(
    "/v1/items/{item_id}/trace", response_model=Trace, response_model_exclude_none=True, responses=errors(404, 422)
)
def get_trace(
    item_id: str,
    ctx: Ctx,
    since: Annotated[
        int | None, Query(ge=0, le=MAX_INT, description="Size of a checkpoint you hold: adds a consistency proof.")
    ] = None,
) -> Trace:
    """Public: the item's whole history, each entry with its inclusion proof against one signed checkpoint.

    Check it offline with `authenticator trace verify URL --key VERIFIER_KEY`.
    """
    return traces.item_trace(ctx, item_id, since)


async def read_uploads(request: Request) -> list[assessments.Upload]:
    """The photos of a ``multipart/form-data`` body's ``photos`` field, each with its ``views`` field."""
    uploads, _fields = await read_upload_form(request)
    return uploads


async def read_upload_form(request: Request, *fields: str) -> tuple[list[assessments.Upload], dict[str, str]]:
    """The photos (``photos``) with their declared views (``views``, one per photo in order) and the
    other text ``fields`` asked for of a ``multipart/form-data`` body."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise UnsupportedMediaType("send the photos as multipart/form-data in the field 'photos'")
    form = await read_whole_form(request, max_files=64, max_fields=64)
    try:
        parts = [*form.getlist("photos"), *form.getlist("video")]
        if any(not isinstance(value, UploadFile) for value in parts):
            raise InvalidInput(
                "a 'photos' or 'video' part has no file name, so it is text, not a file: send each photo as a "
                "file (curl: -F photos=@photo.jpg); nothing was recorded"
            )
        photos = [(value.filename or "photo", await value.read()) for value in parts if isinstance(value, UploadFile)]
        views = [value for value in form.getlist("views") if isinstance(value, str)]
        values = {name: value for name in fields if isinstance(value := form.get(name), str)}
    finally:
        await form.close()
    if len(views) > len(photos):
        raise InvalidInput(
            f"{len(views)} views for {len(photos)} photos: send one 'views' field per photo, in the photos' order",
            views=len(views),
            photos=len(photos),
        )
    if any(len(v) > 64 for v in views):
        raise InvalidInput("a view is a capture-guide id of at most 64 characters")
    uploads = [
        assessments.Upload(name, data, views[i] if i < len(views) else None) for i, (name, data) in enumerate(photos)
    ]
    return uploads, values


@router.get("/v1/items/{item_id}/head", response_model=ItemHead)
def get_item_head(item_id: str, ctx: Ctx) -> ItemHead:
    """Public: what the latest checkpoint commits to for this item id: its latest entry and count,
    or (for an id the log has never seen) a proof that the log holds no such item."""
    return traces.item_head(ctx, item_id)


@router.post(
    "/v1/items/{item_id}/assessments",
    dependencies=[LIVE_REQUEST],
    status_code=201,
    response_model=Assessment,
    openapi_extra=_MULTIPART,
    responses={
        200: {
            "model": AssessmentPreview,
            "description": "With `dry_run=true`: the provisional verdict; nothing stored or appended.",
        },
        **errors(400, 401, 403, 404, 409, 413, 415, 422),
    },
)
async def create_assessment(
    request: Request,
    item_id: str,
    principal: Platform,
    ctx: Ctx,
    heatmaps: Annotated[bool, Query(description="Also compute occlusion heat maps (slower).")] = False,
    dry_run: Annotated[
        bool,
        Query(description="Check the photos only: answer the provisional verdict (200), store and append nothing."),
    ] = False,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """Assess an item from 1-12 photos (platform, the item's owner): verdict plus a receipt from the log.

    Photos that cannot be used (unreadable, failing the quality check, or not a bag, watch or
    sneaker) are set aside; when none is left the submission is refused (422 `no_usable_photo`,
    each photo's reasons in the detail) and nothing is recorded. With `dry_run=true` nothing is
    recorded either way: the answer says what recording would give (see `POST
    /v1/assessments/preview` for photos of an item not registered yet)."""
    uploads = await read_uploads(request)
    if dry_run:
        preview = await run_in_threadpool(assessments.preview_assessment, ctx, principal, uploads, item_id=item_id)
        return JSONResponse(preview.model_dump(mode="json"), status_code=200)
    status, answer = await run_in_threadpool(
        assessments.assess_item,
        ctx,
        principal,
        item_id,
        uploads,
        want_heatmaps=heatmaps,
        idempotency_key=idempotency_key,
        on_recorded=lambda recorded: request.app.state.metrics.assessments.labels(recorded.decision).inc(),
    )
    return JSONResponse(answer.model_dump(mode="json"), status_code=status)


@router.post(
    "/v1/items/{item_id}/certificates",
    status_code=201,
    response_model=Certificate,
    responses=errors(400, 401, 403, 404, 409, 413, 415, 422),
)
async def attach_certificate(
    request: Request,
    response: Response,
    item_id: str,
    envelope: DsseEnvelope,
    principal: LabRole,
    ctx: Ctx,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Certificate | JSONResponse:
    """Attach a lab certificate (lab): a DSSE envelope signed with the lab's registered Ed25519 key.

    The same certificate twice gets 409 (with the same `Idempotency-Key`, the first answer)."""
    del envelope  # validated for the schema; the exact bytes are what gets stored and verified
    raw = await request.body()
    result = await run_in_threadpool(
        lambda: certificates.attach_certificate(ctx, principal, item_id, raw, key=idempotency_key)
    )
    return answered(response, result)


@router.post(
    "/v1/items/{item_id}/custody",
    status_code=201,
    response_model=CustodyRecorded,
    responses=errors(401, 403, 404, 409, 413, 415, 422),
)
def record_custody(
    item_id: str,
    body: CustodyCreate,
    principal: Platform,
    ctx: Ctx,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> CustodyRecorded | JSONResponse:
    """Record a custody transfer (platform, the item's owner): consignment, buy-back, sale.

    The same event twice in a row gets 409."""
    return answered(
        response, custody.record_transfer(ctx, principal, item_id, body.event, body.counterparty, key=idempotency_key)
    )
