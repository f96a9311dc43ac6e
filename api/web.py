"""Web pages served by the API app: the buyer's trace, the listing view and the seller's upload.

Server-rendered Jinja2 templates plus small plain-JavaScript files under ``api/static``; no
build step and nothing from a CDN. The trace page does not ask the buyer to trust this server:
its script fetches the same ``/v1/items/{id}/trace`` JSON that ``authenticator trace verify``
checks and verifies it in the browser (WebCrypto SHA-256 and Ed25519) against the log key
printed on the page. The words that describe each event are rendered here from the entry
bytes and handed to the script keyed by leaf hash, so a description is only ever shown next
to the exact bytes it describes.

Every page answer carries a strict Content-Security-Policy (no inline script, nothing from
other origins), ``nosniff`` and ``frame-ancestors 'none'``.

Addresses that leave the page (the printed address, the QR code, the CLI hint) are built from
the configured ``public_url`` (``AUTHENTICATOR_PUBLIC_URL``), never from the request's Host
header, which any client (or a cache in front of the service) can set. Without one they are the
path alone: the QR code holds the page's path, and the page's script shows the browser's own
origin in front of the path (``location.origin``, which the server never sees or sets).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import qrcode
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from authenticator.errors import AuthenticatorError, NotFound
from authenticator.ledger.duplicates import first_of_each, natural_key
from authenticator.services import items, labs, listings, names, traces
from authenticator.services.context import ServiceContext
from authenticator.services.standing import Fact, Standing, item_standing
from authenticator.sizes import megabytes
from authenticator.vision.reasons import MESSAGES, RETAKE, set_aside

HERE = Path(__file__).resolve().parent
TEMPLATE_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(self), geolocation=(), microphone=()",
}

BADGES: dict[str, tuple[str, str]] = {
    "lab_certified": ("Lab certified", "✓"),
    "ai_verified": ("AI-verified authentic", "✓"),
    "inconclusive": ("Inconclusive", "?"),
    "warning": ("Warning", "!"),
}
CUSTODY_WORDS = {
    "received_for_consignment": "Received for consignment",
    "bought_back": "Bought back",
    "consigned": "Consigned",
    "sold": "Sold",
}
TYPE_WORDS = {
    "item.registered": "Registered",
    "assessment.recorded": "Photo assessment",
    "certificate.attached": "Lab certificate",
    "certificate.revoked": "Certificate revoked",
    "listing.published": "Listed for sale",
    "listing.closed": "Listing closed",
    "custody.transferred": "Custody transfer",
    "model.registered": "Model registered",
    "photos.erased": "Photos erased",
}

router = APIRouter(include_in_schema=False)


class SecureStaticFiles(StaticFiles):
    """Static files with the same ``nosniff``/framing headers as the pages."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        response.headers.setdefault("Cache-Control", "no-cache")
        return response


def install(app: FastAPI) -> None:
    """Add the page routes and ``/static`` to ``app`` (one call from ``create_app``)."""
    app.state.web_templates = Jinja2Templates(directory=str(TEMPLATE_DIR))
    app.include_router(router)
    app.mount("/static", SecureStaticFiles(directory=str(STATIC_DIR)), name="static")


def _render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.web_templates
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = "no-store"
    return response


def _not_found(request: Request, message: str) -> HTMLResponse:
    return _render(request, "not_found.html", {"message": message}, status_code=404)


# --- Plain words --------------------------------------------------------------------------------


def human_time(stamp: str) -> str:
    """``2026-11-25T16:00:00.000000Z`` as ``25 Nov 2026, 16:00 UTC``."""
    try:
        t = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return stamp
    return f"{t.day} {t:%b %Y, %H:%M} UTC"


def human_date(stamp: Any) -> str:
    """``2026-11-25T16:00:00.000000Z`` or ``2026-11-25`` as ``25 Nov 2026``."""
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%d"):
        try:
            t = datetime.strptime(str(stamp), fmt)
        except ValueError:
            continue
        return f"{t.day} {t:%b %Y}"
    return str(stamp)


