"""The page routes (``/``, ``/t/{item_id}``, ``/l/{listing_id}``, ``/assess``) and ``/static``."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from api.pages.addresses import qr_svg, trace_addresses
from api.pages.contexts import BADGES, listing_context, trace_context, upload_page_words
from api.pages.headers import SECURITY_HEADERS, SecureStaticFiles
from api.pages.plain_words import CATEGORY_WORDS
from api.pages.rendering import STATIC_DIR, TEMPLATE_DIR, not_found, render, translator
from authenticator.errors import NotFound
from authenticator.services.context import ServiceContext
from authenticator.sizes import megabytes
from authenticator.vision.reasons import RETAKE

router = APIRouter(include_in_schema=False)


def install(app: FastAPI) -> None:
    """Add the page routes and ``/static`` to ``app`` (one call from ``create_app``)."""
    app.state.web_templates = Jinja2Templates(directory=str(TEMPLATE_DIR))
    app.include_router(router)
    app.mount("/static", SecureStaticFiles(directory=str(STATIC_DIR)), name="static")


@router.get("/", response_class=HTMLResponse)
def home() -> RedirectResponse:
    """The service's front door is the seller's upload page; buyers arrive at /t/… and /l/…."""
    return RedirectResponse("/assess", status_code=307, headers=SECURITY_HEADERS)


@router.get("/t/{item_id}", response_class=HTMLResponse, name="trace_page")
async def trace_page(request: Request, item_id: str) -> HTMLResponse:
    """The buyer's trace page: plain-words history, checked in the browser."""
    ctx: ServiceContext = request.app.state.ctx
    tr = translator(request)
    try:
        data = await run_in_threadpool(trace_context, ctx, item_id, tr)
    except NotFound:
        return not_found(request, tr("There is no item {id} in the log.", id=item_id))
    addresses = trace_addresses(request.app.state.settings.public_url, item_id, tr)
    data.update(
        addresses,
        qr=qr_svg(addresses["qr_text"], addresses["qr_title"]),
        trace_url=f"/v1/items/{quote(item_id, safe='')}/trace",
        key_name=data["trace"].verifier_key.split("+", 1)[0],
        words_by_leaf={w["leaf_hash"]: w for w in data["words"]},
        icons={level: icon for level, (_label, icon) in BADGES.items()},
    )
    return render(request, "trace.html", data, tr=tr)


@router.get("/l/{listing_id}", response_class=HTMLResponse, name="listing_page")
async def listing_page(request: Request, listing_id: str) -> HTMLResponse:
    """A listing as a buyer sees it: title, price, the badge derived from the log, the trace link."""
    ctx: ServiceContext = request.app.state.ctx
    tr = translator(request)
    try:
        data = await run_in_threadpool(listing_context, ctx, listing_id, tr)
    except NotFound:
        return not_found(request, tr("There is no listing {id}.", id=listing_id))
    return render(request, "listing.html", data, tr=tr)


@router.get("/assess", response_class=HTMLResponse, name="assess_page")
def assess_page(request: Request) -> HTMLResponse:
    """The seller's upload page; the work is done by the public API from the browser. The page
    carries each category's capture guide (the slots) and the reasons' words, in its language."""
    settings = request.app.state.settings
    tr = translator(request)
    return render(
        request,
        "assess.html",
        {
            "max_photos": settings.api_max_photos,
            "max_photo_bytes": settings.vision_max_photo_bytes,
            "max_photo_mb": megabytes(settings.vision_max_photo_bytes),
            "max_body_bytes": settings.api_max_body_bytes,
            "max_body_mb": megabytes(settings.api_max_body_bytes),
            "categories": [(c, tr(CATEGORY_WORDS[c])) for c in ("bag", "watch", "sneaker")],
            "retake": {code: tr(hint) for code, hint in RETAKE.items()},
            "page_words": upload_page_words(tr, settings.quality_thresholds, _validated_categories(request)),
        },
        tr=tr,
    )


def _validated_categories(request: Request) -> list[str]:
    """The categories the served model gives verdicts for (the others: a lab)."""
    assessor = getattr(request.app.state.ctx, "assessor", None)
    return list(assessor.card.validated_categories) if assessor is not None else []
