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
from collections.abc import Iterable, Mapping
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

from authenticator.contracts.common import Badge
from authenticator.contracts.items import Trace
from authenticator.contracts.labs import Lab
from authenticator.errors import AuthenticatorError, NotFound
from authenticator.i18n import ENGLISH, LOCALES, N_, NATIVE_NAMES, Translator, negotiate, script_messages
from authenticator.ledger.duplicates import first_of_each, natural_key
from authenticator.services import items, labs, listings, names, traces
from authenticator.services.capture_guides import capture_guide
from authenticator.services.context import ServiceContext
from authenticator.services.standing import Fact, Standing, item_standing
from authenticator.sizes import megabytes
from authenticator.vision.category import CATEGORIES
from authenticator.vision.reasons import MESSAGES, NOT_VALIDATED_MESSAGES, RETAKE, set_aside

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
    "lab_certified": (N_("Lab certified"), "✓"),
    "ai_verified": (N_("AI-verified authentic"), "✓"),
    "inconclusive": (N_("Inconclusive"), "?"),
    "warning": (N_("Warning"), "!"),
}
CUSTODY_WORDS = {
    "received_for_consignment": N_("Received for consignment"),
    "bought_back": N_("Bought back"),
    "consigned": N_("Consigned"),
    "sold": N_("Sold"),
}
TYPE_WORDS = {
    "item.registered": N_("Registered"),
    "assessment.recorded": N_("Photo assessment"),
    "certificate.attached": N_("Lab certificate"),
    "certificate.revoked": N_("Certificate revoked"),
    "listing.published": N_("Listed for sale"),
    "listing.closed": N_("Listing closed"),
    "custody.transferred": N_("Custody transfer"),
    "model.registered": N_("Model registered"),
    "photos.erased": N_("Photos erased"),
}
#: The words of a decision, as a title says it.
DECISION_WORDS = {
    "authentic": N_("authentic"),
    "counterfeit": N_("counterfeit"),
    "inconclusive": N_("inconclusive"),
}
CATEGORY_WORDS = {"bag": N_("bag"), "watch": N_("watch"), "sneaker": N_("sneaker")}

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


def translator(request: Request) -> Translator:
    """The page language: ``?lang=`` when it names one of :data:`LOCALES`, else ``Accept-Language``."""
    return Translator(negotiate(request.headers.get("accept-language"), request.query_params.get("lang")))


def language_links(request: Request, tr: Translator) -> list[dict[str, Any]]:
    """The language switch: this page in every language (``?lang=``), the current one marked."""
    out = []
    for locale in LOCALES:
        params = dict(request.query_params)
        params["lang"] = locale
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params.items())
        out.append(
            {
                "locale": locale,
                "name": NATIVE_NAMES[locale],
                "href": f"{request.url.path}?{query}",
                "current": locale == tr.locale,
            }
        )
    return out