def _percent(p: Any) -> str:
    return f"{round(float(p) * 100)}%" if isinstance(p, int | float) else "no score"


#: Assessment-level reasons as a buyer reads them (the seller-facing advice is on the upload page).
PUBLIC_REASONS: dict[str, str] = {
    "uncertain_score": "the score fell in the uncertain band, where only a lab can decide",
    "no_usable_photo": "no photo passed the quality checks",
    "unsupported_object": "the photos did not show a bag, watch or sneaker that the model knows",
    "unfamiliar_photo": "the photos were unlike those the model was validated on",
    "category_not_validated": "the model has no validated accuracy for this kind of item yet",
    "mixed_categories": "the photos seemed to show different kinds of items",
    "photo_reused": "a photo had already been sent for another item, a common sign of a scam listing",
}
#: Why a photo was set aside, in a few words.
SET_ASIDE_WORDS: dict[str, str] = {
    "low_resolution": "too small",
    "blurred": "blurred",
    "underexposed": "too dark",
    "overexposed": "too bright",
    "low_contrast": "too little contrast",
    "glare": "glare",
    "object_too_small": "item too small in the frame",
    "unsupported_object": "not a bag, watch or sneaker",
    "unfamiliar_photo": "unlike the validated photos",
}


def _reason_words(codes: Any) -> list[str]:
    if not isinstance(codes, list):
        return []
    return [PUBLIC_REASONS.get(str(c), MESSAGES.get(str(c), str(c).replace("_", " "))) for c in codes]


def _set_aside_summary(per_photo: Any) -> tuple[int, list[str]]:
    """How many photos of an assessment were set aside, and why (a few words each, once)."""
    why: list[str] = []
    count = 0
    for p in per_photo if isinstance(per_photo, list) else []:
        codes = [str(c) for c in (p.get("reasons") or [])] if isinstance(p, Mapping) else []
        if not set_aside(codes):
            continue
        count += 1
        for c in codes:
            words = SET_ASIDE_WORDS.get(c, "file could not be read") if c != "photo_reused" else ""
            if words and words not in why:
                why.append(words)
    return count, why


class Namer:
    """Looks up what the log only refers to by id (platform and lab names, listing titles), once each."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self._labs: dict[str, dict[str, Any] | None] = {}
        self._platforms: dict[str, str] = {}

    def _lab_record(self, lab_id: str) -> dict[str, Any] | None:
        if lab_id not in self._labs:
            try:
                self._labs[lab_id] = labs.get_lab(self.ctx, lab_id)
            except AuthenticatorError:
                self._labs[lab_id] = None
        return self._labs[lab_id]

    def lab(self, lab_id: str) -> str:
        """The lab's registered name."""
        record = self._lab_record(lab_id)
        return str(record["name"]) if record else "a lab that is no longer registered"

    def lab_accredited(self, lab_id: str) -> str:
        """``Name (accreditation)``."""
        record = self._lab_record(lab_id)
        if not record:
            return self.lab(lab_id)
        return f"{record['name']} ({record['accreditation']})"

    def platform(self, principal_id: str) -> str:
        """The platform's display name, as the operator registered it."""
        if principal_id not in self._platforms:
            found = names.display_names(self.ctx, [principal_id]).get(principal_id)
            self._platforms[principal_id] = found or "a platform that is no longer registered"
        return self._platforms[principal_id]

    def listing_title(self, listing_id: str, title_sha256: str) -> str | None:
        """The title, only when its SHA-256 is the one in the log entry."""
        try:
            title = str(listings.get_listing(self.ctx, listing_id)["title"])
        except AuthenticatorError:
            return None
        return title if hashlib.sha256(title.encode("utf-8")).hexdigest() == title_sha256 else None


def describe_entry(entry: Mapping[str, Any], namer: Namer, revoked: set[str]) -> dict[str, Any]:
    """Title and detail lines, in plain words, for one log entry (already parsed)."""
    kind = str(entry.get("type"))
    body = entry.get("body") if isinstance(entry.get("body"), Mapping) else {}
    assert isinstance(body, Mapping)
    title = TYPE_WORDS.get(kind, kind)
    lines: list[str] = []
    tech: list[str] = []  # ids, hashes and versions: shown one click away
    if kind == "item.registered":
        title = f"Registered: {body.get('brand')} {body.get('model')} ({body.get('category')})"
        lines.append(f"by {namer.platform(str(body.get('platform')))}")
        if body.get("serial_commitment"):
            lines.append("serial number recorded as a private commitment")
        tech.append(f"platform {body.get('platform')}")
    elif kind == "assessment.recorded":
        decision = str(body.get("decision"))
        title = f"Photo assessment: {decision}"
        photos = body.get("photo_sha256") or []
        p = body.get("probability_authentic")
        thresholds = body.get("thresholds") if isinstance(body.get("thresholds"), Mapping) else {}
        assert isinstance(thresholds, Mapping)
        if isinstance(p, int | float):
            lines.append(
                f"score {_percent(p)} (authentic above {_percent(thresholds.get('authentic_above'))}, "
                f"counterfeit below {_percent(thresholds.get('counterfeit_below'))})"
            )
        aside, why = _set_aside_summary(body.get("per_photo"))
        used = f"from {len(photos)} photo{'s' if len(photos) != 1 else ''}"
        lines.append(used + (f", {aside} set aside ({', '.join(why)})" if aside else ""))
        lines.extend(_reason_words(body.get("reasons")))
        tech.append(f"assessment {body.get('assessment_id')}")
        tech.append(f"model version {body.get('model_version')} (sha256 {str(body.get('model_sha256'))[:12]}…)")
    elif kind == "certificate.attached":
        outcome = str(body.get("outcome"))
        title = f"Lab certificate: {outcome}"
        status = "revoked later" if body.get("certificate_id") in revoked else "in force"
        lab = namer.lab_accredited(str(body.get("lab_id")))
        lines.append(f"by {lab}, inspected on {human_date(body.get('inspection_date'))}")
        lines.append(f"{status}; signed with the lab's own key")
        tech.append(f"certificate {body.get('certificate_id')}, lab {body.get('lab_id')}")
    elif kind == "certificate.revoked":
        title = "Lab certificate revoked"
        lines.append(f"by {namer.lab(str(body.get('lab_id')))}: {body.get('reason')}")
        tech.append(f"certificate {body.get('certificate_id')}")
    elif kind == "listing.published":
        name = namer.listing_title(str(body.get("listing_id")), str(body.get("title_sha256")))
        title = f"Listed for sale at {body.get('price')} {body.get('currency')}"
        if name:
            lines.append(f"“{name}”")
        lines.append(f"by {namer.platform(str(body.get('platform')))}")
        tech.append(f"listing {body.get('listing_id')}")
    elif kind == "listing.closed":
        title = "Listing closed"
        lines.append(str(body.get("reason")))
        tech.append(f"listing {body.get('listing_id')}")
    elif kind == "custody.transferred":
        title = f"Custody: {CUSTODY_WORDS.get(str(body.get('event')), str(body.get('event')))}"
        lines.append(f"by {namer.platform(str(body.get('platform')))}")
    elif kind == "photos.erased":
        photos = body.get("photo_sha256") or []
        by = str(body.get("by"))
        title = f"Photos erased on {human_date(entry.get('time'))}"
        count = f"{len(photos)} photo{'s' if len(photos) != 1 else ''} of a photo assessment"
        who = "the operator" if by == "operator" else namer.platform(by)
        lines.append(f"{count}, by {who}" + (f": {body.get('reason')}" if body.get("reason") else ""))
        lines.append("the files are deleted; the verdict, its photo hashes and every proof still stand")
        tech.append(f"assessment {body.get('assessment_id')}, by {by}")
    time = str(entry.get("time", ""))
    return {"type": kind, "title": title, "lines": lines, "tech": tech, "time": time, "time_words": human_time(time)}