def _render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200, tr: Translator | None = None
) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.web_templates
    tr = tr or translator(request)
    explicit = request.query_params.get("lang") in LOCALES
    page = {
        "_": tr,
        "lang": tr.locale,
        "languages": language_links(request, tr),
        # links between pages keep a language chosen with the switch
        "lang_query": f"?lang={tr.locale}" if explicit else "",
        # the scripts' messages in this language (empty in English, the scripts' own)
        "script_catalogue": tr.catalogue(script_messages()),
    }
    response = templates.TemplateResponse(request, name, {**context, **page}, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Language"] = tr.locale
    response.headers["Vary"] = "Accept-Language"
    return response


def _not_found(request: Request, message: str) -> HTMLResponse:
    return _render(request, "not_found.html", {"message": message}, status_code=404)


# --- Plain words --------------------------------------------------------------------------------


def human_time(stamp: str, tr: Translator = ENGLISH) -> str:
    """``2026-11-25T16:00:00.000000Z`` as ``25 Nov 2026, 16:00 UTC`` (``2026年11月25日 16:00 UTC``)."""
    try:
        t = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return stamp
    if tr.locale == "zh-CN":
        return f"{t.year}年{t.month}月{t.day}日 {t:%H:%M} UTC"
    return f"{t.day} {t:%b %Y, %H:%M} UTC"


def human_date(stamp: Any, tr: Translator = ENGLISH) -> str:
    """``2026-11-25T16:00:00.000000Z`` or ``2026-11-25`` as ``25 Nov 2026`` (``2026年11月25日``)."""
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%d"):
        try:
            t = datetime.strptime(str(stamp), fmt)
        except ValueError:
            continue
        if tr.locale == "zh-CN":
            return f"{t.year}年{t.month}月{t.day}日"
        return f"{t.day} {t:%b %Y}"
    return str(stamp)


def _percent(p: Any, tr: Translator = ENGLISH) -> str:
    return f"{round(float(p) * 100)}%" if isinstance(p, int | float) else tr("no score")


#: Assessment-level reasons as a buyer reads them (the seller-facing advice is on the upload page).
PUBLIC_REASONS: dict[str, str] = {
    "uncertain_score": N_("the score fell in the uncertain band, where only a lab can decide"),
    "no_usable_photo": N_("no photo passed the quality checks"),
    "unsupported_object": N_("the photos did not show a bag, watch or sneaker that the model knows"),
    "unfamiliar_photo": N_("the photos were unlike those the model was validated on"),
    "category_not_validated": N_("the model has no validated accuracy for this kind of item yet"),
    "mixed_categories": N_("the photos seemed to show different kinds of items"),
    "photo_reused": N_("a photo had already been sent for another item, a common sign of a scam listing"),
    "missing_views": N_("some of the views the capture guide asks for were not photographed"),
}
#: ``category_not_validated`` for the category concerned, as a buyer reads it.
PUBLIC_NOT_VALIDATED: dict[str, str] = {
    "watch": N_("watches are not judged from photos yet: a lab must inspect the watch"),
}
#: Why a photo was set aside, in a few words.
SET_ASIDE_WORDS: dict[str, str] = {
    "low_resolution": N_("too small"),
    "blurred": N_("blurred"),
    "underexposed": N_("too dark"),
    "overexposed": N_("too bright"),
    "low_contrast": N_("too little contrast"),
    "glare": N_("glare"),
    "object_too_small": N_("item too small in the frame"),
    "unsupported_object": N_("not a bag, watch or sneaker"),
    "unfamiliar_photo": N_("unlike the validated photos"),
    "category_not_validated": N_("a kind of item not judged from photos"),
}


def _reason_words(codes: Any, tr: Translator = ENGLISH, category: str | None = None) -> list[str]:
    if not isinstance(codes, list):
        return []
    out = []
    for c in codes:
        code = str(c)
        if code == "category_not_validated" and category in PUBLIC_NOT_VALIDATED:
            out.append(tr(PUBLIC_NOT_VALIDATED[category]))
        else:
            out.append(tr(PUBLIC_REASONS.get(code, MESSAGES.get(code, code.replace("_", " ")))))
    return out


def _most_shown_category(per_photo: Any) -> str | None:
    cats = [str(p.get("category")) for p in per_photo if isinstance(p, Mapping) and p.get("category")]
    return max(set(cats), key=cats.count) if cats else None


def _set_aside_summary(per_photo: Any, tr: Translator = ENGLISH) -> tuple[int, list[str]]:
    """How many photos of an assessment were set aside, and why (a few words each, once)."""
    why: list[str] = []
    count = 0
    for p in per_photo if isinstance(per_photo, list) else []:
        codes = [str(c) for c in (p.get("reasons") or [])] if isinstance(p, Mapping) else []
        if not set_aside(codes):
            continue
        count += 1
        for c in codes:
            words = tr(SET_ASIDE_WORDS.get(c, N_("file could not be read"))) if c != "photo_reused" else ""
            if words and words not in why:
                why.append(words)
    return count, why


class Namer:
    """Looks up what the log only refers to by id (platform and lab names, listing titles), once each."""

    def __init__(self, ctx: ServiceContext, tr: Translator = ENGLISH) -> None:
        self.ctx = ctx
        self.tr = tr  # the page's language: the words of every description
        self._labs: dict[str, Lab | None] = {}
        self._platforms: dict[str, str] = {}

    def _lab_record(self, lab_id: str) -> Lab | None:
        if lab_id not in self._labs:
            try:
                self._labs[lab_id] = labs.get_lab(self.ctx, lab_id)
            except AuthenticatorError:
                self._labs[lab_id] = None
        return self._labs[lab_id]

    def lab(self, lab_id: str) -> str:
        """The lab's registered name."""
        record = self._lab_record(lab_id)
        return record.name if record else self.tr("a lab that is no longer registered")

    def lab_accredited(self, lab_id: str) -> str:
        """``Name (accreditation)``."""
        record = self._lab_record(lab_id)
        if not record:
            return self.lab(lab_id)
        return f"{record.name} ({record.accreditation})"

    def platform(self, principal_id: str) -> str:
        """The platform's display name, as the operator registered it."""
        if principal_id not in self._platforms:
            found = names.display_names(self.ctx, [principal_id]).get(principal_id)
            self._platforms[principal_id] = found or self.tr("a platform that is no longer registered")
        return self._platforms[principal_id]

    def listing_title(self, listing_id: str, title_sha256: str) -> str | None:
        """The title, only when its SHA-256 is the one in the log entry."""
        try:
            title = listings.get_listing(self.ctx, listing_id).title
        except AuthenticatorError:
            return None
        if title is None:
            return None
        return title if hashlib.sha256(title.encode("utf-8")).hexdigest() == title_sha256 else None


def _photos(n: int, tr: Translator) -> str:
    return tr("1 photo") if n == 1 else tr("{n} photos", n=n)


def describe_entry(entry: Mapping[str, Any], namer: Namer, revoked: set[str]) -> dict[str, Any]:
    """Title and detail lines, in plain words (the namer's language), for one log entry (already parsed)."""
    tr = namer.tr
    kind = str(entry.get("type"))
    body = entry.get("body") if isinstance(entry.get("body"), Mapping) else {}
    assert isinstance(body, Mapping)
    title = tr(TYPE_WORDS[kind]) if kind in TYPE_WORDS else kind
    lines: list[str] = []
    tech: list[str] = []  # ids, hashes and versions: shown one click away
    if kind == "item.registered":
        category = str(body.get("category"))
        title = tr(
            "Registered: {brand} {model} ({category})",
            brand=body.get("brand"),
            model=body.get("model"),
            category=tr(CATEGORY_WORDS[category]) if category in CATEGORY_WORDS else category,
        )
        lines.append(tr("by {name}", name=namer.platform(str(body.get("platform")))))
        if body.get("serial_commitment"):
            lines.append(tr("serial number recorded as a private commitment"))
        tech.append(tr("platform {id}", id=body.get("platform")))
    elif kind == "assessment.recorded":
        decision = str(body.get("decision"))
        title = tr("Photo assessment: {decision}", decision=tr(DECISION_WORDS.get(decision, decision)))
        photos = body.get("photo_sha256") or []
        p = body.get("probability_authentic")
        thresholds = body.get("thresholds") if isinstance(body.get("thresholds"), Mapping) else {}
        assert isinstance(thresholds, Mapping)
        if isinstance(p, int | float):
            lines.append(
                tr(
                    "score {score} (authentic above {above}, counterfeit below {below})",
                    score=_percent(p, tr),
                    above=_percent(thresholds.get("authentic_above"), tr),
                    below=_percent(thresholds.get("counterfeit_below"), tr),
                )
            )
        aside, why = _set_aside_summary(body.get("per_photo"), tr)
        used = tr("from {photos}", photos=_photos(len(photos), tr))
        if aside:
            used = tr("{used}, {n} set aside ({why})", used=used, n=aside, why=tr(", ").join(why))
        lines.append(used)
        lines.extend(_reason_words(body.get("reasons"), tr, _most_shown_category(body.get("per_photo") or [])))
        tech.append(tr("assessment {id}", id=body.get("assessment_id")))
        tech.append(
            tr(
                "model version {version} (sha256 {sha}…)",
                version=body.get("model_version"),
                sha=str(body.get("model_sha256"))[:12],
            )
        )
    elif kind == "certificate.attached":
        outcome = str(body.get("outcome"))
        title = tr("Lab certificate: {outcome}", outcome=tr(DECISION_WORDS.get(outcome, outcome)))
        status = tr("revoked later") if body.get("certificate_id") in revoked else tr("in force")
        lab = namer.lab_accredited(str(body.get("lab_id")))
        lines.append(tr("by {lab}, inspected on {date}", lab=lab, date=human_date(body.get("inspection_date"), tr)))
        lines.append(tr("{status}; signed with the lab's own key", status=status))
        tech.append(tr("certificate {id}, lab {lab}", id=body.get("certificate_id"), lab=body.get("lab_id")))
    elif kind == "certificate.revoked":
        title = tr("Lab certificate revoked")
        lines.append(tr("by {lab}: {reason}", lab=namer.lab(str(body.get("lab_id"))), reason=body.get("reason")))
        tech.append(tr("certificate {id}", id=body.get("certificate_id")))
    elif kind == "listing.published":
        name = namer.listing_title(str(body.get("listing_id")), str(body.get("title_sha256")))
        title = tr("Listed for sale at {price} {currency}", price=body.get("price"), currency=body.get("currency"))
        if name:
            lines.append(f"“{name}”")
        lines.append(tr("by {name}", name=namer.platform(str(body.get("platform")))))
        tech.append(tr("listing {id}", id=body.get("listing_id")))
    elif kind == "listing.closed":
        title = tr("Listing closed")
        lines.append(str(body.get("reason")))
        tech.append(tr("listing {id}", id=body.get("listing_id")))
    elif kind == "custody.transferred":
        event = str(body.get("event"))
        title = tr("Custody: {event}", event=tr(CUSTODY_WORDS[event]) if event in CUSTODY_WORDS else event)
        lines.append(tr("by {name}", name=namer.platform(str(body.get("platform")))))
    elif kind == "photos.erased":
        photos = body.get("photo_sha256") or []
        by = str(body.get("by"))
        title = tr("Photos erased on {date}", date=human_date(entry.get("time"), tr))
        count = tr("{photos} of a photo assessment", photos=_photos(len(photos), tr))
        who = tr("the operator") if by == "operator" else namer.platform(by)
        line = tr("{count}, by {who}", count=count, who=who)
        if body.get("reason"):
            line = tr("{line}: {reason}", line=line, reason=body.get("reason"))
        lines.append(line)
        lines.append(tr("the files are deleted; the verdict, its photo hashes and every proof still stand"))
        tech.append(tr("assessment {id}, by {by}", id=body.get("assessment_id"), by=by))
    time = str(entry.get("time", ""))
    return {
        "type": kind,
        "title": title,
        "lines": lines,
        "tech": tech,
        "time": time,
        "time_words": human_time(time, tr),
    }


def trace_words(ctx: ServiceContext, trace: Trace) -> list[dict[str, Any]]:
    """One description per event of a trace, with its index and leaf hash."""
    return trace_story(ctx, trace)[0]


def trace_story(
    ctx: ServiceContext, trace: Trace, tr: Translator = ENGLISH
) -> tuple[list[dict[str, Any]], Standing, Namer]:
    """The words for every event, the item's standing from the events that count, and the namer."""
    parsed = [json.loads(base64.b64decode(e.entry)) for e in trace.events]
    revoked = {str(p["body"].get("certificate_id")) for p in parsed if p.get("type") == "certificate.revoked"}
    namer = Namer(ctx, tr)
    repeats = first_of_each(
        (e.index, natural_key(str(p.get("type")), str(p.get("item")), p.get("body") or {}))
        for e, p in zip(trace.events, parsed, strict=True)
    )
    out = []
    for event, entry in zip(trace.events, parsed, strict=True):
        words = describe_entry(entry, namer, revoked)
        first = repeats.get(event.index)
        if first is not None:  # the first one counts (see authenticator.ledger.duplicates)
            words["title"] = tr("{title} (repeated, ignored)", title=words["title"])
            words["lines"].append(
                tr("the same event was already recorded as entry #{first}; only that one counts", first=first)
            )
        words.update(index=event.index, leaf_hash=event.leaf_hash)
        out.append(words)
    counted = [
        (e.index, p)
        for e, p in zip(trace.events, parsed, strict=True)
        if repeats.get(e.index) is None and isinstance(p, Mapping)
    ]
    return out, item_standing(counted), namer


# --- What is known about the item (the buyer's first question) --------------------------------


def _photo_count(body: Mapping[str, Any], tr: Translator = ENGLISH) -> str:
    return _photos(len(body.get("photo_sha256") or []), tr)


def fact_words(fact: Fact, namer: Namer) -> dict[str, str]:
    """A fact of the item's standing as a title and one sentence, in plain words (the namer's language)."""
    tr = namer.tr
    body: Mapping[str, Any] = fact.body or {}
    lab_id = str(body.get("lab_id"))
    inspected = human_date(body.get("inspection_date"), tr)
    when = human_date(fact.time, tr)
    score = _percent(body.get("probability_authentic"), tr)
    thresholds = body.get("thresholds") if isinstance(body.get("thresholds"), Mapping) else {}
    assert isinstance(thresholds, Mapping)
    revocation: Mapping[str, Any] = fact.revocation or {}
    title, detail = "", ""
    if fact.kind == "lab_counterfeit":
        title = tr("A lab found this item counterfeit")
        detail = tr(
            "{lab} inspected it in person on {date} and signed a counterfeit finding.",
            lab=namer.lab_accredited(lab_id),
            date=inspected,
        )
    elif fact.kind == "revoked":
        outcome = str(body.get("outcome"))
        title = tr("A lab withdrew its certificate for this item")
        detail = tr(
            "On {date}, {lab} revoked the certificate of its inspection of {inspected} (which had found the item "
            "{outcome}), saying: “{reason}”. No lab certificate is in force for this item now.",
            date=human_date(fact.revoked_time, tr),
            lab=namer.lab(lab_id),
            inspected=inspected,
            outcome=tr(DECISION_WORDS.get(outcome, outcome)),
            reason=revocation.get("reason"),
        )
    elif fact.kind == "lab_certified":
        title = tr("Certified authentic by {lab}", lab=namer.lab(lab_id))
        detail = tr(
            "{lab} inspected the item in person on {date} and signed its certificate, which is in force.",
            lab=namer.lab_accredited(lab_id),
            date=inspected,
        )
    elif fact.kind == "photo_counterfeit":
        title = tr("The photo check found signs of a counterfeit")
        detail = tr(
            "A model looked at {photos} on {date}: score {score}, below the {below} under which it calls an item "
            "counterfeit. No lab has inspected the item in person.",
            photos=_photo_count(body, tr),
            date=when,
            score=score,
            below=_percent(thresholds.get("counterfeit_below"), tr),
        )
    elif fact.kind == "photo_authentic":
        title = tr("Photo check only: no sign of a counterfeit")
        detail = tr(
            "A model looked at {photos} on {date} and found them consistent with an authentic item (score {score}). "
            "No lab has inspected the item in person.",
            photos=_photo_count(body, tr),
            date=when,
            score=score,
        )
    elif fact.kind == "photo_inconclusive":
        category = _most_shown_category(body.get("per_photo") or [])
        why = tr("; ").join(_reason_words(body.get("reasons"), tr, category)) or tr(
            "the score fell in the uncertain band"
        )
        title = tr("Photo check only: no verdict")
        detail = tr(
            "The photos sent on {date} did not allow a verdict: {why}. No lab has inspected the item yet.",
            date=when,
            why=why,
        )
    elif fact.kind == "nothing":
        title = tr("Nothing is known about this item yet")
        detail = tr("It is registered, but no photo check and no lab inspection has been recorded.")
    elif fact.kind == "revocation_replaced":
        new: Mapping[str, Any] = fact.replaced_by or {}
        title = tr("An earlier certificate was withdrawn and replaced")
        new_lab = str(new.get("lab_id"))
        detail = tr(
            "On {date}, {lab} revoked its certificate of {inspected} (“{reason}”); {who} then issued a new one, of "
            "its inspection of {new_date}, which is in force.",
            date=human_date(fact.revoked_time, tr),
            lab=namer.lab(lab_id),
            inspected=inspected,
            reason=revocation.get("reason"),
            who=tr("it") if new_lab == lab_id else namer.lab(new_lab),
            new_date=human_date(new.get("inspection_date"), tr),
        )
    elif fact.kind == "photo_outranked":
        decision = str(body.get("decision"))
        title = tr("An earlier photo check")
        detail = tr(
            "On {date} the photo check said “{decision}”; a lab's inspection in person outranks it.",
            date=when,
            decision=tr(DECISION_WORDS.get(decision, decision)),
        )
    return {"kind": fact.kind, "level": fact.level, "title": title, "detail": detail}


#: The next step a buyer can take, by the first (most serious) fact.
BUYER_NEXT: dict[str, str] = {
    "photo_inconclusive": N_(
        "Only an inspection in person can settle it: ask the seller to send the item to a registered lab."
    ),
    "nothing": N_("Ask the seller for a photo check or, better, an inspection by a registered lab."),
    "photo_counterfeit": N_(
        "The seller can contest this result by having a registered lab inspect the item in person: a lab's "
        "certificate replaces the photo check here and on the badge."
    ),
    "photo_authentic": N_("A photo check is not an inspection: for certainty, ask for one by a registered lab."),
    "revoked": N_("Ask the seller why, and for a new inspection by a registered lab."),
}


def standing_words(standing: Standing, namer: Namer) -> dict[str, Any]:
    """The standing as the trace page shows it: current facts, history, the next step."""
    first = standing.facts[0].kind
    step = BUYER_NEXT.get(first)
    return {
        "level": standing.level,
        "facts": [fact_words(f, namer) for f in standing.facts],
        "history": [fact_words(f, namer) for f in standing.history],
        "next_step": namer.tr(step) if step else None,
    }


# --- Addresses ----------------------------------------------------------------------------------


def public_address(public_url: str | None, path: str) -> str:
    """``path`` (absolute, starting with ``/``) under the configured public base URL, or the path
    alone when none is configured. Never derived from the request (its Host header)."""
    if not path.startswith("/"):
        raise ValueError("path must start with /")
    return f"{public_url}{path}" if public_url else path


def trace_addresses(public_url: str | None, item_id: str, tr: Translator = ENGLISH) -> dict[str, Any]:
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
            tr("QR code of this page's path only (the server has no public address configured): {page}", page=page)
            if relative
            else tr("QR code of this page's address: {page}", page=page)
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


#: The badge's reasons (:func:`authenticator.services.badges.derive_badge`), for the catalogue.
BADGE_REASONS = (
    N_("A lab found this item counterfeit."),
    N_("A lab revoked its certificate for this item."),
    N_("An independent lab inspected and certified this item."),
    N_("The photo assessment found signs of a counterfeit."),
    N_("The photo assessment found this item authentic."),
    N_("The photos did not allow a verdict; a lab inspection is needed."),
    N_("This item has not been assessed yet."),
)


def _badge(badge: Badge, tr: Translator = ENGLISH) -> dict[str, Any]:
    """The badge as the pages show it: its label and icon, the reason in the page's language."""
    label, icon = BADGES.get(badge.level, (badge.level, "?"))
    return {**badge.model_dump(), "label": tr(label), "icon": icon, "reason": tr(badge.reason)}


#: Most labs a page lists by name (the rest are counted).
LABS_SHOWN = 8


def _labs_context(ctx: ServiceContext) -> dict[str, Any]:
    registered = labs.list_labs(ctx).labs
    return {"labs": registered[:LABS_SHOWN], "more_labs": max(0, len(registered) - LABS_SHOWN)}


def _category_words(category: Any, tr: Translator) -> str:
    text = str(category)
    return tr(CATEGORY_WORDS[text]) if text in CATEGORY_WORDS else text


def _trace_context(ctx: ServiceContext, item_id: str, tr: Translator = ENGLISH) -> dict[str, Any]:
    item = items.get_item(ctx, item_id)
    trace = traces.item_trace(ctx, item_id)
    words, standing, namer = trace_story(ctx, trace, tr)
    return {
        "item": item,
        "category_words": _category_words(item.category, tr),
        "badge": _badge(item.badge, tr),
        "trace": trace,
        "words": words,
        "standing": standing_words(standing, namer),
        "platform_name": namer.platform(item.platform),
        "registered_words": human_date(item.registered_at, tr),
        "witness_keys": traces.log_key(ctx).witnesses,
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
    tr = translator(request)
    try:
        data = await run_in_threadpool(_trace_context, ctx, item_id, tr)
    except NotFound:
        return _not_found(request, tr("There is no item {id} in the log.", id=item_id))
    addresses = trace_addresses(request.app.state.settings.public_url, item_id, tr)
    data.update(
        addresses,
        qr=qr_svg(addresses["qr_text"], addresses["qr_title"]),
        trace_url=f"/v1/items/{quote(item_id, safe='')}/trace",
        key_name=data["trace"].verifier_key.split("+", 1)[0],
        words_by_leaf={w["leaf_hash"]: w for w in data["words"]},
        icons={level: icon for level, (_label, icon) in BADGES.items()},
    )
    return _render(request, "trace.html", data, tr=tr)


def _listing_context(ctx: ServiceContext, listing_id: str, tr: Translator = ENGLISH) -> dict[str, Any]:
    listing = listings.get_listing(ctx, listing_id)
    item = items.get_item(ctx, listing.item_id)
    return {
        "listing": listing,
        "item": item,
        "category_words": _category_words(item.category, tr),
        "badge": _badge(listing.badge, tr),
        "platform_name": Namer(ctx, tr).platform(listing.platform or item.platform),
        "listed_words": human_date(listing.published_at, tr),
    }


@router.get("/l/{listing_id}", response_class=HTMLResponse, name="listing_page")
async def listing_page(request: Request, listing_id: str) -> HTMLResponse:
    """A listing as a buyer sees it: title, price, the badge derived from the log, the trace link."""
    ctx: ServiceContext = request.app.state.ctx
    tr = translator(request)
    try:
        data = await run_in_threadpool(_listing_context, ctx, listing_id, tr)
    except NotFound:
        return _not_found(request, tr("There is no listing {id}.", id=listing_id))
    return _render(request, "listing.html", data, tr=tr)


@router.get("/assess", response_class=HTMLResponse, name="assess_page")
def assess_page(request: Request) -> HTMLResponse:
    """The seller's upload page; the work is done by the public API from the browser. The page
    carries each category's capture guide (the slots) and the reasons' words, in its language."""
    settings = request.app.state.settings
    tr = translator(request)
    return _render(
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


def upload_page_words(tr: Translator, base: Any, validated: Iterable[str] = ()) -> dict[str, Any]:
    """What the upload page's script needs in the page's language: every category's capture guide
    (slots: view id, name, instruction, outline drawing, what the gate asks), the reasons' messages
    and retake hints by code."""
    validated = list(validated)
    shown = {"category", "required", "optional"}  # the slots; the page says itself what a lab is for
    guides = {
        c: capture_guide(c, base, tr, validated=validated, outline=outline_url).model_dump(include=shown)
        for c in CATEGORIES
    }
    messages = {code: tr(m) for code, m in MESSAGES.items()}
    not_validated = {c: tr(m) for c, m in NOT_VALIDATED_MESSAGES.items()}
    return {
        "guides": guides,
        "messages": messages,
        # the API answers in English: a message's detail after the base text is kept as it is
        "messages_en": dict(MESSAGES),
        "not_validated": not_validated,
        "validated": list(validated),
    }


def _validated_categories(request: Request) -> list[str]:
    """The categories the served model gives verdicts for (the others: a lab)."""
    assessor = getattr(request.app.state.ctx, "assessor", None)
    return list(assessor.card.validated_categories) if assessor is not None else []


def outline_url(category: str, view: str) -> str | None:
    """The outline drawing of a view (``api/static/outlines/<category>-<view>.svg``), when there is one."""
    name = f"{category}-{view}.svg"
    return f"/static/outlines/{name}" if (STATIC_DIR / "outlines" / name).is_file() else None