def trace_words(ctx: ServiceContext, trace: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One description per event of a trace, with its index and leaf hash."""
    return trace_story(ctx, trace)[0]


def trace_story(ctx: ServiceContext, trace: Mapping[str, Any]) -> tuple[list[dict[str, Any]], Standing, Namer]:
    """The words for every event, the item's standing from the events that count, and the namer."""
    parsed = [json.loads(base64.b64decode(e["entry"])) for e in trace["events"]]
    revoked = {str(p["body"].get("certificate_id")) for p in parsed if p.get("type") == "certificate.revoked"}
    namer = Namer(ctx)
    repeats = first_of_each(
        (int(e["index"]), natural_key(str(p.get("type")), str(p.get("item")), p.get("body") or {}))
        for e, p in zip(trace["events"], parsed, strict=True)
    )
    out = []
    for event, entry in zip(trace["events"], parsed, strict=True):
        words = describe_entry(entry, namer, revoked)
        first = repeats.get(int(event["index"]))
        if first is not None:  # the first one counts (see authenticator.ledger.duplicates)
            words["title"] += " (repeated, ignored)"
            words["lines"].append(f"the same event was already recorded as entry #{first}; only that one counts")
        words.update(index=event["index"], leaf_hash=event["leaf_hash"])
        out.append(words)
    counted = [
        (int(e["index"]), p)
        for e, p in zip(trace["events"], parsed, strict=True)
        if repeats.get(int(e["index"])) is None and isinstance(p, Mapping)
    ]
    return out, item_standing(counted), namer


# --- What is known about the item (the buyer's first question) --------------------------------


def _photo_count(body: Mapping[str, Any]) -> str:
    n = len(body.get("photo_sha256") or [])
    return f"{n} photo{'s' if n != 1 else ''}"


def fact_words(fact: Fact, namer: Namer) -> dict[str, str]:
    """A fact of the item's standing as a title and one sentence, in plain words."""
    body: Mapping[str, Any] = fact.body or {}
    lab_id = str(body.get("lab_id"))
    inspected = human_date(body.get("inspection_date"))
    when = human_date(fact.time)
    score = _percent(body.get("probability_authentic"))
    thresholds = body.get("thresholds") if isinstance(body.get("thresholds"), Mapping) else {}
    assert isinstance(thresholds, Mapping)
    revocation: Mapping[str, Any] = fact.revocation or {}
    title, detail = "", ""
    if fact.kind == "lab_counterfeit":
        title = "A lab found this item counterfeit"
        detail = (
            f"{namer.lab_accredited(lab_id)} inspected it in person on {inspected} and signed a counterfeit finding."
        )
    elif fact.kind == "revoked":
        title = "A lab withdrew its certificate for this item"
        detail = (
            f"On {human_date(fact.revoked_time)}, {namer.lab(lab_id)} revoked the certificate of its inspection of "
            f"{inspected} (which had found the item {body.get('outcome')}), saying: “{revocation.get('reason')}”. "
            "No lab certificate is in force for this item now."
        )
    elif fact.kind == "lab_certified":
        title = f"Certified authentic by {namer.lab(lab_id)}"
        detail = (
            f"{namer.lab_accredited(lab_id)} inspected the item in person on {inspected} and signed its "
            "certificate, which is in force."
        )
    elif fact.kind == "photo_counterfeit":
        title = "The photo check found signs of a counterfeit"
        detail = (
            f"A model looked at {_photo_count(body)} on {when}: score {score}, below the "
            f"{_percent(thresholds.get('counterfeit_below'))} under which it calls an item counterfeit. "
            "No lab has inspected the item in person."
        )
    elif fact.kind == "photo_authentic":
        title = "Photo check only: no sign of a counterfeit"
        detail = (
            f"A model looked at {_photo_count(body)} on {when} and found them consistent with an authentic item "
            f"(score {score}). No lab has inspected the item in person."
        )
    elif fact.kind == "photo_inconclusive":
        why = "; ".join(_reason_words(body.get("reasons"))) or "the score fell in the uncertain band"
        title = "Photo check only: no verdict"
        detail = f"The photos sent on {when} did not allow a verdict: {why}. No lab has inspected the item yet."
    elif fact.kind == "nothing":
        title = "Nothing is known about this item yet"
        detail = "It is registered, but no photo check and no lab inspection has been recorded."
    elif fact.kind == "revocation_replaced":
        new: Mapping[str, Any] = fact.replaced_by or {}
        title = "An earlier certificate was withdrawn and replaced"
        new_lab = str(new.get("lab_id"))
        who = "it" if new_lab == lab_id else namer.lab(new_lab)
        detail = (
            f"On {human_date(fact.revoked_time)}, {namer.lab(lab_id)} revoked its certificate of {inspected} "
            f"(“{revocation.get('reason')}”); {who} then issued a new one, of its inspection of "
            f"{human_date(new.get('inspection_date'))}, which is in force."
        )
    elif fact.kind == "photo_outranked":
        title = "An earlier photo check"
        detail = (
            f"On {when} the photo check said “{body.get('decision')}”; a lab's inspection in person outranks it."
        )
    return {"kind": fact.kind, "level": fact.level, "title": title, "detail": detail}


#: The next step a buyer can take, by the first (most serious) fact.
BUYER_NEXT: dict[str, str] = {
    "photo_inconclusive": "Only an inspection in person can settle it: ask the seller to send the item to a "
    "registered lab.",
    "nothing": "Ask the seller for a photo check or, better, an inspection by a registered lab.",
    "photo_counterfeit": "The seller can contest this result by having a registered lab inspect the item in "
    "person: a lab's certificate replaces the photo check here and on the badge.",
    "photo_authentic": "A photo check is not an inspection: for certainty, ask for one by a registered lab.",
    "revoked": "Ask the seller why, and for a new inspection by a registered lab.",
}


def standing_words(standing: Standing, namer: Namer) -> dict[str, Any]:
    """The standing as the trace page shows it: current facts, history, the next step."""
    first = standing.facts[0].kind
    return {
        "level": standing.level,
        "facts": [fact_words(f, namer) for f in standing.facts],
        "history": [fact_words(f, namer) for f in standing.history],
        "next_step": BUYER_NEXT.get(first),
    }


# --- Addresses ----------------------------------------------------------------------------------


def public_address(public_url: str | None, path: str) -> str:
    """``path`` (absolute, starting with ``/``) under the configured public base URL, or the path
    alone when none is configured. Never derived from the request (its Host header)."""
    if not path.startswith("/"):
        raise ValueError("path must start with /")
    return f"{public_url}{path}" if public_url else path


def trace_addresses(public_url: str | None, item_id: str) -> dict[str, Any]:
    """The trace page's address, its QR code's text and caption, and the CLI hint's trace URL."""
    quoted = quote(item_id, safe="")
    page = public_address(public_url, f"/t/{quoted}")
    relative = not public_url
    return {
        "address": page,
        "trace_address": public_address(public_url, f"/v1/items/{quoted}/trace"),
        "relative_address": relative,
        "qr_text": page,
        "qr_title": (
            f"QR code of this page's path only (the server has no public address configured): {page}"
            if relative
            else f"QR code of this page's address: {page}"
        ),
    }


# --- QR code ------------------------------------------------------------------------------------


def qr_svg(text: str, title: str) -> str:
    """An SVG QR code of ``text`` (one path, no styles, so the page's CSP holds)."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    qr.add_data(text)
    qr.make(fit=True)
    matrix = qr.get_matrix()
    n = len(matrix)
    parts = []
    for y, row in enumerate(matrix):
        x = 0
        while x < n:
            if row[x]:
                start = x
                while x < n and row[x]:
                    x += 1
                parts.append(f"M{start},{y}h{x - start}v1h-{x - start}z")
            else:
                x += 1
    safe_title = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {n} {n}" class="qr" role="img" '
        f'aria-labelledby="qr-title" shape-rendering="crispEdges">'
        f'<title id="qr-title">{safe_title}</title>'
        f'<rect width="{n}" height="{n}" fill="#fff"/><path fill="#000" d="{"".join(parts)}"/></svg>'
    )


# --- Pages --------------------------------------------------------------------------------------


def _badge(badge: Mapping[str, Any]) -> dict[str, Any]:
    label, icon = BADGES.get(str(badge.get("level")), (str(badge.get("level")), "?"))
    return {**badge, "label": label, "icon": icon}


#: Most labs a page lists by name (the rest are counted).
LABS_SHOWN = 8


def _labs_context(ctx: ServiceContext) -> dict[str, Any]:
    registered = labs.list_labs(ctx)
    return {"labs": registered[:LABS_SHOWN], "more_labs": max(0, len(registered) - LABS_SHOWN)}


def _trace_context(ctx: ServiceContext, item_id: str) -> dict[str, Any]:
    item = items.get_item(ctx, item_id)
    trace = traces.item_trace(ctx, item_id)
    words, standing, namer = trace_story(ctx, trace)
    return {
        "item": item,
        "badge": _badge(item["badge"]),
        "trace": trace,
        "words": words,
        "standing": standing_words(standing, namer),
        "platform_name": namer.platform(str(item["platform"])),
        "registered_words": human_date(item["registered_at"]),
        "witness_keys": traces.log_key(ctx)["witnesses"],
        **_labs_context(ctx),
    }


@router.get("/", response_class=HTMLResponse)
def home() -> RedirectResponse:
    """The service's front door is the seller's upload page; buyers arrive at /t/… and /l/…."""
    return RedirectResponse("/assess", status_code=307, headers=SECURITY_HEADERS)


@router.get("/t/{item_id}", response_class=HTMLResponse, name="trace_page")
async def trace_page(request: Request, item_id: str) -> HTMLResponse:
    """The buyer's trace page: plain-words history, checked in the browser."""
    ctx: ServiceContext = request.app.state.ctx
    try:
        data = await run_in_threadpool(_trace_context, ctx, item_id)
    except NotFound:
        return _not_found(request, f"There is no item {item_id} in the log.")
    addresses = trace_addresses(request.app.state.settings.public_url, item_id)
    data.update(
        addresses,
        qr=qr_svg(addresses["qr_text"], addresses["qr_title"]),
        trace_url=f"/v1/items/{quote(item_id, safe='')}/trace",
        key_name=data["trace"]["verifier_key"].split("+", 1)[0],
        words_by_leaf={w["leaf_hash"]: w for w in data["words"]},
        icons={level: icon for level, (_label, icon) in BADGES.items()},
    )
    return _render(request, "trace.html", data)


def _listing_context(ctx: ServiceContext, listing_id: str) -> dict[str, Any]:
    listing = listings.get_listing(ctx, listing_id)
    item = items.get_item(ctx, listing["item_id"])
    return {
        "listing": listing,
        "item": item,
        "badge": _badge(listing["badge"]),
        "platform_name": Namer(ctx).platform(str(listing.get("platform") or item["platform"])),
        "listed_words": human_date(listing["published_at"]),
    }


@router.get("/l/{listing_id}", response_class=HTMLResponse, name="listing_page")
async def listing_page(request: Request, listing_id: str) -> HTMLResponse:
    """A listing as a buyer sees it: title, price, the badge derived from the log, the trace link."""
    ctx: ServiceContext = request.app.state.ctx
    try:
        data = await run_in_threadpool(_listing_context, ctx, listing_id)
    except NotFound:
        return _not_found(request, f"There is no listing {listing_id}.")
    return _render(request, "listing.html", data)


@router.get("/assess", response_class=HTMLResponse, name="assess_page")
def assess_page(request: Request) -> HTMLResponse:
    """The seller's upload page; the work is done by the public API from the browser."""
    settings = request.app.state.settings
    return _render(
        request,
        "assess.html",
        {
            "max_photos": settings.api_max_photos,
            "max_photo_bytes": settings.vision_max_photo_bytes,
            "max_photo_mb": megabytes(settings.vision_max_photo_bytes),
            "max_body_bytes": settings.api_max_body_bytes,
            "max_body_mb": megabytes(settings.api_max_body_bytes),
            "categories": ("bag", "watch", "sneaker"),
            "retake": RETAKE,
        },
    )
